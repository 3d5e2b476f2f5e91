from types import SimpleNamespace

import pytest

from paraclip.errors import DataError
from paraclip.files import DamagedCacheWarning
from paraclip.miniworld.jsonl import read_metrics_rows, read_run_json
from paraclip.miniworld.selection import read_selection, selection_file


@pytest.mark.parametrize("damage, message", [
    (b'{"bigram_novelty": {', r"malformed JSON"),
    (b"\xff\xfe", r"not valid UTF-8"),
    (b'["a list"]', r"expected a JSON object, found list"),
])
def test_a_damaged_stage_output_names_the_file_and_how_to_redo_the_stage(tmp_path, damage, message):
    path = tmp_path / "evalsets" / "summary.json"
    path.parent.mkdir()
    path.write_bytes(damage)
    with pytest.raises(DataError, match=rf"summary\.json.*{message}.*delete .*evalsets and rerun"):
        read_run_json(path, redo=path.parent)


def test_a_damaged_selection_is_an_error_not_a_traceback(tmp_path):
    run = SimpleNamespace(root=tmp_path)
    assert read_selection(run) is None
    selection_file(run).parent.mkdir(parents=True)
    selection_file(run).write_text('{"chosen_step": 3, "mean')
    with pytest.raises(DataError, match=r"selection\.json: malformed JSON.*delete .*selection and rerun"):
        read_selection(run)
    selection_file(run).write_text('{"chosen_step": 3}')
    assert read_selection(run) == {"chosen_step": 3}


def test_damaged_training_log_rows_are_left_out_of_the_curves_with_a_note(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1, "loss": 2.0}\n{"step": 2, "lo\n\xff\n\n[3]\n{"step": 3, "loss": 1e400}\n')
    with pytest.warns(DamagedCacheWarning, match=r"metrics\.jsonl: 3 damaged rows left out"):
        rows = read_metrics_rows(path)
    assert rows == [{"step": 1, "loss": 2.0}, {"step": 3, "loss": float("inf")}]
