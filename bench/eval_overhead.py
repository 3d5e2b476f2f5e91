"""Evaluation wall time vs the encoder's pure forward time (goal: within 15 %).

Issue "Evaluation suite": evaluating must cost little more than running the model. One run,
side by side, ``--repeats`` times each (alternating), medians reported:

* **pure forward**: the model's ``encode_image`` on already-preprocessed pixel batches and
  ``encode_text`` on already-tokenised batches, under ``torch.inference_mode`` — the floor;
* **evaluation**: ``ParaphrasedRetrievalEvaluator.item_scores`` from files on disk with an empty
  feature cache: open + decode + preprocess every PNG (a thread pool, two batches ahead of the
  encoder), encode images and write them to the cache, encode the query and paraphrase texts,
  search the gallery, AO@10 / JS@10 / R@k;
* **evaluation, sequential decoding** (``workers=0``): the same with images opened in the main
  thread, to show what the prefetching buys.

Default model: ``ViT-B-32`` with random weights (the paper's architecture; nothing to
download — speed does not depend on the weights' values).

    .venv/bin/python bench/eval_overhead.py --images 256 --repeats 3
    .venv/bin/python bench/eval_overhead.py --model paraclip-mini --images 1024
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine_load, median_and_runs, random_encoder  # noqa: E402

from paraclip.data import galleries  # noqa: E402
from paraclip.data.galleries import folder_gallery  # noqa: E402
from paraclip.evaluation.paraphrased import ParaphrasedRetrievalEvaluator, ParaphrasePairs  # noqa: E402
from paraclip.features import FeatureCache  # noqa: E402

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["square", "circle", "triangle", "star"]


def make_gallery(root: Path, n: int, size: int) -> tuple[Path, ParaphrasePairs]:
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = ["file,caption,image_id"]
    originals, paraphrases, ids = [], [], []
    for i in range(n):
        colour, shape = COLOURS[i % len(COLOURS)], SHAPES[(i // len(COLOURS)) % len(SHAPES)]
        arr = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)  # noise: realistic PNG decode cost
        Image.fromarray(arr).save(root / f"{i:05d}.png")
        caption = f"a {colour} {shape} number {i} on a noisy background"
        lines.append(f"{i:05d}.png,{caption},img{i}")
        originals.append(caption)
        paraphrases.append(f"picture {i}: one {shape} coloured {colour}, background full of noise")
        ids.append(f"img{i}")
    (root / "captions.csv").write_text("\n".join(lines) + "\n")
    return root, ParaphrasePairs(originals, paraphrases, ids, source="synthetic")


def pure_forward(encoder, pixels: list[torch.Tensor], tokens: list[torch.Tensor]) -> float:
    model = encoder.model
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in pixels:
            model.encode_image(batch)
        for batch in tokens:
            model.encode_text(batch)
    return time.perf_counter() - start


def evaluation(encoder, gallery_dir: Path, pairs: ParaphrasePairs, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        gallery = folder_gallery(gallery_dir)
        ev = ParaphrasedRetrievalEvaluator(pairs, gallery, feature_cache=FeatureCache(tmp, "bench"))
        original_embed = gallery.embed
        gallery.embed = lambda enc, cache=None, **kw: original_embed(enc, cache=cache, workers=workers)
        start = time.perf_counter()
        ev.item_scores(encoder)
        return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=256, help="side of the PNG files (px)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = random_encoder(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        gallery_dir, pairs = make_gallery(Path(tmp), args.images, args.size)
        gallery = folder_gallery(gallery_dir)
        bs_img, bs_txt = encoder.image_batch_size, encoder.text_batch_size
        images = [gallery.load_image(i) for i in gallery.ids]
        pixels = [torch.stack([encoder.preprocess(im) for im in images[s:s + bs_img]])
                  for s in range(0, len(images), bs_img)]
        texts = list(dict.fromkeys(pairs.originals + pairs.paraphrases))
        tokens = [encoder.tokenizer(texts[s:s + bs_txt]) for s in range(0, len(texts), bs_txt)]
        print(f"{args.model}: {args.images} images ({args.size}px PNG), {len(texts)} texts, "
              f"torch threads {torch.get_num_threads()}, rasteriser {galleries.svg_rasteriser() is not None}, "
              f"{machine_load()}")
        pure_forward(encoder, pixels[:1], tokens[:1])  # warm-up
        forward, prefetch, sequential = [], [], []
        for _ in range(args.repeats):
            forward.append(pure_forward(encoder, pixels, tokens))
            prefetch.append(evaluation(encoder, gallery_dir, pairs, workers=4))
            sequential.append(evaluation(encoder, gallery_dir, pairs, workers=0))
    f = statistics.median(forward)
    print(f"pure forward            {median_and_runs(forward)}")
    for label, runs in (("evaluation (prefetch)  ", prefetch), ("evaluation (sequential)", sequential)):
        print(f"{label} {median_and_runs(runs)}   ratio to forward {statistics.median(runs) / f:.3f}")
    ratio = statistics.median(prefetch) / f
    print(f"goal: evaluation within 15 % of pure forward -> {'met' if ratio <= 1.15 else 'NOT met'} ({machine_load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
