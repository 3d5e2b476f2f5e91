"""Train tab's Export: a finished job's final checkpoint as an open_clip folder, zipped for download.

The folder is :func:`paraclip.models.export.export_model`'s (``open_clip_config.json``,
``open_clip_model.safetensors``, ``README.md`` with the model card); the zip holds those three files
at its top, so ``open_clip.create_model_from_pretrained("local-dir:FOLDER")`` loads the folder they
are unpacked into. Only the job's owner may export it (the same checks as Cancel and Resume). It is
written into the job's folder, or in public mode into the visitor's scratch folder (job folders are
never served there), and only its name is shown.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

EXPORT_FOLDER = "export"


def _owned_job(services, job_id: str | None, session: dict, username: str | None):
    """(job, None) when this caller may export ``job_id``, else (None, the message saying why not)."""
    if not job_id:
        return None, "❌ Pick a finished training job to export."
    job = services.runner.get(job_id)
    if job is not None and services.config.public and job.id not in {j.id for j in services.jobs(session, username)}:
        job = None  # another visitor's job: as if it did not exist
    if job is None:
        return None, f"❌ No job {job_id}."
    if services.config.auth_enabled and (not username or (job.owner and job.owner != username)):
        return None, "❌ Only the user who started a job can export it."
    if job.final_checkpoint is None:
        return None, (f"❌ Job `{job.id}` has no final checkpoint (it is {job.status}): Export is for training jobs "
                      f"that finished.")
    return job, None


def zip_folder(folder: Path, dest: Path) -> Path:
    """The folder's files at the top of a zip, written under a temporary name first (a half-written zip is
    never offered)."""
    partial = dest.with_name(dest.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.iterdir() if p.is_file()):
            archive.write(path, path.name)
    os.replace(partial, dest)
    return dest


def export_job(services, job_id: str | None, session: dict | None, username: str | None = None
               ) -> tuple[str, str | None, dict]:
    """(message, the zip to download or None, session)."""
    from paraclip.errors import ParaclipError
    from paraclip.models.export import export_model
    from workbench.policy import user_error

    session = dict(session or {})
    job, refusal = _owned_job(services, job_id, session, username)
    if job is None:
        return refusal, None, session
    root = (services.session_dir(session) / "exports" if services.config.public
            else Path(job.job_dir) / EXPORT_FOLDER)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", job.name).strip("-.") or "model"
    try:
        folder = export_model(job.final_checkpoint, root / f"{stem}-{job.id}")
        archive = zip_folder(folder, root / f"{stem}-{job.id}-open_clip.zip")
    except (ParaclipError, OSError) as exc:
        return f"❌ Export failed: {user_error(exc, services.config.public)}", None, session
    files = services.downloadable([archive], session)
    size_mb = archive.stat().st_size / 1024 / 1024
    message = (f"✅ {archive.name} ({size_mb:.1f} MB): open_clip_config.json, open_clip_model.safetensors and "
               f"README.md (the model card). Unzip it into a folder; open_clip loads it as "
               f"`local-dir:FOLDER`.")
    return services.redact(message, session), (files[0] if files else None), session
