import math

import pytest
import torch
import torch.nn.functional as F

from paraclip.errors import ParaclipError, UnknownNameError
from paraclip.training.losses import LOSS_PRESETS, contrastive_loss, resolve_preset, total_loss


def _reference_infonce(a, b, scale):
    """Symmetric InfoNCE written out term by term."""
    n = a.shape[0]
    total = 0.0
    for i in range(n):
        row = [scale * float(a[i] @ b[j]) for j in range(n)]
        col = [scale * float(b[i] @ a[j]) for j in range(n)]
        total += -(row[i] - math.log(sum(math.exp(v) for v in row)))
        total += -(col[i] - math.log(sum(math.exp(v) for v in col)))
    return total / (2 * n)


def test_contrastive_loss_matches_the_written_out_formula():
    torch.manual_seed(0)
    a, b = F.normalize(torch.randn(6, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    got = float(contrastive_loss(a, b, torch.tensor(7.0)))
    assert got == pytest.approx(_reference_infonce(a, b, 7.0), rel=1e-5)


def test_contrastive_loss_is_symmetric_and_small_for_aligned_pairs():
    torch.manual_seed(1)
    a = F.normalize(torch.randn(8, 16), dim=-1)
    b = F.normalize(torch.randn(8, 16), dim=-1)
    scale = torch.tensor(20.0)
    assert float(contrastive_loss(a, b, scale)) == pytest.approx(float(contrastive_loss(b, a, scale)), rel=1e-6)
    assert float(contrastive_loss(a, a, scale)) < 0.05 < float(contrastive_loss(a, b, scale))


def test_local_rows_against_global_columns_average_to_the_global_loss():
    torch.manual_seed(2)
    a, b = F.normalize(torch.randn(8, 4), dim=-1), F.normalize(torch.randn(8, 4), dim=-1)
    scale = torch.tensor(5.0)
    full = float(contrastive_loss(a, b, scale))
    halves = [float(contrastive_loss(a[r * 4:(r + 1) * 4], b[r * 4:(r + 1) * 4], scale, a, b, offset=r * 4))
              for r in range(2)]
    assert sum(halves) / 2 == pytest.approx(full, rel=1e-6)


def test_paraclip_preset_is_the_papers_pairing():
    preset = resolve_preset("paraclip")
    assert [(t.name, t.left, t.right, t.weight) for t in preset.terms] == [
        ("l1", "image", "paraphrase_2", 1.0), ("l2", "caption", "paraphrase_1", 1.0),
        ("l3", "paraphrase_1", "paraphrase_2", 1.0)]
    assert preset.text_fields == ["caption", "paraphrase_1", "paraphrase_2"]


def test_total_loss_is_the_weighted_sum_and_zero_weight_drops_a_term():
    torch.manual_seed(3)
    feats = {r: F.normalize(torch.randn(5, 8), dim=-1) for r in ("image", "caption", "paraphrase_1", "paraphrase_2")}
    scale = torch.tensor(10.0)
    preset = resolve_preset("paraclip", {"l2": 0.5, "l3": 0.0})
    loss, parts = total_loss(preset, feats, feats, scale)
    assert set(parts) == {"l1", "l2"}
    expected = contrastive_loss(feats["image"], feats["paraphrase_2"], scale) + 0.5 * contrastive_loss(
        feats["caption"], feats["paraphrase_1"], scale)
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert "paraphrase_2" in preset.roles and preset.text_fields == ["caption", "paraphrase_1", "paraphrase_2"]


@pytest.mark.parametrize("name,terms,fields", [
    ("l1-only", ["l1"], ["paraphrase_2"]),
    ("no-l1", ["l2", "l3"], ["caption", "paraphrase_1", "paraphrase_2"]),
    ("l3-only", ["l3"], ["paraphrase_1", "paraphrase_2"]),
    ("clip", ["clip"], ["caption"]),
    ("laclip", ["laclip"], ["caption", "paraphrase_1", "paraphrase_2"]),
])
def test_ablation_presets(name, terms, fields):
    preset = LOSS_PRESETS.get(name)
    assert [t.name for t in preset.terms] == terms
    assert preset.text_fields == fields


def test_unknown_preset_and_weight_names_suggest_close_matches():
    with pytest.raises(UnknownNameError, match="paraclip"):
        resolve_preset("paraclp")
    with pytest.raises(ParaclipError, match="l2"):
        resolve_preset("paraclip", {"l22": 1.0})
    with pytest.raises(ParaclipError, match="every term"):
        resolve_preset("l1-only", {"l1": 0})
