"""Train tab's Export: a finished job's final checkpoint becomes a zip of the open_clip folder and its model
card; only its owner can export it, and a public app shows no server path."""

from __future__ import annotations

import json
import time
import uuid
import zipfile
from pathlib import Path

import pytest
import torch

from paraclip.jobs import Job
from workbench import train
from workbench.export_job import export_job


@pytest.fixture(scope="module")
def final_pt(tmp_path_factory):
    import open_clip

    from paraclip.models.checkpoint import save_checkpoint
    from paraclip.models.loading import register_project_configs

    register_project_configs()
    torch.manual_seed(3)
    model = open_clip.create_model("paraclip-tiny")
    path = tmp_path_factory.mktemp("run") / "final.pt"
    save_checkpoint(path, model.state_dict(), "paraclip-tiny", name="tiny-run", epoch=1,
                    paraclip={"run_name": "tiny-run", "step": 4, "base_model": "paraclip-tiny", "loss_preset": "clip"})
    return path


def add_job(services, final_pt: Path | None, owner: str | None = None, status: str = "succeeded") -> Job:
    """A finished training job in the app's real job table, its output folder holding ``final_pt``."""
    job_id = uuid.uuid4().hex[:8]
    job_dir = services.runner.root / job_id
    out_dir = job_dir / "run"
    out_dir.mkdir(parents=True)
    if final_pt is not None:
        (out_dir / "final.pt").write_bytes(final_pt.read_bytes())
    job = Job(id=job_id, kind="train", name="my run/1", status=status, created=time.time(), command=["true"],
              job_dir=str(job_dir), owner=owner, finished=time.time(), out_dir=str(out_dir))
    services.runner.store.add(job)
    return job


def test_a_finished_job_exports_as_a_zip_that_plain_open_clip_loads(services, final_pt, tmp_path):
    import open_clip

    job = add_job(services, final_pt)
    message, archive, _ = export_job(services, job.id, {})
    assert message.startswith("✅ my-run-1-") and "open_clip_model.safetensors" in message, message
    assert Path(archive).is_relative_to(Path(job.job_dir) / "export")  # private app: next to the job
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(zipped.namelist()) == ["README.md", "open_clip_config.json", "open_clip_model.safetensors"]
        zipped.extractall(tmp_path / "unzipped")
        card = zipped.read("README.md").decode()
    assert "paraclip-tiny" in card
    assert "model_cfg" in json.loads((tmp_path / "unzipped" / "open_clip_config.json").read_text())
    model, _ = open_clip.create_model_from_pretrained(f"local-dir:{tmp_path / 'unzipped'}")
    saved = torch.load(final_pt, map_location="cpu", weights_only=False)
    weights = saved.get("state_dict", saved.get("model"))
    name = next(k for k in model.state_dict() if k.endswith("positional_embedding"))
    assert torch.equal(model.state_dict()[name], weights[name])


def test_a_job_without_a_final_checkpoint_or_no_job_is_refused_with_what_to_do(services):
    job = add_job(services, None, status="failed")
    assert export_job(services, job.id, {})[:2] == (
        f"❌ Job `{job.id}` has no final checkpoint (it is failed): Export is for training jobs that finished.", None)
    assert export_job(services, None, {})[0] == "❌ Pick a finished training job to export."
    assert export_job(services, "nope", {})[0] == "❌ No job nope."


def test_in_a_public_app_only_the_owner_exports_into_their_scratch_and_sees_no_server_path(final_pt, tmp_path):
    from workbench.services import AppConfig, Services

    services = Services(AppConfig(app_dir=tmp_path / "app", public=True, build_defaults=False))
    owner_session = {}
    owner = services.owner(owner_session)
    job = add_job(services, final_pt, owner=owner)
    stranger = {}
    services.owner(stranger)
    assert export_job(services, job.id, stranger)[:2] == (f"❌ No job {job.id}.", None)
    message, archive, session = export_job(services, job.id, owner_session)
    assert message.startswith("✅") and str(tmp_path) not in message
    assert Path(archive).is_relative_to(Path(session["dir"]))  # linked into the visitor's own folder
    assert zipfile.ZipFile(archive).namelist()


def test_the_export_button_hands_the_zip_to_the_file_box(services, final_pt):
    job = add_job(services, final_pt)
    message, file_update, _ = train.Handlers(services).export(job.id, {}, None)
    assert message.startswith("✅") and file_update["visible"] and file_update["value"].endswith(".zip")
    message, file_update, _ = train.Handlers(services).export(None, {}, None)
    assert message.startswith("❌") and file_update["visible"] is False
