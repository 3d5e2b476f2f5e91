"""The mini-world's evaluation tasks, built on the project's evaluators (issue "Evaluation suite").

* ``mw-paraphrase-in-vocab`` / ``mw-paraphrase-oov`` / ``mw-paraphrase-heldout`` — paraphrased
  retrieval (AO@k, JS@k, R@k for query and paraphrase) over the held-out gallery, one task per
  paraphrase set (the held-out rewriter's set: ``heldout.py``);
* ``mw-retrieval`` — canonical-caption retrieval, text→image and image→text R@1/5/10;
* ``mw-relation-swap`` / ``mw-attribute-swap`` — true vs swapped caption, ARO's rule and
  macro-average (groups: the relation / the swapped attribute);
* ``STSB`` — STS-B test Spearman, when its data can be found offline.

The same tasks exist for the validation world (``split="val"``: its own scenes and sets, no STS),
where settings are chosen; the test world is scored once with the chosen settings.
:func:`evaluate_seed` scores a seed's models on every test-world task.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from paraclip.errors import ParaclipError
from paraclip.miniworld.jsonl import read_jsonl

RANK_KS = (1, 3, 5, 10, 20)
EVALUATE_VERSION = 3  # protocol 3: the canonical-word pairs and zero-shot classification
TASK_NAMES = {
    "in_vocab": "mw-paraphrase-in-vocab",
    "oov": "mw-paraphrase-oov",
    "heldout": "mw-paraphrase-heldout",
    "canonical": "mw-paraphrase-canonical",
    "retrieval": "mw-retrieval",
    "relation": "mw-relation-swap",
    "attribute": "mw-attribute-swap",
    "sts": "STSB",
    "zs_shape": "mw-zeroshot-shape",
    "zs_colour": "mw-zeroshot-colour",
    "zs_count": "mw-zeroshot-count",
}
ZEROSHOT_PER_CLASS = 100  # images per class of the zero-shot sets (shape 5, colour 6, count 3 classes)
TEST_ONLY = ("sts", "zs_shape", "zs_colour", "zs_count")


def _pairs(path: Path):
    from paraclip.evaluation.paraphrased import ParaphrasePairs

    rows = read_jsonl(path)
    return ParaphrasePairs([r["original"] for r in rows], [r["paraphrase"] for r in rows],
                           [r["image_id"] for r in rows], source=str(path))


def _swaps(path: Path, gallery_dir: Path):
    from paraclip.evaluation.aro import AROExample

    return [AROExample(image=str(gallery_dir / f"{r['image_id']}.png"), true_caption=r["true_caption"],
                       false_caption=r["false_caption"], group=r["group"]) for r in read_jsonl(path)]


def build_tasks(run, split: str = "test", only: tuple[str, ...] | None = None) -> tuple[list, list[str]]:
    """(evaluators, notes) for a run folder whose world and evalsets stages are done.

    ``split``: ``test`` (the held-out test world, with STS-B when configured) or ``val`` (the
    validation world); ``only``: keys of :data:`TASK_NAMES` to build (all by default)."""
    from paraclip.data.galleries import folder_gallery
    from paraclip.evaluation.aro import AROEvaluator
    from paraclip.evaluation.paraphrased import ParaphrasedRetrievalEvaluator
    from paraclip.evaluation.retrieval import RetrievalEvaluator

    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    folder = run.gallery_dir if split == "test" else run.val_gallery_dir
    sets = run.evalsets if split == "test" else run.evalsets / "val"
    wanted = set(only or TASK_NAMES)
    gallery = folder_gallery(folder, name=f"mini-world {'held-out' if split == 'test' else 'validation'} scenes")
    k_max = min(max(RANK_KS), len(gallery))
    ks = tuple(k for k in RANK_KS if k <= k_max)
    builders = {
        "in_vocab": lambda: ParaphrasedRetrievalEvaluator(_pairs(sets / "pairs-in-vocab.jsonl"), gallery, ks=ks,
                                                          name=TASK_NAMES["in_vocab"]),
        "oov": lambda: ParaphrasedRetrievalEvaluator(_pairs(sets / "pairs-oov.jsonl"), gallery, ks=ks,
                                                     name=TASK_NAMES["oov"]),
        "heldout": lambda: ParaphrasedRetrievalEvaluator(_pairs(sets / "pairs-heldout.jsonl"), gallery, ks=ks,
                                                         name=TASK_NAMES["heldout"]),
        "canonical": lambda: ParaphrasedRetrievalEvaluator(_pairs(sets / "pairs-canonical.jsonl"), gallery, ks=ks,
                                                           name=TASK_NAMES["canonical"]),
        "retrieval": lambda: RetrievalEvaluator(gallery, name=TASK_NAMES["retrieval"]),
        "relation": lambda: AROEvaluator(_swaps(sets / "swaps-relation.jsonl", folder), name=TASK_NAMES["relation"],
                                         source=str(sets / "swaps-relation.jsonl")),
        "attribute": lambda: AROEvaluator(_swaps(sets / "swaps-attribute.jsonl", folder),
                                          name=TASK_NAMES["attribute"], source=str(sets / "swaps-attribute.jsonl")),
    }
    if split == "test":
        builders.update({key: _zeroshot_builder(run, key) for key in ("zs_shape", "zs_colour", "zs_count")})
    evaluators = [build() for key, build in builders.items() if key in wanted]
    notes = []
    if run.config.sts and split == "test" and "sts" in wanted:
        from paraclip.evaluation.sts import sts_evaluator

        try:
            evaluators.append(sts_evaluator("STSB", data_dir=run.config.sts_dir))
        except ParaclipError as exc:
            notes.append(f"STS-B skipped: {exc}")
    return evaluators, notes


def _zeroshot_builder(run, key: str):
    """Zero-shot classification of rendered one-group scenes by one attribute, with the set's templates
    (``data/classification.py``): what fine-tuning the text tower costs outside paraphrase retrieval."""
    def build():
        from paraclip.data.classification import miniworld_dataset
        from paraclip.evaluation.zeroshot import ZeroShotClassificationEvaluator

        attribute = key.removeprefix("zs_")
        dataset = miniworld_dataset(attribute, per_class=ZEROSHOT_PER_CLASS, seed=run.config.world_seed,
                                    image_size=run.config.image_size, out=run.root / "zeroshot" / attribute)
        return ZeroShotClassificationEvaluator(dataset, name=TASK_NAMES[key])

    return build


def evaluate_seed(run, seed: int, models: dict[str, str], out_dir: Path | None = None,
                  n_boot: int | None = None) -> dict:
    """Every test-world task (and STS-B) for the given ``label -> checkpoint`` models; first = baseline."""
    from paraclip.evaluation.suite import ModelRef, evaluate_models
    from paraclip.models import load_encoder

    evaluators, notes = build_tasks(run)
    refs = [ModelRef(label, encoder=load_encoder(path, device="cpu")) for label, path in models.items()]
    for ref in refs:
        # one name for the feature cache, whatever the checkpoint file is called: the cache key also
        # hashes the image tower's weights, so the models of a seed (ParaCLIP and every arm keep the
        # baseline's frozen tower) share the image features and the images are embedded once
        ref.encoder.name, ref.encoder.pretrained = f"miniworld-s{seed}", None

    def progress(done: int, total: int, message: str) -> None:
        run.progress.update(done / max(total, 1), f"evaluate seed {seed}: {message}")

    out = evaluate_models(refs, evaluators=evaluators, out_dir=out_dir or run.results_dir(seed),
                          n_boot=n_boot or run.config.n_boot, seed=seed, progress=progress)
    return {"models": models, "results": len(out.results), "skipped": [dataclasses.asdict(s) for s in out.skipped],
            "notes": notes}
