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
