import os
import stat

import torch

from paraclip.models import load_encoder
from paraclip.models.checkpoint import save_checkpoint


def test_a_saved_checkpoint_loads_in_open_clip_and_as_an_encoder(tmp_path, tiny_encoder):
    import open_clip

    path = save_checkpoint(tmp_path / "sub" / "model.pt", tiny_encoder.model.state_dict(), "paraclip-tiny",
                           step=3, note={"kept": True})
    saved = torch.load(path, map_location="cpu", weights_only=True)
    assert saved["arch"] == "paraclip-tiny" and saved["step"] == 3 and saved["note"] == {"kept": True}
    assert all(v.device.type == "cpu" and not v.requires_grad for v in saved["state_dict"].values())
    model, _, _ = open_clip.create_model_and_transforms("paraclip-tiny", pretrained=str(path))
    reference = tiny_encoder.model.state_dict()
    assert all(torch.equal(model.state_dict()[k], reference[k]) for k in reference)
    encoder = load_encoder(str(path), device="cpu")
    assert encoder.arch == "paraclip-tiny"
    torch.testing.assert_close(encoder.encode_text(["a red square"]), tiny_encoder.encode_text(["a red square"]))


def test_a_checkpoint_is_written_whole_with_normal_permissions(tmp_path, tiny_encoder):
    path = tmp_path / "model.pt"
    path.write_bytes(b"the previous checkpoint")
    old = os.umask(0o022)
    try:
        save_checkpoint(path, tiny_encoder.model.state_dict(), "paraclip-tiny")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left beside it


def test_a_checkpoint_with_nan_weights_is_refused_by_name_not_scored(tmp_path, tiny_encoder):
    import pytest

    from paraclip.errors import ModelLoadError
    from paraclip.models.export import export_model

    state = dict(tiny_encoder.model.state_dict())
    name = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 2)
    state[name] = torch.full_like(state[name], float("nan"))
    path = save_checkpoint(tmp_path / "diverged.pt", state, "paraclip-tiny")
    with pytest.raises(ModelLoadError, match=r"diverged\.pt holds NaN weights") as info:
        load_encoder(str(path), device="cpu")
    assert name in str(info.value)
    with pytest.raises(ModelLoadError, match="NaN weights"):
        export_model(path, tmp_path / "export")
    assert not (tmp_path / "export").exists()
