import math
import types

import pytest
import torch
import torch.nn.functional as F

from paraclip.training.losses import resolve_preset
from paraclip.training.validation import HeldOutValidator, STSBDevValidator, validator_name


class _TableEncoder:
    """Embeds each text by looking it up in a fixed table (to check the metric arithmetic)."""

    def __init__(self, table):
        self.table = table
        self.model = types.SimpleNamespace(logit_scale=torch.tensor(math.log(10.0)))

    def encode_text(self, texts, progress=False):
        return torch.stack([self.table[t] for t in texts])


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
    # top-10 of 12 images: the caption/paraphrase_1 pairs overlap fully, the random ones at least 8 of 10
    assert 90.0 <= out["ao10"] < 100.0 and out["js10"] < out["ao10"]
    assert out["loss"] == pytest.approx(out["loss_l1"] + out["loss_l2"] + out["loss_l3"], rel=1e-6)
    assert out["loss_l2"] < out["loss_l1"]


def test_validator_names():
    def my_probe(encoder):
        return {}

    assert validator_name(my_probe) == "my_probe"
    assert validator_name(HeldOutValidator) == "heldout"


def test_stsb_dev_validator_on_the_shared_data(sts_dir, tiny_encoder):
    out = STSBDevValidator(str(sts_dir))(tiny_encoder)
    assert set(out) == {"spearman", "pearson"} and -100 <= out["spearman"] <= 100
