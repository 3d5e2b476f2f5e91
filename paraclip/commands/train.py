"""``paraclip train``: ParaCLIP fine-tuning (or CLIP training) from a YAML config, flags overriding keys.

    paraclip train --config configs/train/paraclip-vitb32.yaml --lr 5e-6 --out-dir runs/try2
    torchrun --nproc_per_node 4 -m paraclip.cli train --config ...   # data parallel, same flags

Every TrainConfig field is a flag (``--batch-size 128``, ``--loss-weights l1=1,l2=0.5``,
``--freeze-image false``). Rerunning the same command resumes an interrupted run.

One run writes an out_dir at a time: a second ``paraclip train`` on the same folder is refused (exit 2)
with the first one named. Under torchrun only rank 0 takes the lock (only rank 0 writes the folder;
if it is refused, torchrun stops the other ranks).
"""

from __future__ import annotations

import argparse
import os
import sys
import typing

HELP = "Fine-tune CLIP's text encoder with the paper's paraphrase losses (or train a CLIP); resumable, torchrun-ready."


def _type_label(tp) -> str:
    name = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
    return name.replace(" | None", "").replace("NoneType", "").upper()[:12]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from paraclip.settings import field_type, specs
    from paraclip.training.config import TrainConfig

    parser.add_argument("--config", default=None, help="YAML file of options (keys are the flags below, with _ or -)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    group = parser.add_argument_group("training options (override the YAML file; only the flags given do)")
    for name, spec in specs(TrainConfig).items():
        tp, _ = field_type(TrainConfig, name)
        flag = f"--{name.replace('_', '-')}"
        flags = [flag] + ([f"--{name}"] if "_" in name else [])
        allowed = (spec.bounds.describe() if spec.bounds is not None
                   else ", ".join(spec.choices) if isinstance(spec.choices, tuple) else "")  # a function may import torch
        help_text = spec.help + (f" [{allowed}]" if allowed else "")
        kwargs = dict(dest=f"opt__{name}", default=argparse.SUPPRESS, help=help_text.replace("%", "%%"))
        if tp is bool:
            # --freeze-image, --freeze-image false, --no-freeze-image: each overrides the YAML either way
            kwargs.update(nargs="?", const="true", metavar="BOOL")
            group.add_argument(*flags, **kwargs)
            group.add_argument(f"--no-{flag[2:]}", dest=f"opt__{name}", action="store_const", const="false",
                               default=argparse.SUPPRESS, help=f"same as {flag} false")
            continue
        kwargs.update(metavar=_type_label(tp) if typing.get_origin(tp) is None else
                      ("K=V,…" if typing.get_origin(tp) is dict else "A,B"))
        group.add_argument(*flags, **kwargs)


def run(args: argparse.Namespace) -> int:
    import yaml

    from paraclip.training import load_config, train

    overrides = {k[len("opt__"):]: v for k, v in vars(args).items() if k.startswith("opt__")}
    config = load_config(args.config, overrides)
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    _check_features_folder(config.features_from)
    lock = _out_dir_lock(config.out_dir)
    try:
        result = train(config, progress=True)
    finally:
        if lock is not None:
            lock.release()
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    if not result.completed:
        print(f"stopped at step {result.steps}/{result.total_steps}; rerun the same command to resume "
              f"(checkpoint {result.last_checkpoint})", file=sys.stderr)
        return 130
    print(f"finished {result.steps} steps: {result.checkpoint}")
    print(f"metrics: {result.metrics_file}")
    print(f"evaluate it with `paraclip sts --model {result.checkpoint}`; in Python, "
          f"open_clip.create_model_and_transforms({result.arch!r}, pretrained={str(result.checkpoint)!r})")
    return 0


def _check_features_folder(features_from) -> None:
    """A file where the feature cache's folder should be fails only after the model is loaded, as an
    OS error; say so first. (Only "is a file": a read-only shared cache is fine to read from.)"""
    from pathlib import Path

    from paraclip.errors import ParaclipError

    if not features_from:
        return
    folder = Path(features_from).expanduser()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ParaclipError(f"features_from {features_from}: {existing} is a file, not a folder (the image-feature "
                            f"cache is a folder). Choose another path, or move the file.")


def _out_dir_lock(out_dir):
    """The out_dir's lock, taken on rank 0 (None on the other ranks); refused while another run writes it."""
    from paraclip.checks import check_output_dir
    from paraclip.runlock import RunLock

    if int(os.environ.get("RANK", "0")) != 0:
        return None
    check_output_dir(out_dir, "out_dir")  # a file there, or no permission: say so before taking the lock
    lock = RunLock.for_folder(out_dir, what="run folder", advice="choose another --out-dir")
    lock.acquire()
    return lock
