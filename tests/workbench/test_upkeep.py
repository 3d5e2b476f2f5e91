"""The public app's upkeep: scratch folders, uploads and finished visitors' jobs expire by age and by a
total-size cap (oldest first); active jobs and the owner's newer files stay."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture()
def public_services(tmp_path, monkeypatch):
    from workbench.services import AppConfig, Services

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    config = AppConfig(app_dir=tmp_path / "app", public=True, build_defaults=False, expire_hours=1,
                       scratch_max_mb=1)
    services = Services(config)
    services.upkeep.close()
    yield services
    services.runner.cancel_all()


def aged(path: Path, hours: float) -> Path:
    when = time.time() - hours * 3600
    os.utime(path, (when, when))
    return path


def test_old_scratch_uploads_and_finished_jobs_expire(public_services, tmp_path):
    services = public_services
    old_session = aged(services.session_dir({}), 2)
    new_session = services.session_dir({})
    uploads = tmp_path / "gradio" / "abc123"
    uploads.mkdir(parents=True)
    (uploads / "photo.png").write_bytes(b"x")
    aged(uploads, 2)
    job = services.runner.start("train", "done", [sys.executable, "-c", "pass"], owner="visitor")
    services.runner.cancel(job.id, wait=True)
    for _ in range(200):
        if not services.runner.get(job.id).active:
            break
        time.sleep(0.05)
    services.runner.store.update(job.id, finished=time.time() - 7200)
    running = services.runner.start("train", "running", [sys.executable, "-c", "import time; time.sleep(60)"],
                                    owner="visitor")
    deleted = services.upkeep.sweep(time.time())
    assert str(old_session) in deleted and str(uploads) in deleted and job.job_dir in deleted
    assert not old_session.exists() and not uploads.exists() and not Path(job.job_dir).exists()
    assert new_session.exists() and Path(running.job_dir).exists()
    assert services.runner.get(job.id) is None and services.runner.get(running.id).active


def test_the_size_cap_removes_the_oldest_first(public_services):
    services = public_services
    older, newer = services.session_dir({}), services.session_dir({})
    (older / "a.bin").write_bytes(b"\0" * 700_000)
    (newer / "b.bin").write_bytes(b"\0" * 700_000)
    aged(older, 0.5)
    deleted = services.upkeep.sweep(time.time())
    assert deleted == [str(older)] and newer.exists()


def test_a_job_over_the_time_limit_is_cancelled(public_services):
    services = public_services
    job = services.runner.start("train", "long", [sys.executable, "-c", "import time; time.sleep(60)"], owner="v")
    services.upkeep.seen("v")
    assert services.upkeep.reap(time.time()) == []
    assert services.upkeep.reap(job.started + services.config.max_job_minutes * 60 + 1) == [job.id]
    services.runner.cancel(job.id, wait=True)
    assert "limit of" in services.runner.get(job.id).message
