"""Paraphrased-retrieval throughput on a large gallery with cached image features (CPU).

Issue "Evaluation suite": a 100k-image gallery with 5k query pairs must run on CPU with cached
features, scoring in blocks (no full query × gallery matrix beyond a memory budget); report
queries/s. Measured side by side in one run, ``--repeats`` times each, medians reported:

1. **chunked**: :func:`paraclip.evaluation.metrics.gallery_search` under the default 256 MB
   budget (top-10 lists + the rank of the true image), for the 5k queries and their 5k
   paraphrases, then AO@10 / JS@10 (the whole scoring stage of the evaluator);
2. **float32 scores**: the same blocks with ``exact=False`` — float32 products instead of the
   exact fixed-point/float64 ones, the cost of making ties independent of the blocks;
3. **full matrix**: the same with one block (budget large enough for the whole 5k × 100k
   score matrix, 2 GB at float32) — the naive approach, as the reference for speed;
4. **end to end**: ``ParaphrasedRetrievalEvaluator.item_scores`` with a real text encoder
   (``paraclip-mini`` by default: its text tower encodes the 10k texts) and the gallery's
   features read from the on-disk fp16 feature cache (pre-filled with random unit vectors, as
   ``paraclip train`` / a previous evaluation would have left it).

    .venv/bin/python bench/eval_gallery_throughput.py                      # 100k images, 5k pairs
    .venv/bin/python bench/eval_gallery_throughput.py --gallery 20000 --pairs 1000 --repeats 1
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine_load, random_encoder, timed  # noqa: E402

from paraclip.data.galleries import Gallery  # noqa: E402
from paraclip.evaluation.metrics import gallery_search, rank_similarity  # noqa: E402
from paraclip.evaluation.paraphrased import ParaphrasedRetrievalEvaluator, ParaphrasePairs  # noqa: E402
from paraclip.features import FeatureCache, model_fingerprint  # noqa: E402

WORDS = ("red green blue small large striped wooden metal cat dog car boat tree house person bird table chair "
         "on under beside behind holding riding near two three a the with and").split()


def unit(rng, n, d):
    x = torch.from_numpy(rng.standard_normal((n, d), dtype=np.float32))
    return torch.nn.functional.normalize(x, dim=-1)


def score(q, p, gallery, labels, budget_mb, exact=True):
    g_labels = np.arange(gallery.shape[0])
    rq = gallery_search(q, gallery, 10, labels, g_labels, budget_mb, exact=exact)
    rp = gallery_search(p, gallery, 10, labels, g_labels, budget_mb, exact=exact)
    return rank_similarity(rq.topk, rp.topk, [10])


def sentence(rng):
    return " ".join(rng.choice(WORDS, size=rng.integers(5, 12)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=5_000)
    parser.add_argument("--dim", type=int, default=512, help="embedding width for the scoring runs (ViT-B-32: 512)")
    parser.add_argument("--model", default="paraclip-mini", help="text encoder for the end-to-end run")
    parser.add_argument("--budget-mb", type=float, default=256.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true", help="skip the full-matrix reference (needs ~3 GB)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n_queries = 2 * args.pairs
    print(f"gallery {args.gallery} images, {args.pairs} pairs ({n_queries} queries), dim {args.dim}, "
          f"torch threads {torch.get_num_threads()}, {machine_load()}")

    gallery = unit(rng, args.gallery, args.dim)
    q = unit(rng, args.pairs, args.dim)
    p = torch.nn.functional.normalize(q + 0.5 * unit(rng, args.pairs, args.dim), dim=-1)
    labels = rng.integers(0, args.gallery, args.pairs)

    t_chunk, chunked = timed(lambda: score(q, p, gallery, labels, args.budget_mb), args.repeats)
    print(f"chunked ({args.budget_mb:.0f} MB blocks): {t_chunk:7.2f} s  {n_queries / t_chunk:9.0f} queries/s   "
          f"(peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB)")
    t_f32, f32 = timed(lambda: score(q, p, gallery, labels, args.budget_mb, exact=False), args.repeats)
    print(f"float32 scores (same blocks):  {t_f32:7.2f} s  {n_queries / t_f32:9.0f} queries/s   "
          f"exact/float32 time ratio {t_chunk / t_f32:.2f}  (same AO@10: {np.allclose(chunked['AO@10'], f32['AO@10'])})")
    if not args.skip_full:
        full_mb = 1.1 * args.pairs * args.gallery * 8 / 2**20
        t_full, full = timed(lambda: score(q, p, gallery, labels, full_mb), args.repeats)
        same = np.allclose(chunked["AO@10"], full["AO@10"])
        print(f"full matrix ({full_mb:.0f} MB):     {t_full:7.2f} s  {n_queries / t_full:9.0f} queries/s   "
              f"chunked/full time ratio {t_chunk / t_full:.2f}  (same AO@10: {same})")

    # end to end: real text tower, gallery features from the on-disk cache
    encoder = random_encoder(args.model)
    width = encoder.encode_text(["probe"]).shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(tmp, model_fingerprint(encoder))
        ids = [f"img{i:06d}" for i in range(args.gallery)]
        captions = [[sentence(rng)] for _ in ids]
        fake = Gallery("bench", ids, captions, [Path(tmp) / "never-opened.png"] * len(ids), source="synthetic")
        fake.cache_key = "content-of-{}".format  # stands in for each file's content hash: no file exists
        keys = [fake.cache_key(i) for i in ids]
        for start in range(0, args.gallery, 10_000):
            cache.put(keys[start:start + 10_000], unit(rng, len(keys[start:start + 10_000]), width))
        picks = rng.choice(args.gallery, args.pairs, replace=False)
        pairs = ParaphrasePairs([captions[i][0] for i in picks], [sentence(rng) for _ in picks],
                                [ids[i] for i in picks], source="synthetic")
        ev = ParaphrasedRetrievalEvaluator(pairs, fake, feature_cache=cache, memory_budget_mb=args.budget_mb)
        texts = list(dict.fromkeys(pairs.originals + pairs.paraphrases))
        t_text, _ = timed(lambda: encoder.encode_text(texts, progress=False), args.repeats)
        t_read, _ = timed(lambda: FeatureCache(tmp, cache.dir.name).get(keys), args.repeats)
        t_e2e, _ = timed(lambda: ev.item_scores(encoder), args.repeats)
    print(f"end to end ({args.model}, width {width}): {t_e2e:7.2f} s  {n_queries / t_e2e:9.0f} queries/s "
          f"(of which text encoding {t_text:.2f} s, cache read {t_read:.2f} s)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB, {machine_load()} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
