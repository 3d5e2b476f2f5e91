"""Compare's tasks: a task without its data is skipped with a note naming the files, the others run;
ARO's files can be uploaded."""

from __future__ import annotations

import json
import zipfile

import pytest
from PIL import Image

from paraclip.evaluation.suite import SuiteData
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
