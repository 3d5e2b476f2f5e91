"""The shipped ``assets/`` folder: the mini-world's trained default models and their data.

``paraclip miniworld --export-assets [DIR]`` (:func:`export_assets`) writes, from the seed-0 run
of the current defaults (trained first if needed):

    models/miniworld-baseline-s0.safetensors   CLIP trained from scratch on the mini-world (fp16)
    models/miniworld-paraclip-s0.safetensors   its ParaCLIP fine-tuned text encoder (fp16)
    models/paraclip-mini.json                  the open_clip config of both (named after the architecture)
    gallery/                                   the held-out scenes (PNG) + captions.csv
    pairs/in-vocab.jsonl, pairs/oov.jsonl      held-out paraphrase pairs (original, paraphrase, image_id)
    examples/captions.csv                      captions with image ids, to paste into the Paraphrase tab
    examples/paraphrases.jsonl                 two-step paraphrases of the gallery's captions: training
                                               data with the gallery as images (not held out from it)
    manifest.json                              sha256 and size of every file, the command and config
                                               that made it, and each model's AO@10 / JS@10 here

The app starts on these (:func:`shipped_defaults`), so a fresh machine or a restarted Space serves
trained models at once. Each model loads with ``paraclip.models.load_encoder(path)`` and with plain
open_clip (the architecture is recorded in the safetensors metadata)::

    import open_clip
    open_clip.add_model_config("assets/models/paraclip-mini.json")
    model, _, preprocess = open_clip.create_model_and_transforms(
        "paraclip-mini", pretrained="assets/models/miniworld-paraclip-s0.safetensors")
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from paraclip.errors import DataError, ParaclipError
from paraclip.files import atomic_write_text, parse_json
from paraclip.miniworld.config import MiniWorldConfig, preset_name
from paraclip.miniworld.jsonl import load_scenes, read_jsonl, write_jsonl
from paraclip.miniworld.pipeline import ensure_default_models
from paraclip.miniworld.runner import ProgressFn, Run

ASSETS_FORMAT = 1
EXPORT_COMMAND = "paraclip miniworld --export-assets {dest}"
FILES = {
    "baseline": "models/miniworld-baseline-s0.safetensors",
    "paraclip": "models/miniworld-paraclip-s0.safetensors",
    "gallery": "gallery",
    "pairs_in_vocab": "pairs/in-vocab.jsonl",
    "pairs_oov": "pairs/oov.jsonl",
    "captions": "examples/captions.csv",
    "paraphrases": "examples/paraphrases.jsonl",
}
MODEL_LABELS = {"baseline": "mini-world CLIP baseline", "paraclip": "mini-world ParaCLIP"}
PAIR_SETS = {"in-vocab": "pairs_in_vocab", "oov": "pairs_oov"}
EXAMPLE_CAPTIONS = 40
EVAL_KS = (1, 5, 10)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_fp16_safetensors(checkpoint: str | os.PathLike, dest: Path, extra: dict[str, str]) -> None:
    """A training checkpoint's weights as fp16 safetensors with ``arch`` in the metadata."""
    import torch
    from safetensors.torch import save_file

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt)
    tensors = {k.removeprefix("module."): (v.half() if v.is_floating_point() else v).contiguous()
               for k, v in state.items()}
    save_file(tensors, str(dest), metadata={"arch": str(ckpt.get("arch")), "format": "pt", **extra})
    dest.chmod(0o644)


def _write_gallery(run: Run, dest: Path) -> int:
    dest.mkdir(parents=True)
    rows = list(csv.DictReader(open(run.gallery_dir / "captions.csv", encoding="utf-8")))
    for row in rows:
        shutil.copyfile(run.gallery_dir / row["file"], dest / row["file"])
    shutil.copyfile(run.gallery_dir / "captions.csv", dest / "captions.csv")
    return len(rows)


def _write_examples(run: Run, dest: Path) -> dict[str, int]:
    """Gallery captions (CSV) and their two-step paraphrases by the scene rewriter (JSONL, the
    paraphrasing engine's record format, so `paraclip train --data` takes it as it is)."""
    from paraclip.miniworld.stages import rewriter_records

    scenes = load_scenes(run, "eval")
    with open(dest / "captions.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image_id", "caption"])
        writer.writerows((image_id, caption) for image_id, caption, _ in scenes[:EXAMPLE_CAPTIONS])
    records = rewriter_records(scenes, run.config.rewriter_seed)
    write_jsonl(dest / "paraphrases.jsonl", [r.to_json() for r in records])
    return {"captions": min(EXAMPLE_CAPTIONS, len(scenes)), "paraphrases": len(records)}


def evaluate_assets(folder: str | os.PathLike, ks=EVAL_KS) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {pair set: {"AO@10": …, "JS@10": …, "n": …}}}`` for the shipped models on the shipped
    gallery and pairs (×100, as every rank-similarity figure in the project)."""
    from paraclip.data.galleries import folder_gallery
    from paraclip.evaluation.paraphrased import ParaphrasedRetrievalEvaluator, load_pairs
    from paraclip.models import load_encoder

    folder = Path(folder)
    gallery = folder_gallery(folder / FILES["gallery"], name="mini-world (shipped)")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for model in MODEL_LABELS:
        encoder = load_encoder(str(folder / FILES[model]), device="cpu")
        out[model] = {}
        for set_name, key in PAIR_SETS.items():
            pairs = load_pairs(folder / FILES[key])
            metrics = ParaphrasedRetrievalEvaluator(pairs, gallery, ks=ks)(encoder)
            out[model][set_name] = {m: round(metrics[m], 3) for m in ("AO@10", "JS@10", "q_R@1") if m in metrics}
            out[model][set_name]["n"] = len(pairs)
    return out


def _file_entries(folder: Path, sources: dict[str, str], command: str) -> dict[str, dict[str, Any]]:
    entries = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"):
        rel = path.relative_to(folder).as_posix()
        role = next((k for k, v in FILES.items() if rel == v or rel.startswith(v + "/")),
                    "config" if rel.startswith("models/") and rel.endswith(".json") else "other")
        entries[rel] = {"sha256": sha256_of(path), "size": path.stat().st_size, "role": role,
                        "made_from": sources.get(role, ""), "command": command}
    return entries


def _shipped_models(cfg: MiniWorldConfig, root, progress) -> tuple[dict[str, str], dict[str, str], str]:
    """(model -> checkpoint, model -> the stage that made it, which ParaCLIP checkpoint) of the first seed.

    From a run whose select stage finished, ParaCLIP is the checkpoint chosen on the validation world
    (rate and step); otherwise the seed's default models are built or found (``ensure_default_models``:
    the first rate's final checkpoint)."""
    from paraclip.miniworld.arms import PARACLIP, main_arm_checkpoint, run_kind

    seed = cfg.seeds[0]
    run = Run(cfg, root)
    select = run.read_marker("select") or {}
    chosen = (select.get("chosen") or {}).get("paraclip")
    baseline = run.read_marker(f"baseline-s{seed}") or {}
    if chosen and baseline.get("checkpoint"):
        kind = run_kind(cfg, PARACLIP, seed, chosen["lr"])
        paths = {"baseline": baseline["checkpoint"],
                 "paraclip": main_arm_checkpoint(run, PARACLIP, seed, chosen["lr"], chosen["step"])}
        return (paths, {"baseline": f"baseline-s{seed}", "paraclip": f"{kind}-s{seed}"},
                f"the checkpoint chosen on the validation world (lr {chosen['lr']:g}, step {chosen['step']})")
    single = dataclasses.replace(cfg, seeds=[seed])
    paths = ensure_default_models(progress=progress, root=root, config=single)
    kind = run_kind(single, PARACLIP, seed, single.lr_grid[0])
    return paths, {"baseline": f"baseline-s{seed}", "paraclip": f"{kind}-s{seed}"}, "final checkpoint"


def export_assets(dest: str | os.PathLike = "assets", config: MiniWorldConfig | None = None,
                  root: str | os.PathLike | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Write the assets folder from the seed-0 run of ``config`` (built first when missing); returns
    the manifest. The folder is replaced as a whole, so a stale file never survives an export."""
    cfg = config or MiniWorldConfig()
    seed = cfg.seeds[0]
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()) and not (dest / "manifest.json").is_file():
        raise ParaclipError(f"{dest} exists and is not an assets folder (no manifest.json); export into an empty "
                            f"or new folder, or into the existing assets folder to replace it.")
    paths, stage_of, where = _shipped_models(cfg, root, progress)
    run = Run(cfg, root)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "models").mkdir(parents=True)
    fingerprints = {name: (run.read_marker(name) or {}).get("fingerprint")
                    for name in ("world", "paraphrases", "evalsets", *stage_of.values())}
    for model in MODEL_LABELS:
        save_fp16_safetensors(paths[model], tmp / FILES[model],
                              {"label": MODEL_LABELS[model], "seed": str(seed),
                               "stage_fingerprint": str(fingerprints[stage_of[model]])})
    from paraclip.models.loading import CONFIG_DIR

    shutil.copyfile(CONFIG_DIR / f"{cfg.arch}.json", tmp / "models" / f"{cfg.arch}.json")
    n_gallery = _write_gallery(run, tmp / FILES["gallery"])
    for key, stage_file in (("pairs_in_vocab", "pairs-in-vocab.jsonl"), ("pairs_oov", "pairs-oov.jsonl")):
        (tmp / FILES[key]).parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(tmp / FILES[key], read_jsonl(run.evalsets / stage_file))
    (tmp / "examples").mkdir()
    examples = _write_examples(run, tmp / "examples")
    preset = preset_name(cfg)
    command = EXPORT_COMMAND.format(dest=dest.as_posix()) + (f" --preset {preset}" if preset not in (None, "default")
                                                             else "" if preset else " (custom settings: see config)")
    sources = {
        "baseline": f"stage {stage_of['baseline']}: final checkpoint, weights cast to fp16",
        "paraclip": f"stage {stage_of['paraclip']}: {where}, weights cast to fp16",
        "config": f"paraclip/models/configs/{cfg.arch}.json (register it with open_clip.add_model_config)",
        "gallery": "stage world: the held-out eval scenes and their canonical captions",
        "pairs_in_vocab": "stage evalsets: pairs-in-vocab.jsonl", "pairs_oov": "stage evalsets: pairs-oov.jsonl",
        "captions": f"the first {EXAMPLE_CAPTIONS} gallery captions",
        "paraphrases": "the scene-aware rewriter on the gallery's scenes (training data; not held out from it)",
    }
    manifest = {
        "format": ASSETS_FORMAT,
        "command": command,
        "config": cfg.to_dict(),
        "stage_fingerprints": fingerprints,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "gallery_images": n_gallery,
        "examples": examples,
        "metrics": evaluate_assets(tmp),
        "metrics_note": "held-out AO@10 / JS@10 (x100) of each shipped model on the shipped gallery and pairs",
        "files": _file_entries(tmp, sources, command),
    }
    atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return manifest


def read_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = parse_json(path.read_bytes(), str(path))
    except (OSError, DataError):  # check_assets reports it as "no readable manifest.json"
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == ASSETS_FORMAT else None


def check_assets(folder: str | os.PathLike, verify_hashes: bool = True) -> list[str]:
    """Problems with an assets folder (empty list: complete and matching its manifest)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"{folder}: no readable manifest.json"]
    problems = []
    listed = manifest.get("files", {})
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    problems += [f"missing: {rel}" for rel in sorted(set(listed) - present)]
    problems += [f"not in the manifest: {rel}" for rel in sorted(present - set(listed))]
    for rel in sorted(set(listed) & present):
        path, entry = folder / rel, listed[rel]
        if path.stat().st_size != entry.get("size"):
            problems.append(f"size differs: {rel}")
        elif verify_hashes and sha256_of(path) != entry.get("sha256"):
            problems.append(f"sha256 differs: {rel}")
    return problems


def shipped_defaults(folder: str | os.PathLike, verify_hashes: bool = False) -> dict[str, str] | None:
    """Paths of the shipped models, gallery and pairs (the keys of :data:`FILES`), or None when the
    folder is missing or incomplete. Sizes are always checked; hashes on request (~0.1 s)."""
    folder = Path(folder)
    if check_assets(folder, verify_hashes):
        return None
    return {key: str(folder / rel) for key, rel in FILES.items()}
