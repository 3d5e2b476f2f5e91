"""The offline defaults: the trained mini-world models, gallery and pair sets shipped in ``assets/``.

The app starts on the shipped files (:func:`paraclip.miniworld.assets.shipped_defaults`): no training,
nothing fetched, nothing that depends on a cache surviving a restart. Only when the assets folder
is missing or incomplete does it fall back to what it can make in seconds — a gallery rendered from
the mini-world's scene generator and *untrained* random-init ``paraclip-mini`` checkpoints, labelled
as such everywhere they appear — and (unless public, or ``PARACLIP_APP_BUILD_DEFAULTS=0``) train the
real ones in the background with :func:`paraclip.miniworld.ensure_default_models`.
Rebuilding from scratch is also an explicit action (:meth:`DefaultAssets.rebuild`, the About tab).
Nothing here blocks app start; the page shows progress.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from paraclip.miniworld import ensure_default_models
from paraclip.miniworld.gallery import render_gallery
from paraclip.models.loading import config_digest, save_random_init

FALLBACK_ARCH = "paraclip-mini"
MINIWORLD_GALLERY = "mini-world"
TUXPAINT_GALLERY = "tuxpaint"


@dataclass(frozen=True)
class ModelChoice:
    """A model the user can pick: ``name``/``pretrained`` go to ``load_encoder`` and to TrainConfig."""

    label: str
    name: str
    pretrained: str | None = None
    kind: str = "default"  # default | fallback | job | custom

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.name, self.pretrained)


PAIR_LABELS = {"pairs_in_vocab": "mini-world in-vocabulary pairs", "pairs_oov": "mini-world out-of-vocabulary pairs"}


class DefaultAssets:
    """State of the default models/galleries; ``start()`` builds them in a daemon thread."""

    def __init__(self, config, on_models: Callable[[], None] | None = None):
        self.config = config
        self.on_models = on_models  # called (in the build thread) each time a set of models is ready
        self.root = Path(config.app_dir) / "defaults"
        self.state = "pending"  # pending | building | ready | fallback | failed
        self.message = "not started"
        self.fraction = 0.0
        self.models: list[ModelChoice] = []
        self.galleries: dict[str, str] = {}  # label -> load_gallery spec (a folder)
        self.pairs: dict[str, str] = {}  # label -> paraphrase-pairs file
        self.examples: dict[str, str] = {}  # "captions" / "paraphrases" -> example file
        self.source = ""  # shipped | built | fallback
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self.building_trained = False
        self._rebuilding = threading.Lock()

    # -- building -----------------------------------------------------------------------------
    def start(self) -> None:
        """Adopt the shipped assets at once (a size check: milliseconds), then finish in a thread:
        warming Explore, or the fallback and the trained build when the assets are missing."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._build, name="paraclip-defaults", daemon=True)
        self._adopt_shipped()
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        self.start()
        return self._done.wait(timeout)

    def _progress(self, fraction: float | None, message: str) -> None:
        with self._lock:
            if fraction is not None:
                self.fraction = max(0.0, min(1.0, float(fraction)))
            self.message = message

    def _build(self) -> None:
        try:
            if self.state == "ready":
                self._notify()  # shipped models: only warm Explore
                return
            self.state = "building"
            self._build_fallback()  # seconds; the app is usable right away
            self.state = "fallback"
            self._notify()
            if self.config.build_defaults and not self.config.public and self._rebuilding.acquire(blocking=False):
                try:
                    self._build_trained()
                finally:
                    self._rebuilding.release()
        except Exception as exc:  # noqa: BLE001 - the app stays up; the banner says what happened
            traceback.print_exc()
            self._progress(None, f"could not build the default models: {type(exc).__name__}: {exc}")
            if not self.models:
                self.state = "failed"
        finally:
            self._add_optional_galleries()
            self._done.set()

    def _build_trained(self) -> None:
        self.building_trained = True
        self._progress(0.0, "building the trained mini-world models (about 9 min on 2 CPU cores)")
        try:
            result = ensure_default_models(progress=self._miniworld_progress)
        finally:
            self.building_trained = False
        self._adopt_miniworld(result)
        self.state, self.source = "ready", "built"
        self._progress(1.0, "mini-world models ready (built here)")
        self._notify()

    def rebuild(self) -> bool:
        """Train the mini-world defaults from scratch (or resume that build) in a background thread;
        False when a build is already running. The app keeps serving the current defaults meanwhile."""
        if not self._rebuilding.acquire(blocking=False):
            return False

        def work():
            try:
                self._build_trained()
            except Exception as exc:  # noqa: BLE001 - the banner says what happened
                traceback.print_exc()
                self._progress(None, f"rebuilding the default models failed: {type(exc).__name__}")
            finally:
                self._rebuilding.release()

        threading.Thread(target=work, name="paraclip-defaults-rebuild", daemon=True).start()
        return True

    def _adopt_shipped(self) -> bool:
        from paraclip.miniworld.assets import MODEL_LABELS, shipped_defaults

        paths = shipped_defaults(self.config.assets_dir)
        if paths is None:
            return False
        with self._lock:
            self.models = [ModelChoice(MODEL_LABELS[k], paths[k]) for k in MODEL_LABELS]
            self.galleries = {MINIWORLD_GALLERY: paths["gallery"]}
            self.pairs = {label: paths[key] for key, label in PAIR_LABELS.items()}
            self.examples = {"captions": paths["captions"], "paraphrases": paths["paraphrases"]}
            self.state, self.source, self.fraction = "ready", "shipped", 1.0
            self.message = f"trained mini-world models shipped in {self.config.assets_dir}"
        return True

    def folders(self) -> list[Path]:
        """Where the default models, galleries and pair sets live (readable in public mode)."""
        with self._lock:
            files = [m.pretrained or m.name for m in self.models] + list(self.pairs.values()) \
                + list(self.examples.values())
            galleries = list(self.galleries.values())
        return [Path(f).parent for f in files if f and Path(f).is_absolute()] \
            + [Path(g) for g in galleries if Path(g).is_absolute()]

    def _notify(self) -> None:
        if self.on_models is not None:
            try:
                self.on_models()
            except Exception:  # noqa: BLE001 - warming caches is an optimisation, never fatal
                traceback.print_exc()

    def _miniworld_progress(self, done: int, total: int, message: str) -> None:
        """``ensure_default_models``'s progress callback."""
        self._progress(done / total if total else None, message)

    def _adopt_miniworld(self, paths: dict[str, str]) -> None:
        """Serve the models and gallery ``ensure_default_models`` returned (instead of the fallback)."""
        models = [ModelChoice("mini-world CLIP baseline", paths["baseline"]),
                  ModelChoice("mini-world ParaCLIP", paths["paraclip"])]
        with self._lock:
            self.models = models  # the untrained fallback goes: sessions follow the new defaults
            self.galleries = {MINIWORLD_GALLERY: paths["gallery"],
                              **{k: v for k, v in self.galleries.items() if k != MINIWORLD_GALLERY}}

    def _build_fallback(self) -> None:
        from paraclip.data.galleries import find_captions_file

        self.root.mkdir(parents=True, exist_ok=True)
        gallery_dir = self.root / "miniworld-gallery"
        if find_captions_file(gallery_dir) is None:
            render_gallery(gallery_dir, self.config.gallery_size, progress=lambda done, n: self._progress(
                0.5 * done / n, f"rendering the mini-world gallery ({done}/{n})"))
        models = []
        for seed in (0, 1):
            path = self.root / f"untrained-{FALLBACK_ARCH}-{config_digest(FALLBACK_ARCH)}-seed{seed}.pt"
            if not path.is_file():
                self._progress(0.5 + 0.2 * seed, f"creating an untrained {FALLBACK_ARCH} (seed {seed})")
                save_random_init(FALLBACK_ARCH, seed, path)
            models.append(ModelChoice(f"untrained mini seed {seed} (fallback)", FALLBACK_ARCH, str(path),
                                      kind="fallback"))
        with self._lock:
            self.models = models
            self.source = "fallback"
            self.galleries[f"{MINIWORLD_GALLERY} (rendered)"] = str(gallery_dir)
        self._progress(1.0, "fallback ready: untrained mini models (the trained mini-world models are not "
                            "available yet)")

    def _add_optional_galleries(self) -> None:
        from paraclip.data.galleries import TUXPAINT_STAMPS_DIR

        if TUXPAINT_STAMPS_DIR.is_dir():
            with self._lock:
                self.galleries.setdefault("Tux Paint stamps", TUXPAINT_GALLERY)

    # -- reading ------------------------------------------------------------------------------
    def model_choices(self) -> list[ModelChoice]:
        with self._lock:
            return list(self.models)

    def gallery_choices(self) -> dict[str, str]:
        with self._lock:
            return dict(self.galleries)

    def pairs_choices(self) -> dict[str, str]:
        with self._lock:
            return dict(self.pairs)

    def load_gallery(self, label_or_spec: str):
        from paraclip.data.galleries import load_gallery

        spec = self.gallery_choices().get(label_or_spec, label_or_spec)
        return load_gallery(spec)

    def status_markdown(self) -> str:
        with self._lock:
            state, message, fraction = self.state, self.message, self.fraction
        if state == "ready":
            where = {"shipped": "shipped in `assets/`", "built": "built here"}.get(self.source, "offline")
            extra = f" — rebuilding: {100 * fraction:.0f}% ({message})" if self.building_trained else ""
            return f"✅ **Default models:** trained mini-world baseline and ParaCLIP ({where}, seed 0){extra}."
        if state == "fallback":
            bar = "█" * int(20 * fraction) + "░" * (20 - int(20 * fraction))
            extra = f" — building the trained ones: `{bar}` {100 * fraction:.0f}% ({message})" \
                if self.building_trained else ""
            todo = ("wait for the mini-world models" + extra) if self.building_trained else \
                "rebuild them from the About tab, or restore the `assets/` folder"
            return ("⚠️ **Default models:** *untrained* `paraclip-mini` fallback (random init, for trying the app): "
                    f"the shipped `assets/` folder is missing or incomplete. Train one in the Train tab, or {todo}.")
        if state == "failed":
            return f"❌ **Default models unavailable:** {message}. Type a model name in the model boxes instead."
        bar = "█" * int(20 * fraction) + "░" * (20 - int(20 * fraction))
        return f"⏳ **Preparing the offline default models** `{bar}` {100 * fraction:.0f}% — {message}"

