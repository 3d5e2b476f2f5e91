"""Zero-shot classification: datasets (folder, webdataset, hub, Tux Paint, mini-world), templates, metrics,
the class-stratified bootstrap, the CLI, and parity with CLIP_benchmark's own code."""

from __future__ import annotations

import io
import math
import tarfile

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from paraclip.cli import main
from paraclip.data.classification import (
    folder_dataset,
    load_classification_dataset,
    miniworld_dataset,
    read_templates,
    tuxpaint_dataset,
    wds_dataset,
)
from paraclip.errors import DataError
from paraclip.evaluation.bootstrap import paired_bootstrap
from paraclip.evaluation.zeroshot import ZeroShotClassificationEvaluator, true_class_ranks
from paraclip.models import load_encoder

from .conftest import COLOURS

CLASSES = ("red", "green", "blue", "yellow", "purple", "orange")
PER_CLASS = (3, 3, 2, 4, 3, 1)  # unequal on purpose: mean per-class recall then differs from acc1


def _image(rgb, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(np.clip(np.array(rgb) + rng.integers(-15, 16, size=(12, 12, 3)), 0, 255).astype(np.uint8))


def _samples():
    """(class index, image) for every test image, in class order."""
    out, seed = [], 0
    for label, (name, n) in enumerate(zip(CLASSES, PER_CLASS)):
        for _ in range(n):
            # every third image is painted in the next class's colour: a classifier by colour misses it
            colour = CLASSES[(label + 1) % len(CLASSES)] if seed % 3 == 2 else name
            out.append((label, _image(COLOURS[colour], seed)))
            seed += 1
    return out


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("by-class")
    for n, (label, image) in enumerate(_samples()):
        (root / f"{CLASSES[label]}_paint").mkdir(exist_ok=True)
        image.save(root / f"{CLASSES[label]}_paint" / f"{n:03d}.png")
    return root


@pytest.fixture(scope="module")
def wds_folder(tmp_path_factory):
    """CLIP_benchmark's layout: classnames.txt, templates, test/0.tar + test/1.tar of (webp|png, cls)."""
    root = tmp_path_factory.mktemp("wds")
    (root / "test").mkdir()
    (root / "classnames.txt").write_text("\n".join(f"{c} paint" for c in CLASSES) + "\n")
    (root / "zeroshot_classification_templates.txt").write_text("a photo of {c}.\nsome {c} here.\n")
    samples = _samples()
    for shard, part in enumerate((samples[:7], samples[7:])):
        with tarfile.open(root / "test" / f"{shard}.tar", "w") as tar:
            for n, (label, image) in enumerate(part):
                key = f"s{shard}_{n:04d}"
                buf = io.BytesIO()
                image.save(buf, format="PNG")
                for ext, data in (("png", buf.getvalue()), ("cls", str(label).encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return root


def test_folder_dataset_reads_class_names_from_folders_or_classnames_txt(class_folder, tmp_path):
    ds = folder_dataset(class_folder)
    assert ds.classnames == sorted(f"{c} paint" for c in CLASSES)
    assert len(ds) == sum(PER_CLASS) and sorted(ds.class_counts()) == sorted(PER_CLASS)
    assert ds.templates is None

    bad = tmp_path / "bad"
    (bad / "a").mkdir(parents=True)
    (bad / "b").mkdir()
    Image.new("RGB", (4, 4)).save(bad / "a" / "x.png")
    (bad / "classnames.txt").write_text("only one\n")
    with pytest.raises(DataError, match=r"1 class names for 2 class folders"):
        folder_dataset(bad)
    (bad / "classnames.txt").write_text("cat\ncat\n")
    with pytest.raises(DataError, match=r"classnames.txt:2: class name 'cat' already on line 1"):
        folder_dataset(bad)
    (bad / "classnames.txt").write_text("a cat\na dog\n")
    assert folder_dataset(bad).classnames == ["a cat", "a dog"]


def test_templates_file_is_checked_line_by_line(tmp_path):
    good = tmp_path / "t.txt"
    good.write_text("a photo of a {c}.\n\n  a {c} drawing.  \n")
    assert read_templates(good) == ["a photo of a {c}.", "a {c} drawing."]
    bad = tmp_path / "bad.txt"
    bad.write_text("a photo of a {c}.\na photo of a {}.\n")
    with pytest.raises(DataError, match=r"bad.txt:2: template .* has no \{c\}"):
        read_templates(bad)
    bad.write_text("a {c} in {place}.\n")
    with pytest.raises(DataError, match=r"bad.txt:1: .*not a valid format string"):
        read_templates(bad)


def test_colour_classifier_scores_and_undefined_acc5(colour_encoder, class_folder):
    ds = folder_dataset(class_folder)
    ev = ZeroShotClassificationEvaluator(ds, ["a {c}."])
    items = ev.item_scores(colour_encoder)
    labels, ranks = items["label"], items["rank"]
    # file NNN.png is sample NNN; every third one is repainted and must miss
    expect_hit = np.array([int(i.split("/")[1][:3]) % 3 != 2 for i in ds.gallery.ids])
    assert np.array_equal(ranks == 0, expect_hit)
    m = ev.metrics(items)
    assert m["acc1"] == pytest.approx(100 * np.mean(ranks == 0))
    recall = [np.mean(ranks[labels == c] == 0) for c in range(6)]
    assert m["mean_per_class_recall"] == pytest.approx(100 * np.mean(recall))
    assert m["mean_per_class_recall"] != pytest.approx(m["acc1"])  # unequal class sizes
    assert m["acc1"] == pytest.approx(100 * expect_hit.mean())  # by construction: hit unless repainted
    assert m["acc5"] >= m["acc1"]

    two = ZeroShotClassificationEvaluator(
        type(ds)("two", ds.gallery.subset(4), ds.labels[:4], ds.classnames[:2]), ["a {c}."])
    res = two.evaluate(colour_encoder)
    assert math.isnan(res.metrics["acc5"]) and "five classes" in res.notes["acc5"]


def test_ties_count_against_the_true_class():
    logits = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0], [3.0, 1.0, 2.0]])
    assert true_class_ranks(logits, np.array([0, 2, 0])).tolist() == [1, 1, 0]


def test_wds_layout_and_hub_loader(colour_encoder, class_folder, wds_folder, tmp_path, monkeypatch):
    ds = wds_dataset(wds_folder, extract_to=tmp_path / "x")
    assert ds.classnames == [f"{c} paint" for c in CLASSES]
    assert ds.templates == ["a photo of {c}.", "some {c} here."]
    assert ds.class_counts() == list(PER_CLASS)
    via_folder = ZeroShotClassificationEvaluator(folder_dataset(class_folder), ["a photo of {c}.", "some {c} here."])
    via_wds = ZeroShotClassificationEvaluator(ds)  # the dataset's own templates
    assert via_wds.templates_from.endswith("own templates")
    assert via_wds(colour_encoder) == pytest.approx(via_folder(colour_encoder))

    asked = {}

    def fake_snapshot(repo_id, repo_type, allow_patterns):
        asked.update(repo_id=repo_id, repo_type=repo_type, patterns=allow_patterns)
        return str(wds_folder)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    hub = load_classification_dataset("cifar10")
    assert asked == {"repo_id": "clip-benchmark/wds_cifar10", "repo_type": "dataset",
                     "patterns": ["test/*", "classnames.txt", "zeroshot_classification_templates.txt"]}
    assert hub.name == "wds_cifar10" and len(hub) == len(ds)
    load_classification_dataset("wds_vtab-caltech101")
    assert asked["repo_id"] == "clip-benchmark/wds_vtab-caltech101"

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(DataError, match=r"Could not fetch clip-benchmark/wds_imagenet1k .*Offline, use"):
        load_classification_dataset("imagenet1k")
    with pytest.raises(DataError, match=r"not a folder and not a known dataset"):
        load_classification_dataset("no-such-set")


def test_wds_shard_with_a_bad_class_index(tmp_path):
    (tmp_path / "test").mkdir()
    (tmp_path / "classnames.txt").write_text("a\nb\n")
    with tarfile.open(tmp_path / "test" / "0.tar", "w") as tar:
        for name, data in (("k.png", b"x"), ("k.cls", b"7")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match=r"sample 'k' has class 7, but .*classnames.txt names 2 classes"):
        wds_dataset(tmp_path, extract_to=tmp_path / "x")


def test_tuxpaint_by_category(tmp_path):
    for category, stamp in (("animals", "cat"), ("animals/birds", "owl"), ("vehicles", "car"), ("food", "pie")):
        folder = tmp_path / category
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (200, 0, 0)).save(folder / f"{stamp}.png")
        (folder / f"{stamp}.txt").write_text(f"A {stamp}.\n")
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.png")
    (tmp_path / "loose.txt").write_text("No category.\n")
    ds = tuxpaint_dataset(tmp_path)
    assert ds.classnames == ["animals", "food", "vehicles"]
    assert sorted(zip(ds.gallery.ids, ds.labels)) == [
        ("tuxpaint/animals/birds/owl.png", 0), ("tuxpaint/animals/cat.png", 0), ("tuxpaint/food/pie.png", 1),
        ("tuxpaint/vehicles/car.png", 2)]


def test_miniworld_sets_are_labelled_renders(tmp_path):
    ds = miniworld_dataset("colour", per_class=2, image_size=32, out=tmp_path / "mw")
    assert len(ds) == 12 and ds.class_counts() == [2] * 6 and ds.templates
    red = np.asarray(ds.gallery.load_image(ds.gallery.ids[0]), dtype=float).reshape(-1, 3)
    assert ds.classnames[0] == "red" and (red[:, 0] - red[:, 2]).max() > 100  # some red pixels
    again = miniworld_dataset("colour", per_class=2, image_size=32, out=tmp_path / "mw2")
    assert [p.read_bytes() for p in ds.gallery.paths] == [p.read_bytes() for p in again.gallery.paths]
    counts = miniworld_dataset("count", per_class=1, image_size=32, out=tmp_path / "c")
    assert counts.classnames == ["one object", "two objects", "three objects"]
    with pytest.raises(DataError, match="one of shape, colour, count"):
        miniworld_dataset("texture")


def test_bootstrap_resamples_within_classes(colour_encoder, class_folder):
    ev = ZeroShotClassificationEvaluator(folder_dataset(class_folder), ["a {c}."])
    items = ev.item_scores(colour_encoder)
    seen = []
    metrics = ev.metrics

    def recording(items_, index=None):
        if index is not None:
            seen.append(np.bincount(np.asarray(items_["label"])[index], minlength=6))
        return metrics(items_, index)

    ev.metrics = recording
    other = {"label": items["label"], "rank": np.where(items["rank"] == 0, 1, 0)}
    deltas = paired_bootstrap(ev, {"a": items, "b": other}, n_boot=30, seed=1)
    assert len(seen) == 60 and all(np.array_equal(c, np.bincount(items["label"], minlength=6)) for c in seen)
    row = deltas.set_index("metric").loc["mean_per_class_recall"]
    assert row["ci_low"] <= row["delta"] <= row["ci_high"]


def _checkpoint(path, seed: int):
    import open_clip

    from paraclip.models.loading import register_project_configs

    register_project_configs()
    torch.manual_seed(seed)
    model = open_clip.create_model("paraclip-tiny")
    torch.save({"state_dict": model.state_dict(), "arch": "paraclip-tiny"}, path)
    return path


def test_cli(class_folder, tmp_path, capsys):
    a, b = _checkpoint(tmp_path / "base.pt", 0), _checkpoint(tmp_path / "tuned.pt", 1)
    templates = tmp_path / "templates.txt"
    templates.write_text("a photo of {c}.\na {c} square.\n")
    out = tmp_path / "out"
    rc = main(["evaluate", "--models", f"{a},{b}", "--tasks", "zeroshot-classification", "--dataset",
               str(class_folder), "--templates", str(templates), "--bootstrap", "40", "--out", str(out),
               "--device", "cpu"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "dataset by-class" in printed and "6 classes" in printed and "acc1" in printed
    deltas = pd.read_csv(out / "deltas.csv")
    assert set(deltas["metric"]) == {"acc1", "acc5", "mean_per_class_recall"}
    assert np.all(deltas["ci_low"] <= deltas["ci_high"])
    results = pd.read_csv(out / "results.csv")
    assert set(results["task"]) == {"zeroshot-classification"}

    bad = tmp_path / "bad.txt"
    bad.write_text("a photo of {}.\n")
    rc = main(["evaluate", "--models", str(a), "--tasks", "zeroshot", "--dataset", str(class_folder),
               "--templates", str(bad), "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.txt:1" in err and "{c}" in err
    rc = main(["evaluate", "--models", str(a), "--tasks", "zeroshot-classification", "--out", str(tmp_path / "o3")])
    assert rc == 2 and "--dataset" in capsys.readouterr().err


def _topk_accuracy(logits, target, topk):
    # clip-benchmark 1.6.2's accuracy() calls float() on a one-element array, which numpy 2.4 refuses;
    # the same top-k count without that call
    pred = logits.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    return [correct[:k].reshape(-1).float().sum().item() / len(target) for k in topk]


def test_parity_with_clip_benchmark(class_folder, monkeypatch):
    """CLIP_benchmark's evaluate() (its classifier, logits and mean per-class recall) on the same tiny
    open_clip model, images and templates."""
    zsc = pytest.importorskip("clip_benchmark.metrics.zeroshot_classification")
    try:
        zsc.accuracy(torch.eye(2), torch.tensor([0, 1]), topk=(1,))
    except TypeError:
        monkeypatch.setattr(zsc, "accuracy", _topk_accuracy)
    torch.manual_seed(3)
    encoder = load_encoder("paraclip-tiny", device="cpu")
    ds = folder_dataset(class_folder)
    templates = ["a photo of {c}.", "a {c} square.", "itap of a {c}."]
    ours = ZeroShotClassificationEvaluator(ds, templates)(encoder)

    class Images(torch.utils.data.Dataset):
        classes = ds.classnames

        def __len__(self):
            return len(ds)

        def __getitem__(self, n):
            return encoder.preprocess(ds.gallery.load_image(ds.gallery.ids[n])), ds.labels[n]

    loader = torch.utils.data.DataLoader(Images(), batch_size=4)
    theirs = zsc.evaluate(encoder.model, loader, encoder.tokenizer, ds.classnames, templates, "cpu", amp=False)
    for name in ("acc1", "acc5", "mean_per_class_recall"):
        assert ours[name] / 100 == pytest.approx(theirs[name], abs=1e-6), name


def test_a_dataset_adds_the_task_to_the_default_tasks():
    import argparse

    from paraclip.commands.evaluate import _default_tasks

    base = dict(pairs=None, aro_dir=None, sts_dir="x", dataset=None)
    assert "zeroshot-classification" not in _default_tasks(argparse.Namespace(**base))
    assert "zeroshot-classification" in _default_tasks(argparse.Namespace(**{**base, "dataset": "miniworld-shape"}))


def test_wds_extraction_is_keyed_by_the_shards_bytes_and_rebuilt_when_damaged(wds_folder, tmp_path):
    import shutil
    import warnings

    from paraclip.files import DamagedCacheWarning

    copy = tmp_path / "wds"
    shutil.copytree(wds_folder, copy)
    out = tmp_path / "x"
    first = wds_dataset(copy, extract_to=out)
    (out / "index.json").write_text("[[[[" * 3000)  # damaged (and nested past the recursion limit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = wds_dataset(copy, extract_to=out)
    assert any(issubclass(w.category, DamagedCacheWarning) for w in caught)
    assert again.labels == first.labels and again.classnames == first.classnames
    # the same folder with other shards of the same size: extracted again, not served from the old index
    with tarfile.open(copy / "test" / "0.tar") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(copy / "test" / "0.tar", "w") as tar:
        for m, data in members:
            if m.name.endswith(".cls"):
                data = str((int(data) + 1) % len(CLASSES)).encode()  # same size, other class
            tar.addfile(m, io.BytesIO(data))
    moved = wds_dataset(copy, extract_to=out)
    assert moved.labels[:7] == [(lab + 1) % len(CLASSES) for lab in first.labels[:7]]
    assert moved.labels[7:] == first.labels[7:]
