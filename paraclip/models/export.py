"""Export a checkpoint as an open_clip model folder (what ``hf-hub:`` / ``local-dir:`` load) with a model card.

The folder holds ``open_clip_config.json`` (``{"model_cfg", "preprocess_cfg"}``, written by
open_clip's own ``save_config_for_hf``), ``open_clip_model.safetensors`` and ``README.md``, so
plain open_clip loads it with ``open_clip.create_model_from_pretrained("local-dir:DIR")`` or, once
pushed, ``"hf-hub:ORG/REPO"``. The card says what the model is: base model, training data, losses,
steps, and (given an evaluation folder written by ``paraclip evaluate --out``) the results table
with the paired bootstrap CIs of the deltas. Pushing goes through ``huggingface_hub``'s
``HfApi.upload_folder``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from paraclip.errors import DataError, ModelLoadError, ParaclipError, WriteError
from paraclip.files import atomic_write, atomic_write_text

CONFIG_NAME = "open_clip_config.json"  # open_clip.constants.HF_CONFIG_NAME
WEIGHTS_NAME = "open_clip_model.safetensors"  # open_clip.constants.HF_SAFE_WEIGHTS_NAME


def load_checkpoint_model(path: str | os.PathLike):
    """``(open_clip model, arch, checkpoint dict)`` from a checkpoint that records its architecture."""
    import open_clip

    from paraclip.models.checkpoint import checkpoint_weights, read_checkpoint
    from paraclip.models.loading import _quiet_random_init, _recorded_arch, register_project_configs

    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"--model {path}: no such checkpoint file (a final.pt or step-N.pt written by "
                             f"`paraclip train`).")
    ckpt = read_checkpoint(path)
    checkpoint_weights(ckpt, path)  # a list, a tensor, strings, NaN: say what is wrong, not just "no arch"
    arch = ckpt.get("arch") if isinstance(ckpt, dict) else None
    if not isinstance(arch, str):
        raise ModelLoadError(f"{path} does not record its architecture ('arch'); export needs a checkpoint written "
                             f"by `paraclip train` (final.pt or checkpoints/step-N.pt).")
    register_project_configs()
    # text inside a file never names a hub repository; open_clip's own HF-tower configs (the paper's
    # roberta-ViT-B-32 family) are allowed: exporting them is the point, and their tower names are fixed
    arch = _recorded_arch(arch, path, allow_registered_hub_towers=True)
    with _quiet_random_init():
        model = open_clip.create_model(arch, pretrained=None, device="cpu", pretrained_text=False)
    state = checkpoint_weights(ckpt, path)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path} does not fit architecture {arch!r}: {str(exc).splitlines()[0]}") from None
    return model.eval(), arch, ckpt


def export_model(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                 results_dir: str | os.PathLike | None = None) -> Path:
    """Write the open_clip folder and the model card for ``checkpoint`` into ``out_dir``; returns it."""
    import open_clip
    from open_clip.push_to_hf_hub import save_config_for_hf

    model, arch, ckpt = load_checkpoint_model(checkpoint)
    table = results_table(results_dir) if results_dir is not None else None  # bad input fails before writing
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    model_cfg = json.loads(json.dumps(open_clip.get_model_config(arch)))
    save_config_for_hf(model, out / CONFIG_NAME, model_cfg)
    # clone: safetensors refuses tensors that share storage (tied weights); loading restores the tie
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    atomic_write(out / WEIGHTS_NAME, lambda f: f.write(_safetensors_bytes(tensors, arch)), binary=True)
    meta = ckpt.get("paraclip", {}) if isinstance(ckpt, dict) else {}
    atomic_write_text(out / "README.md", model_card(arch, meta, Path(checkpoint).name, table))
    return out


def _safetensors_bytes(tensors: dict, arch: str) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata={"arch": arch, "format": "pt"})


# -- the model card ---------------------------------------------------------------------------

def results_table(results_dir: str | os.PathLike) -> str:
    """Markdown: each model's headline scores, and the deltas vs the baseline with their CIs."""
    folder = Path(results_dir).expanduser()
    results_csv, deltas_csv = folder / "results.csv", folder / "deltas.csv"
    if not results_csv.is_file():
        raise DataError(f"--results {folder}: no results.csv; point it at the --out folder of `paraclip evaluate`.")
    results = _read_csv(results_csv, {"label", "task", "metric", "value"})
    deltas = _read_csv(deltas_csv, {"task", "metric", "model", "delta", "ci_low", "ci_high", "n", "significant",
                                    "confidence", "n_boot"}) if deltas_csv.is_file() else None
    lines = ["| task | metric | " + " | ".join(dict.fromkeys(results["label"])) + " |"]
    labels = list(dict.fromkeys(results["label"]))
    lines.append("|" + "---|" * (2 + len(labels)))
    main = results[results["main"]] if "main" in results.columns else results
    for (task, metric), rows in main.groupby(["task", "metric"], sort=False):
        values = {r.label: r.value for r in rows.itertuples()}
        lines.append(f"| {task} | {metric} | " + " | ".join(_num(values.get(lab)) for lab in labels) + " |")
    if deltas is not None and not deltas.empty:
        lines += ["", "Deltas vs the baseline (first model), with paired bootstrap "
                  f"{int(100 * deltas['confidence'].iloc[0])}% confidence intervals "
                  f"({int(deltas['n_boot'].iloc[0])} replicates; * = the interval excludes 0):", "",
                  "| task | metric | model | delta | CI | n |", "|---|---|---|---|---|---|"]
        for r in deltas.itertuples():
            mark = "*" if str(r.significant).lower() == "true" else ""
            lines.append(f"| {r.task} | {r.metric} | {r.model} | {_num(r.delta, sign=True)}{mark} | "
                         f"[{_num(r.ci_low, sign=True)}, {_num(r.ci_high, sign=True)}] | {r.n} |")
    return "\n".join(lines)


def _read_csv(path: Path, needed: set[str]):
    """A CSV written by ``paraclip evaluate``; a damaged or foreign one is a DataError naming the file."""
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError, OSError) as exc:  # bad UTF-8 is a ValueError too
        raise DataError(f"{path}: cannot read it as CSV ({str(exc).splitlines()[0][:200]}). Rerun `paraclip evaluate "
                        f"--out` to write it again, or leave out --results.") from None
    missing = needed - set(table.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))} (expected the file `paraclip "
                        f"evaluate` writes). Rerun it, or leave out --results.")
    return table


def _num(value: Any, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):+.2f}" if sign else f"{float(value):.2f}"


def model_card(arch: str, meta: dict, checkpoint_name: str, table: str | None = None) -> str:
    config = meta.get("config", {}) if isinstance(meta.get("config"), dict) else {}
    base = meta.get("base_model") or config.get("model") or arch
    pretrained = meta.get("pretrained") or config.get("pretrained")
    terms = meta.get("loss_terms") or []
    losses = ", ".join(f"{name} ({left}–{right}, weight {weight:g})" for name, left, right, weight in terms) or "–"
    rows = [
        ("architecture", f"`{arch}`"),
        ("base model", f"`{base}`" + (f" (`{pretrained}`)" if pretrained else "")),
        ("training data", f"{config.get('data', '–')} ({meta.get('records', '?')} records"
                          + (f", fingerprint `{meta['data_fingerprint']}`" if meta.get("data_fingerprint") else "")
                          + ")"),
        ("losses", f"preset `{meta.get('loss_preset', config.get('loss_preset', '–'))}`: {losses}"),
        ("steps", f"{meta.get('step', '–')} (epochs: {meta.get('epoch', '–')})"),
        ("image tower", "frozen" if meta.get("freeze_image", True) else "trained"),
        ("checkpoint", f"`{checkpoint_name}`"),
    ]
    lines = ["---", "library_name: open_clip", "tags:", "- clip", "- paraclip", "- zero-shot-image-classification",
             "---", "", f"# {meta.get('run_name') or Path(checkpoint_name).stem}", "",
             "A CLIP model whose text encoder was fine-tuned with ParaCLIP (paraphrase-consistent contrastive "
             "losses); the image tower is the base model's.", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "## Use", "", "```python", "import open_clip",
              "model, preprocess = open_clip.create_model_from_pretrained('hf-hub:ORG/REPO')  # or 'local-dir:PATH'",
              "tokenizer = open_clip.get_tokenizer('hf-hub:ORG/REPO')", "```"]
    if table:
        lines += ["", "## Evaluation", "", table]
    return "\n".join(lines) + "\n"


# -- pushing ----------------------------------------------------------------------------------

def check_repo_id(repo_id: str) -> str:
    if repo_id.count("/") != 1 or not all(part.strip() for part in repo_id.split("/")) or " " in repo_id:
        raise ParaclipError(f"--push-to-hub {repo_id!r}: give the repository as ORG/NAME (e.g. me/paraclip-vit-b-32).")
    return repo_id


def push_folder(folder: str | os.PathLike, repo_id: str, api=None, private: bool = False) -> str:
    """Upload ``folder`` to the hub model repo ``repo_id`` (created if missing); returns the commit URL."""
    check_repo_id(repo_id)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                 commit_message="Add ParaCLIP model (paraclip export)")
    except Exception as exc:  # noqa: BLE001 - network, auth: one readable message; the folder is kept
        raise WriteError(f"Could not push {folder} to the Hugging Face hub repo {repo_id}: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}. The exported folder is kept; log in "
                            f"with `huggingface-cli login` (or set HF_TOKEN) and run the command again.") from exc
    return str(getattr(info, "commit_url", info))


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "check_repo_id", "export_model", "load_checkpoint_model", "model_card", "push_folder",
           "results_table"]
