import math
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paraclip.models.base import Encoder
from paraclip.training.losses import resolve_preset
from paraclip.training.validation import HeldOutValidator, STSBDevValidator, validator_name


class _TableEncoder:
    """Embeds each text by looking it up in a fixed table (to check the metric arithmetic)."""

    def __init__(self, table):
        self.table = table
        self.model = types.SimpleNamespace(logit_scale=torch.tensor(math.log(10.0)))

    def encode_text(self, texts, progress=False):
        return torch.stack([self.table[t] for t in texts])


def _ao_reference(a, b, k=10):
    """AO@k written out (Cheng et al., 2024; the suite's definition): mean over depths of the overlap share."""
    return sum(len(set(a[:d]) & set(b[:d])) / d for d in range(1, k + 1)) / k


def test_heldout_ao10_js10_and_r1():
    torch.manual_seed(0)
    n = 12
    images = F.normalize(torch.randn(n, 16), dim=-1)
    table = {}
    for i in range(n):
        table[f"c{i}"] = images[i]
        table[f"p{i}"] = images[i]  # paraphrase_1 retrieves exactly like the caption
        table[f"q{i}"] = F.normalize(torch.randn(16), dim=-1)  # paraphrase_2 retrieves at random
    validator = HeldOutValidator([f"c{i}" for i in range(n)], [[f"p{i}", f"q{i}"] for i in range(n)],
                                 torch.arange(n), lambda enc: images, resolve_preset("paraclip"), batch_size=6)
    out = validator(_TableEncoder(table))
    assert out["r1_caption"] == 100.0 and out["r1_paraphrase_1"] == 100.0
    # AO@10 is the average over depths 1..10, not |top-10 ∩ top-10| / 10 (which is >= 80 for 12 images)
    top = lambda t: (t @ images.T).argsort(dim=1, descending=True)[:, :10].tolist()  # noqa: E731
    caption, random = top(torch.stack([table[f"c{i}"] for i in range(n)])), top(
        torch.stack([table[f"q{i}"] for i in range(n)]))
    expected = 100.0 * (n + sum(_ao_reference(a, b) for a, b in zip(caption, random))) / (2 * n)
    assert out["ao10"] == pytest.approx(expected, abs=1e-9)
    jaccard = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(caption, random)]
    assert out["js10"] == pytest.approx(100.0 * (n + sum(jaccard)) / (2 * n), abs=1e-9)
    assert out["ao10"] < 90.0
    assert out["loss"] == pytest.approx(out["loss_l1"] + out["loss_l2"] + out["loss_l3"], rel=1e-6)
    assert out["loss_l2"] < out["loss_l1"]


class _LookupEncoder(Encoder):
    """A real Encoder: an image embeds as the feature stored under the index its red channel holds,
    a text as its row of a table; ``model.logit_scale`` is what the validator's losses read."""

    name = "lookup"

    def __init__(self, image_features, text_table):
        super().__init__("cpu")
        self.image_features, self.text_table = image_features, text_table
        self.model = types.SimpleNamespace(logit_scale=torch.tensor(math.log(10.0)))
        self.preprocess = lambda image: torch.tensor(float(np.asarray(image)[0, 0, 0]))

    def _embed_images(self, pixels):
        return self.image_features[pixels.long()]

    def _embed_texts(self, texts):
        return torch.stack([self.text_table[t] for t in texts])


def test_heldout_ao10_equals_the_evaluation_suites_on_the_same_rankings(tmp_path):
    """Same gallery, captions and paraphrases: the validator's AO@10 / JS@10 / R@1 are the suite's
    ParaphrasedRetrievalEvaluator numbers (pairs caption–p1 and caption–p2 pooled), duplicates included."""
    from PIL import Image

    from paraclip.data.galleries import folder_gallery
    from paraclip.evaluation.paraphrased import ParaphrasedRetrievalEvaluator, ParaphrasePairs

    gen = torch.Generator().manual_seed(1)
    distinct = F.normalize(torch.randn(20, 8, generator=gen), dim=-1)
    n = 40
    features = distinct[torch.arange(n) % 20]  # every image has an exact duplicate: tied scores
    lines = ["file,caption,image_id"]
    for i in range(n):
        Image.fromarray(np.full((4, 4, 3), i, dtype=np.uint8)).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png,c{i},img{i}")
    (tmp_path / "captions.csv").write_text("\n".join(lines) + "\n")
    gallery = folder_gallery(tmp_path)
    table = {}
    for i in range(n):
        table[f"c{i}"] = features[i] + 0.3 * torch.randn(8, generator=gen)
        table[f"p{i}"] = features[i] + 0.6 * torch.randn(8, generator=gen)
        table[f"q{i}"] = torch.randn(8, generator=gen)
    encoder = _LookupEncoder(features, table)
    captions = [f"c{i}" for i in range(n)]
    rows = torch.tensor([gallery.ids.index(f"img{i}") for i in range(n)])
    validator = HeldOutValidator(captions, [[f"p{i}", f"q{i}"] for i in range(n)], rows,
                                 lambda enc: gallery.embed(enc).features, resolve_preset("paraclip"), batch_size=8)
    out = validator(encoder)
    pairs = ParaphrasePairs(captions * 2, [f"p{i}" for i in range(n)] + [f"q{i}" for i in range(n)],
                            [f"img{i}" for i in range(n)] * 2)
    suite = ParaphrasedRetrievalEvaluator(pairs, gallery, ks=(10,), recall_ks=(1,))(encoder)
    assert out["ao10"] == pytest.approx(suite["AO@10"], abs=1e-9)
    assert out["js10"] == pytest.approx(suite["JS@10"], abs=1e-9)
    assert out["r1_caption"] == pytest.approx(suite["q_R@1"], abs=1e-9)
    assert 0 < suite["AO@10"] < 100


def test_validator_names():
    def my_probe(encoder):
        return {}

    assert validator_name(my_probe) == "my_probe"
    assert validator_name(HeldOutValidator) == "heldout"


def test_stsb_dev_validator_on_the_shared_data(sts_dir, tiny_encoder):
    out = STSBDevValidator(str(sts_dir))(tiny_encoder)
    assert set(out) == {"spearman", "pearson"} and -100 <= out["spearman"] <= 100
