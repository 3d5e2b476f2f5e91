import json

import pytest

from paraclip.files import DamagedCacheWarning
from paraclip.training.checkpoint import truncate_metrics


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_rows_after_the_resumed_step_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 6)))
    truncate_metrics(path, 3)
    assert [row["step"] for row in _rows(path)] == [1, 2, 3]
    truncate_metrics(tmp_path / "absent.jsonl", 3)  # no metrics yet: nothing to do
    assert not (tmp_path / "absent.jsonl").exists()


@pytest.mark.parametrize("damage", [
    b'{"step": 2, "lo',  # cut by kill -9
    b'{"step": 1e400}',  # overflows to infinity: int() of it raised OverflowError
    b'{"step": NaN}',
    b'{"step": 2.5}',
    b'{"step": "2"}',
    b'{"step": true}',
    b'[1, 2]',
    b'null',
    b'\xff\xfe garbage \x00',
    b'[' * 100_000,
])
def test_a_damaged_row_is_dropped_with_a_note(tmp_path, damage):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1, "loss": 2.0}\n' + damage + b'\n{"step": 2, "loss": 1.5}\n{"step": 4}\n')
    with pytest.warns(DamagedCacheWarning, match=r"metrics\.jsonl: 1 damaged metrics rows dropped \(lines 2\)"):
        truncate_metrics(path, 3)
    assert _rows(path) == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]


def test_a_damaged_step_checkpoint_is_skipped_with_a_note(tmp_path):
    import torch

    from paraclip.training.checkpoint import TRAIN_CHECKPOINT_FORMAT, RunFiles, latest_checkpoint

    files = RunFiles(tmp_path)
    assert latest_checkpoint(files) is None
    files.checkpoints.mkdir()
    torch.save({"format": TRAIN_CHECKPOINT_FORMAT, "step": 3}, files.step_path(3))
    files.step_path(6).write_bytes(files.step_path(3).read_bytes()[:40])  # cut by a full disk
    torch.save({"something": "else"}, files.step_path(9))
    with pytest.warns(DamagedCacheWarning) as caught:
        path, state = latest_checkpoint(files)
    assert path == files.step_path(3) and state["step"] == 3
    assert [str(w.message).split(": damaged checkpoint (")[0] for w in caught] == [
        str(files.step_path(9)), str(files.step_path(6))]
    assert "not a training checkpoint" in str(caught[0].message)
