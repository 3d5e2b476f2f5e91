import json
import os

import pytest

from paraclip.errors import DataError
from paraclip.results import (MANIFEST_NAME, EvalResult, ResultFileError, load_results, read_result_folder,
                              record_result, result_file_name, results_frame, save_results)


def test_round_trip_and_frame(tmp_path):
    r = EvalResult(model="m", task="STSB", metrics={"spearman": 80.0, "pearson": 81.0}, main_metric="spearman",
                   source="local:x", n=10, seconds=1.5, pretrained="tag", details={"items": {"gold": [1.0]}})
    path = tmp_path / "out" / "r.json"
    save_results([r], path)
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)
    back = load_results(path)[0]
    assert back.metrics == r.metrics and back.details == r.details and back.versions["torch"]
    frame = results_frame([back])
    assert set(frame["metric"]) == {"spearman", "pearson"} and frame.loc[frame["main"], "value"].item() == 80.0
    doc = json.loads(path.read_text())
    doc["results"][0]["schema"] = "other/9"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not a paraclip.result/1"):
        load_results(path)


def _result(model="m", task="STSB", pretrained=None):
    return EvalResult(model=model, task=task, metrics={"spearman": 80.0}, main_metric="spearman", source="local:x",
                      n=10, seconds=1.0, pretrained=pretrained)


@pytest.mark.parametrize("content, names", [
    ("", ["is empty"]),
    ("   \n", ["is empty"]),
    ("[]", ["holds []", "not a paraclip.result/1 result"]),
    ("{}", ["holds {}", "not a paraclip.result/1 result"]),
    ('{"schema": "paraclip.result/1", "results": []}', ['"results" list is empty']),
    ("garbage\x00here", ["malformed JSON", "column 1", "damaged or truncated"]),
    ('{"schema": "paraclip.result/1", "results": [{"model": "m", "ta', ["malformed JSON", "truncated"]),
    ('{"schema": "paraclip.result/1", "results": [3]}', ["result 1 of 1 is not usable", "int"]),
    ('{"schema": "paraclip.result/1", "results": [{"schema": "paraclip.result/1", "model": "m"}]}',
     ["result 1 of 1 is not usable"]),
    ('"just a string"', ["holds \"just a string\""]),
])
def test_unusable_result_files_raise_one_error_naming_the_file(tmp_path, content, names):
    path = tmp_path / "bad__STSB.json"
    path.write_text(content)
    with pytest.raises(ResultFileError) as caught:
        load_results(path)
    message = str(caught.value)
    assert str(path) in message and all(n in message for n in names), message
    assert isinstance(caught.value, DataError) and isinstance(caught.value, ValueError)  # old `except ValueError` too


def test_a_folder_is_read_through_its_manifest_and_bad_files_are_named_not_used(tmp_path):
    good, twin = _result("runs/a_b/final.pt"), _result("runs/a/b/final.pt")
    names = []
    for res in (good, twin, _result("broken")):
        name = result_file_name(res.model, res.pretrained, res.task)
        save_results([res], tmp_path / name)
        record_result(tmp_path, name, res)
        names.append(name)
    assert len(set(names)) == 3
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())["files"]
    assert manifest[names[0]]["model"] == "runs/a_b/final.pt" and manifest[names[1]]["task"] == "STSB"
    (tmp_path / names[2]).write_text("{}")  # damaged after it was written
    (tmp_path / "stray__STSB.json").write_text("[]")  # not in the manifest: not read
    results, notes = read_result_folder(tmp_path)
    assert [r.model for r in results] == sorted([good.model, twin.model])
    assert len(notes) == 1 and names[2] in notes[0] and "holds {}" in notes[0]

    save_results([_result("other")], tmp_path / names[0])  # contents that do not match its manifest entry
    (tmp_path / names[1]).unlink()
    results, notes = read_result_folder(tmp_path)
    assert results == [] and len(notes) == 3
    assert any("another model or task" in n for n in notes) and any("missing" in n for n in notes)


@pytest.mark.parametrize("manifest", [None, "{not json", "[]", '{"schema": "paraclip.results-manifest/1"}'])
def test_a_missing_or_damaged_manifest_is_rebuilt_from_the_files_with_a_note(tmp_path, manifest):
    save_results([_result("a")], tmp_path / result_file_name("a", None, "STSB"))
    (tmp_path / "b__STSB.json").write_text("")  # damaged
    if manifest is not None:
        (tmp_path / MANIFEST_NAME).write_text(manifest)
    results, notes = read_result_folder(tmp_path)
    assert [r.model for r in results] == ["a"]
    assert any("b__STSB.json" in n and "is empty" in n for n in notes)
    assert any(MANIFEST_NAME in n for n in notes)  # said, not silent
    record_result(tmp_path, "x__STSB.json", _result("x"))  # the next write replaces a damaged manifest
    assert set(json.loads((tmp_path / MANIFEST_NAME).read_text())["files"]) == {"x__STSB.json"}
