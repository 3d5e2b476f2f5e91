"""App-wide services shared by every session: settings, loaded models, gallery embeddings, jobs.

These are caches of *resources* (a model loaded once serves every user), never per-user state:
what a user typed, generated or selected lives in ``gr.State`` / component values.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from paraclip.jobs import JobRunner, default_app_dir
from workbench import settings
from workbench.policy import AccessPolicy, public_from_env
from workbench.runs import LANES, RunBoard, WorkerProcesses

REPO_ROOT = Path(__file__).resolve().parents[1]


def setting(name: str):
    """A factory for a dataclass field: the parsed environment setting (``workbench.settings``)."""
    return field(default_factory=lambda: settings.read(name))


def default_assets_dir() -> Path:
    """``$PARACLIP_ASSETS_DIR``, else the repository's ``assets/`` (shipped with the app)."""
    return Path(os.environ.get("PARACLIP_ASSETS_DIR") or REPO_ROOT / "assets").resolve()


parse_auth = settings.parse_auth  # kept for callers of the old name


@dataclass
class AppConfig:
    """Settings from the environment (so HF Spaces secrets configure the app)."""

    app_dir: Path = field(default_factory=default_app_dir)
    max_upload_mb: int = setting("PARACLIP_APP_MAX_UPLOAD_MB")
    auth: list[tuple[str, str]] | None = setting("PARACLIP_APP_AUTH")
    max_jobs: int = setting("PARACLIP_APP_MAX_JOBS")
    poll_s: float = 2.0
    build_defaults: bool = setting("PARACLIP_APP_BUILD_DEFAULTS")
    gallery_size: int = setting("PARACLIP_APP_GALLERY_SIZE")
    public: bool = field(default_factory=public_from_env)  # SPACE_ID or PARACLIP_APP_PUBLIC=1 (workbench.policy)
    assets_dir: Path = field(default_factory=default_assets_dir)
    # quotas and hygiene (public mode), stopping: meanings in workbench.settings.SETTINGS
    max_captions: int = setting("PARACLIP_APP_MAX_CAPTIONS")
    max_train_samples: int = setting("PARACLIP_APP_MAX_TRAIN_SAMPLES")
    max_job_minutes: float = setting("PARACLIP_APP_MAX_JOB_MINUTES")
    jobs_per_visitor: int = setting("PARACLIP_APP_JOBS_PER_VISITOR")
    abandoned_job_minutes: float = setting("PARACLIP_APP_ABANDONED_JOB_MINUTES")
    expire_hours: float = setting("PARACLIP_APP_EXPIRE_HOURS")
    scratch_max_mb: int = setting("PARACLIP_APP_SCRATCH_MAX_MB")
    keep_jobs: bool = setting("PARACLIP_APP_KEEP_JOBS")
    compare_process: bool = setting("PARACLIP_APP_COMPARE_PROCESS")

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth)

    @property
    def work_root(self) -> Path:
        """Per-session scratch folders: inside the temp area (uploads are confined there, and Gradio
        serves downloads from it)."""
        return Path(tempfile.gettempdir()) / "paraclip-workbench"


class EncoderCache:
    """Loaded encoders keyed by (name, pretrained), least recently used evicted; thread-safe."""

    def __init__(self, capacity: int = 4, loader: Callable[..., Any] | None = None):
        self.capacity = capacity
        self._loader = loader
        self._items: OrderedDict[tuple[str, str | None], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}

    @property
    def custom_loader(self) -> bool:
        return self._loader is not None

    def get(self, name: str, pretrained: str | None = None):
        key = (name, pretrained or None)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one load per model even when many sessions ask at once
            with self._lock:
                if key in self._items:
                    return self._items[key]
            loader = self._loader
            if loader is None:
                from paraclip.models import load_encoder as loader
            encoder = loader(name, pretrained)
            with self._lock:
                self._items[key] = encoder
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            return encoder


def _webp_available() -> bool:
    from PIL import features

    return bool(features.check("webp"))


_HAS_WEBP = _webp_available()


class GalleryIndex:
    """Image embeddings of a gallery under one model, plus thumbnails, for fast Explore queries."""

    def __init__(self, gallery, features: np.ndarray, ids: list[str], thumbs: dict[str, str] | None = None):
        self.gallery = gallery
        self.features = features  # (n, d) float32, L2-normalised
        self.ids = ids
        self._thumbs: dict[str, str] = {} if thumbs is None else thumbs  # shared by the gallery's indexes
        self._lock = threading.Lock()

    def warm_thumbnails(self) -> None:
        """Render every thumbnail now (a serving app does this for its default gallery at start): an Explore
        query under load then pays nothing for images no one has asked for yet."""
        for image_id in self.ids:
            self.thumbnail(image_id)

    def search(self, text_features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(top-k gallery indices, their scores) per query row, best first: the evaluation's search."""
        from paraclip.evaluation.metrics import gallery_search

        if k < 1:
            raise ValueError(f"k={k} must be at least 1")
        found = gallery_search(text_features, self.features, k)
        return found.topk, found.topk_scores

    def thumbnail(self, image_id: str, size: int = 96) -> str:
        """A data-URI thumbnail (cached). WebP: 3-5x smaller than PNG for these images (mini-world
        0.7 vs 2.1 KB, Tux Paint 1.5 vs 8.2 KB), and an Explore answer carries 4 x k of them."""
        with self._lock:
            if image_id in self._thumbs:
                return self._thumbs[image_id]
        import base64
        import io

        try:
            image = self.gallery.load_image(image_id)
            image.thumbnail((size, size))
            buf = io.BytesIO()
            fmt = "webp" if _HAS_WEBP else "png"
            image.save(buf, format=fmt.upper(), **({"quality": 85} if fmt == "webp" else {}))
            uri = f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode()
        except Exception:  # noqa: BLE001 - an unreadable image shows as a blank tile
            uri = ""
        with self._lock:
            self._thumbs[image_id] = uri
        return uri


class Services:
    """Everything the tabs share: config, job runner, model and gallery-embedding caches, defaults."""

    def __init__(self, config: AppConfig | None = None, runner: JobRunner | None = None):
        from workbench.defaults import DefaultAssets

        self.config = config or AppConfig()
        self.config.app_dir.mkdir(parents=True, exist_ok=True)
        self.runner = runner or JobRunner(self.config.app_dir, max_active=self.config.max_jobs)
        self.runs = RunBoard()  # queued/running paraphrase runs and comparisons, each with its own stop flag
        if self.config.public:  # a failing job's message must not quote its data file either
            self.runner.env["PARACLIP_HIDE_FILE_TEXT"] = "1"
        self.policy = AccessPolicy.from_env(self.config.public, roots=[self.config.assets_dir])
        self.encoders = EncoderCache()
        self._worker_processes = WorkerProcesses(LANES["compare"]) if self.config.compare_process else None
        self.defaults = DefaultAssets(self.config, on_models=self.warm_explore)
        self._indexes: dict[tuple, GalleryIndex] = {}
        self._index_lock = threading.Lock()
        self._build_locks: dict[tuple, threading.Lock] = {}
        self._thumbnails: dict[str, dict[str, str]] = {}  # gallery spec -> image id -> data URI
        self._galleries: dict[str, Any] = {}
        from workbench.upkeep import Upkeep

        self.upkeep = Upkeep(self)  # public mode: job quotas, the reaper, the sweeper
        self.upkeep.start()

    def worker_processes(self) -> WorkerProcesses | None:
        """Where comparisons run: worker processes, or None for a thread of this process (the setting is
        off, or the encoders come from a stand-in loader, which cannot cross to another process)."""
        if self._worker_processes is None or self.encoders.custom_loader:
            return None
        return self._worker_processes

    def warm_worker_processes(self) -> None:
        """Start the comparisons' worker process now, in the background (a serving app calls this)."""
        processes = self.worker_processes()
        if processes is not None:
            from workbench.compare_run import warm_up

            processes.submit(warm_up)

    def close(self) -> None:
        """The app is stopping: background upkeep ends and worker processes are stopped now."""
        self.upkeep.close()
        if self._worker_processes is not None:
            self._worker_processes.close()

    def session_dir(self, session: dict) -> Path:
        """The caller's scratch folder (created on first use; its name is kept in the session state)."""
        if not session.get("dir"):
            session["dir"] = str(self.config.work_root / uuid.uuid4().hex)
        path = Path(session["dir"])
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- what a caller may reach (public mode: see workbench.policy) ---------------------------
    def owner(self, session: dict, username: str | None = None) -> str | None:
        """Who owns the jobs this caller starts: the login name, else in public mode a random id kept
        in the session state (so each visitor sees only their own jobs)."""
        if username or not self.config.public:
            return username
        return session.setdefault("owner", uuid.uuid4().hex)

    def jobs(self, session: dict | None = None, username: str | None = None, limit: int = 100):
        """Jobs this caller may see: all of them on a private app, their own in public mode."""
        if not self.config.public:
            return self.runner.list(limit)
        owner = username or (session or {}).get("owner")
        self.upkeep.seen(owner)  # every open page of the owner polls here: their jobs are watched
        return self.runner.list(limit, owner=owner) if owner else []

    def allowed_roots(self, session: dict | None = None, username: str | None = None) -> list[Path]:
        """Folders readable by this caller besides the fixed ones: their scratch folder, the default
        models' and galleries' folders, and their own jobs' folders."""
        from workbench.examples import example_training_root

        roots = [*self.defaults.folders(), example_training_root(self)]
        if (session or {}).get("dir"):
            roots.append(Path(session["dir"]))
        for job in self.jobs(session, username):
            roots += [Path(p) for p in (job.job_dir, job.out_dir) if p]
        return roots

    def check_path(self, text: str, what: str, session: dict | None = None, username: str | None = None) -> Path:
        """A typed path (public mode: as the visitor sees it, e.g. ``uploads/images-1a2b3c``) checked."""
        return self.policy.check_path(self.real_path(text, session), what, self.allowed_roots(session, username))

    # -- what a visitor sees of the server's folders (public mode: names, never server paths) -----
    def named_roots(self, session: dict | None = None) -> list[tuple[str, Path]]:
        from workbench.examples import example_training_root

        roots = [("uploads", Path(session["dir"]))] if (session or {}).get("dir") else []
        return roots + [("examples", example_training_root(self)), ("jobs", self.runner.jobs_dir),
                        ("assets", self.config.assets_dir), ("app-data", self.config.app_dir)]

    def shown_path(self, path: str | os.PathLike, session: dict | None = None) -> str:
        """``path`` as a visitor of a public app sees it: relative to a named folder, else its name."""
        if not self.config.public or not path:
            return str(path)
        resolved = Path(path).resolve()
        for name, root in self.named_roots(session):
            if resolved.is_relative_to(root.resolve()):
                return str(Path(name) / resolved.relative_to(root.resolve()))
        return resolved.name

    def real_path(self, text: str, session: dict | None = None) -> str:
        """The inverse of :meth:`shown_path` for a typed ``NAME/rest`` (unchanged off public mode)."""
        text = (text or "").strip()
        if not self.config.public:
            return text
        head, _, rest = text.partition("/")
        for name, root in self.named_roots(session):
            if head == name:
                return str(root / rest)
        return text

    def redact(self, text: str | None, session: dict | None = None) -> str:
        """Text for a public page (a job log, a message) with the server's folders named, not shown."""
        from workbench.policy import hide_paths

        if not self.config.public or not text:
            return text or ""
        for name, root in sorted(self.named_roots(session), key=lambda r: -len(str(r[1]))):
            text = text.replace(str(root.resolve()), name).replace(str(root), name)
        return hide_paths(text.replace(sys.executable, "python"))

    def upload_rules(self, session: dict | None) -> dict:
        """Arguments of the upload checks: in public mode, own uploads only and the caption cap."""
        return {"session": session or {}, "max_lines": self.config.max_captions} if self.config.public else {}

    def downloadable(self, paths, session: dict | None = None) -> list[str]:
        """Files to offer for download. In public mode the job folders are not served as such (their
        ids could be guessed), so each file is linked into the caller's scratch folder first."""
        paths = [Path(p) for p in paths]
        if not self.config.public or not paths:
            return [str(p) for p in paths]
        if not (session or {}).get("dir"):  # the owner's session always has one (start_job makes it)
            return []
        folder = self.session_dir(session) / "downloads"
        folder.mkdir(exist_ok=True)
        out = []
        for path in paths:
            dest = folder / f"{path.parent.name}-{path.name}"
            if not dest.exists() or dest.stat().st_size != path.stat().st_size:
                tmp = dest.with_suffix(dest.suffix + ".tmp")
                tmp.unlink(missing_ok=True)
                try:
                    os.link(path, tmp)
                except OSError:  # another file system
                    import shutil

                    shutil.copyfile(path, tmp)
                tmp.replace(dest)
            out.append(str(dest))
        return out

    def gallery_spec(self, label: str, session: dict | None = None, username: str | None = None) -> str:
        """A gallery label of the defaults, a registered name, or a checked folder/captions path."""
        label = (label or "").strip()
        if label in self.defaults.gallery_choices() or not self.config.public:
            return label
        return self.policy.check_spec(label, "Gallery", self.allowed_roots(session, username))

    def gallery(self, spec: str, session: dict | None = None, username: str | None = None):
        spec = self.gallery_spec(spec, session, username)
        with self._index_lock:
            if spec not in self._galleries:
                gallery = self.defaults.load_gallery(spec)
                if self.config.public and spec not in self.defaults.gallery_choices():
                    self._check_gallery_files(gallery, spec, session, username)
                self._galleries[spec] = gallery
            return self._galleries[spec]

    def _check_gallery_files(self, gallery, spec, session, username) -> None:
        """A typed gallery's captions file may name images anywhere (absolute paths, ``..``, links):
        each must be inside the allowed folders too. Registered hub galleries live in the cache."""
        from workbench.policy import PolicyError, looks_like_path

        if not looks_like_path(spec):
            return
        roots = self.allowed_roots(session, username)
        outside = [p for p in gallery.paths if not self.policy.allows(p, roots)]
        if outside:
            raise PolicyError(f"Gallery: {len(outside)} of the images its captions file lists are outside the "
                              f"folders this public app may read; list images inside the gallery folder.")

    def gallery_index(self, model: tuple[str, str | None], gallery_spec: str, session: dict | None = None,
                      encoder=None) -> GalleryIndex:
        """``encoder`` stands in for the cached one (e.g. a stoppable wrapper of it)."""
        gallery_spec = self.gallery_spec(gallery_spec, session)
        key = (model, gallery_spec)
        with self._index_lock:
            if key in self._indexes:
                return self._indexes[key]
            build_lock = self._build_locks.setdefault(key, threading.Lock())
        # one build per (model, gallery): concurrent writers of the same feature cache would collide
        with build_lock:
            with self._index_lock:
                if key in self._indexes:
                    return self._indexes[key]
            gallery = self.gallery(gallery_spec, session)
            encoder = encoder if encoder is not None else self.encoders.get(*model)
            feats = gallery.embed(encoder, workers=0)
            with self._index_lock:  # one thumbnail cache per gallery: the models' indexes show the same images
                thumbs = self._thumbnails.setdefault(gallery_spec, {})
            index = GalleryIndex(gallery, feats.features.float().numpy().astype(np.float32), list(feats.ids), thumbs)
            with self._index_lock:
                self._indexes[key] = index
            return index

    def warm_explore(self) -> None:
        """Embed the first gallery under the first two default models (what Explore opens with) and render
        its thumbnails, so the first queries do not pay for them; called by the defaults builder when models
        are ready."""
        gallery = next(iter(self.defaults.gallery_choices()), None)
        if gallery is None:
            return
        indexes = [self.gallery_index(choice.key, gallery) for choice in self.defaults.model_choices()[:2]]
        if indexes:
            indexes[0].warm_thumbnails()  # shared by both indexes

    def can_start_jobs(self, username: str | None) -> bool:
        return (not self.config.auth_enabled) or bool(username)

    # -- model choices shared by the Train, Compare and Explore tabs ---------------------------
    def model_choices(self, session: dict | None = None, username: str | None = None):
        """Default models, then the checkpoints of the caller's finished training jobs (newest first)."""
        from workbench.defaults import ModelChoice

        choices = list(self.defaults.model_choices())
        for job in self.jobs(session, username, 50):
            final = job.final_checkpoint if job.kind == "train" else None
            if final is not None:
                choices.append(ModelChoice(f"job {job.name} [{job.id}]", str(final), None, kind="job"))
        return choices

    def model_labels(self, session: dict | None = None, username: str | None = None) -> list[str]:
        return [c.label for c in self.model_choices(session, username)]

    def resolve_model(self, label: str, session: dict | None = None, username: str | None = None):
        """A choice by label, or a typed model: ``NAME`` or ``NAME@PRETRAINED`` (``ViT-B-32@openai``);
        in public mode a typed path must be inside the allowed folders."""
        from workbench.defaults import ModelChoice

        label = (label or "").strip()
        if not label:
            raise ValueError("no model selected")
        # the defaults first: they are in memory, while the caller's jobs are read from the job store
        for choice in self.defaults.model_choices():
            if choice.label == label:
                return choice
        for choice in self.model_choices(session, username):
            if choice.label == label:
                return choice
        name, _, pretrained = label.partition("@")
        roots = self.allowed_roots(session, username) if self.config.public else []
        name = self.policy.check_spec(name.strip(), f"Model {label!r}", roots)
        pretrained = self.policy.check_spec(pretrained.strip(), f"Model {label!r}", roots) or None
        return ModelChoice(label, name, pretrained, kind="custom")

    def paraphrase_one(self, caption: str) -> str | None:
        """Step 2 of the paper's two-step paraphrase of one caption, with the shared local model."""
        from paraclip.paraphrase import ParaphraseConfig, paraphrase_captions
        from workbench.local_llm import local_backend

        config = ParaphraseConfig(min_words=0, max_words=10_000,
                                  cache_path=str(self.config.app_dir / "paraphrase-cache.sqlite"))
        records = paraphrase_captions([caption], local_backend(None, lambda message: None), config)
        rec = records[0] if records else {}
        return rec.get("paraphrase_2") or rec.get("paraphrase_1")
