import torch
from PIL import Image

from paraclip.features import FeatureCache, encode_images_cached


def test_cache_encodes_each_image_once_and_persists(tiny_encoder, tmp_path):
    calls = []

    def load(image_id):
        calls.append(image_id)
        return Image.new("RGB", (32, 32), (int(image_id) * 40, 0, 0))

    cache = FeatureCache.for_encoder(tiny_encoder, tmp_path)
    first = encode_images_cached(tiny_encoder, ["1", "2", "3"], load, cache, batch_size=2)
    assert calls == ["1", "2", "3"]
    again = encode_images_cached(tiny_encoder, ["3", "1", "4"], load, FeatureCache.for_encoder(tiny_encoder, tmp_path))
    assert calls == ["1", "2", "3", "4"]  # only the new id was encoded; a fresh cache object reads the disk
    torch.testing.assert_close(again[0], first[2], atol=2e-3, rtol=0)  # fp16 storage
    direct = tiny_encoder.encode_image([load("2")])
    torch.testing.assert_close(first[1], direct[0], atol=2e-3, rtol=0)


def test_fingerprint_changes_when_image_tower_changes(tiny_encoder, tmp_path):
    import copy

    other = copy.deepcopy(tiny_encoder)
    key = FeatureCache.for_encoder(tiny_encoder, tmp_path).dir.name
    with torch.no_grad():
        other.model.visual.proj.add_(0.01)
    assert FeatureCache.for_encoder(other, tmp_path).dir.name != key
