"""Compare's tasks: a task without its data is skipped with a note naming the files, the others run;
ARO's files can be uploaded."""

from __future__ import annotations

import json
import zipfile

import pytest
from PIL import Image

from paraclip.evaluation.suite import SuiteData
from tests.workbench.plot_geometry import figure_of
from workbench import compare, compare_tasks
from workbench.uploads import UploadError


def run_to_end(gen):
    last = None
    for last in gen:
        pass
    return last


def test_all_seven_sts_sets_become_single_tasks_each_listed_once():
    assert compare_tasks.expand(["STSB", "sts", "vg-relation"]) == [
        "STSB", "STS12", "STS13", "STS14", "STS15", "STS16", "SICK-R", "vg-relation"]


def test_tasks_without_data_are_skipped_with_what_they_need_and_the_rest_are_built(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PARACLIP_STS_DIR", raising=False)
    built = compare_tasks.build_available(["vg-relation", "sts", "vg-attribution"], SuiteData())
    assert [ev.name for ev in built.evaluators] == ["STSB"]  # the packaged one runs offline
    skipped = "\n".join(built.skipped)
    assert len(built.skipped) == 3  # one note per reason: VG-R, VG-A, and the six STS sets together
    assert built.skipped_tasks == ["vg-relation", "STS12", "STS13", "STS14", "STS15", "STS16", "SICK-R",
                                   "vg-attribution"]
    assert "**vg-relation** skipped: its data is not on this server" in skipped
    assert "visual_genome_relation.json" in skipped and "upload them below" in skipped
    assert "**STS12**, **STS13**, **STS14**, **STS15**, **STS16**, **SICK-R** skipped: their data" in skipped
    assert "PARACLIP_STS_DIR" in skipped
    with pytest.raises(compare_tasks.NoTaskCanRun):
        raise compare_tasks.NoTaskCanRun("x")  # a DataError: shown as our own message in public mode too


def test_a_comparison_with_vg_ticked_runs_the_tasks_that_can_and_notes_the_rest(services, monkeypatch):
    monkeypatch.delenv("PARACLIP_ARO_DIR", raising=False)
    models = services.model_labels()
    tasks = ["STS-B (offline)", "VG-Relation (ARO data)", "VG-Attribution (ARO data)"]
    last = run_to_end(compare.run_compare(services, {}, models[0], [models[1]], tasks, None, "", "10", 0))
    status, results, deltas, summary, notes, *_ = last
    assert status.startswith("✅") and "2 skipped" in status, status
    assert set(results["task"]) == {"STSB"}
    assert "**vg-relation** skipped" in notes and "**vg-attribution** skipped" in notes
    only_vg = run_to_end(compare.run_compare(services, {}, models[0], [], tasks[1:], None, "", "10", 0))
    assert only_vg[0].startswith("❌ None of the ticked tasks can run here"), only_vg[0]
    assert "visual_genome_attribution.json" in only_vg[4]


def _aro_zip(tmp_path, with_images=True):
    record = {"image_path": "1.jpg", "bbox_x": 0, "bbox_y": 0, "bbox_w": 8, "bbox_h": 8,
              "true_caption": "the horse is eating the grass", "false_caption": "the grass is eating the horse",
              "relation_name": "eating"}
    Image.new("RGB", (8, 8), "green").save(tmp_path / "1.jpg")
    path = tmp_path / "aro.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("aro/visual_genome_relation.json", json.dumps([record]))
        if with_images:
            archive.write(tmp_path / "1.jpg", "aro/images/1.jpg")
        archive.writestr("../evil.json", "{}")
    return path


def test_an_aro_zip_becomes_the_sessions_aro_folder(services, tmp_path):
    session = {}
    message, session = compare.upload_aro(services, session, [str(_aro_zip(tmp_path))])
    assert message.startswith("✅ visual_genome_relation.json and 1 images"), message
    folder = compare_tasks.aro_dir(session)
    assert folder and (tmp_path / "x").parent != folder
    from pathlib import Path

    root = Path(folder)
    assert (root / "visual_genome_relation.json").is_file() and (root / "images" / "1.jpg").is_file()
    assert not list(root.parent.glob("evil.json")) and not (root / "evil.json").exists()
    no_images = tmp_path / "only"
    no_images.mkdir()
    message, _ = compare.upload_aro(services, {}, [str(_aro_zip(no_images, with_images=False))])
    assert message.startswith("❌") and "no images" in message
    with pytest.raises(UploadError, match="No ARO annotation file"):
        compare_tasks.save_aro_upload([str(tmp_path / "1.jpg")], tmp_path / "dest", 5)


def test_zero_shot_classification_shows_its_three_metrics_with_cis_and_says_why_acc5_is_missing(services):
    models = services.model_labels()
    task = "zero-shot classification (labelled images)"
    last = run_to_end(compare.run_compare(services, {}, models[0], [models[1]], [task], None, "", "10", 0,
                                          dataset="miniworld-count", templates="a picture of {c}.\n{c}."))
    status, results, deltas, summary, notes, *plots, files, _ = last
    assert status.startswith("✅ 2 results"), status
    rows = results.set_index("metric")
    assert list(rows.index) == ["acc1", "mean_per_class_recall"]  # acc5: three classes, undefined (CLIP_benchmark)
    assert rows.iloc[:, 2:].stack().between(0, 100).all()
    assert set(results["task"]) == set(deltas["task"]) == {"zero-shot"}  # short enough for a phone's table
    assert list(deltas["metric"]) == ["acc1", "mean_per_class_recall"]
    assert all(ci.startswith("[") for ci in deltas["95% CI"])
    assert "nan" not in summary.lower() and "zero-shot acc1: **" in summary
    assert "acc5 needs at least five classes" in notes
    shown = {slot for slot, plot in zip(compare.PLOT_SLOTS, plots) if plot.get("visible")}
    assert shown == {"classification", "forest"}
    bars = figure_of(dict(zip(compare.PLOT_SLOTS, plots))["classification"]["value"])
    assert {x for trace in bars.data for x in trace.x} == {"acc1", "mean per class recall"}  # no empty acc5


def test_zero_shot_classification_refuses_a_template_without_the_class_name(services):
    models = services.model_labels()
    last = run_to_end(compare.run_compare(services, {}, models[0], [], ["zero-shot classification (labelled images)"],
                                          None, "", "10", 0, dataset="miniworld-shape", templates="a {c}.\na photo."))
    assert last[0].startswith("❌ Templates box, line 2") and "{c}" in last[0], last[0]


def _class_zip(tmp_path, classes=("red thing", "blue_thing"), top="set"):
    path = tmp_path / "classes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for n, name in enumerate(classes):
            Image.new("RGB", (8, 8), (255 * (n == 0), 0, 255 * (n == 1))).save(tmp_path / f"{n}.png")
            for k in range(3):
                archive.write(tmp_path / f"{n}.png", f"{top}/{name}/{k}.png")
        archive.writestr("__MACOSX/set/._x.png", b"junk")
        archive.writestr("set/readme.txt", "not an image")
    return path


def test_a_zip_of_class_folders_becomes_the_sessions_dataset_and_is_scored(services, tmp_path):
    message, dropdown, session = compare.upload_classes(services, {}, [str(_class_zip(tmp_path))])
    assert message.startswith("✅ 6 images in 2 classes (blue_thing, red thing)"), message
    assert dropdown["value"] in dropdown["choices"] and dropdown["value"].startswith("uploaded: classes-")
    spec, templates = compare_tasks.classification_data(services, dropdown["value"], "", session)
    assert spec == session["class_dir"] and templates is None
    models = services.model_labels()
    last = run_to_end(compare.run_compare(services, session, models[0], [], ["zero-shot classification (labelled "
                                          "images)"], None, "", "10", 0, dataset=dropdown["value"]))
    assert last[0].startswith("✅ 1 results"), last[0]
    assert set(last[1]["n"]) == {"6"}


def test_a_class_zip_with_one_class_or_not_a_zip_is_refused_and_leaves_nothing(services, tmp_path):
    message, _, session = compare.upload_classes(services, {}, [str(_class_zip(tmp_path, classes=("only",)))])
    assert message.startswith("❌ The zip has 3 images in 1 class folder(s)") and "class_dir" not in session
    assert not list(services.session_dir(session).glob("classes-*"))
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(UploadError, match="bad.zip: not a readable zip file"):
        compare_tasks.save_class_zip([str(tmp_path / "bad.zip")], tmp_path / "dest", 5)
    with pytest.raises(UploadError, match="one folder of images per class"):
        compare_tasks.save_class_zip([str(tmp_path / "0.png")], tmp_path / "dest", 5)


def test_in_a_public_app_a_typed_dataset_path_is_checked_like_the_other_boxes(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from workbench.policy import AccessPolicy, PolicyError

    monkeypatch.delenv("PARACLIP_APP_DATA_DIRS", raising=False)
    allowed = tmp_path / "allowed"
    (allowed / "cat").mkdir(parents=True)
    policy = AccessPolicy.from_env(public=True, roots=[allowed])
    fake = SimpleNamespace(policy=policy, real_path=lambda text, session: text,
                           allowed_roots=lambda session: [])
    with pytest.raises(PolicyError, match="^Dataset: this app is public"):
        compare_tasks.classification_data(fake, str(tmp_path), "", {})
    assert compare_tasks.classification_data(fake, str(allowed), "", {})[0] == str(allowed.resolve())
    for name in ("miniworld-colour", "tuxpaint"):  # the offline sets: names, not paths
        assert compare_tasks.classification_data(fake, name, "", {})[0] == name
    with pytest.raises(PolicyError, match="^Dataset 'imagenet1k': this public app does not fetch datasets from the hub"):
        compare_tasks.classification_data(fake, "imagenet1k", "", {})  # gigabytes: not on a visitor's word
