import json

import pytest

from paraclip.files import DamagedCacheWarning
from paraclip.miniworld.config import MiniWorldConfig
from paraclip.miniworld.runner import Progress, Run, Stage


def _stage(run, calls, value="v1"):
    """A stage writing one output file, counting its runs in ``calls``."""
    out = run.root / "out" / "result.txt"

    def work():
        calls.append(value)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(value)
        return {"value": value}

    return Stage("demo", 1.0, "a demo stage", lambda fp: {"value": value}, [out.parent], work)


@pytest.fixture
def run(tmp_path):
    return Run(MiniWorldConfig.preset("smoke"), tmp_path / "run", Progress(verbose=False))


def test_a_finished_stage_is_cached_by_its_marker(run):
    calls = []
    assert run.run_stage(_stage(run, calls))["value"] == "v1"
    assert run.run_stage(_stage(run, calls))["value"] == "v1"
    assert calls == ["v1"]


@pytest.mark.parametrize("damage", [
    b'{"stage": "demo", "fingerp',  # cut short
    b"\xff\xfe\x00garbage",  # not UTF-8
    b"[1, 2, 3]",  # valid JSON, not a marker
    b'{"stage": "demo", "fingerprint": 12}',
    b"[" * 100_000,
])
def test_a_damaged_marker_makes_its_stage_rerun_with_a_note(run, damage):
    calls = []
    run.run_stage(_stage(run, calls))
    stale = run.root / "out" / "left-over.txt"  # an output the damaged marker can no longer vouch for
    stale.write_text("old")
    run.marker("demo").write_bytes(damage)
    with pytest.warns(DamagedCacheWarning, match=r"demo\.json: damaged cache .*rebuilding it"):
        info = run.run_stage(_stage(run, calls))
    assert calls == ["v1", "v1"] and info["value"] == "v1" and not stale.exists()
    assert json.loads(run.marker("demo").read_text())["fingerprint"] == info["fingerprint"]
    assert run.run_stage(_stage(run, calls)) == info and calls == ["v1", "v1"]  # the new marker is trusted


def test_an_edited_marker_number_is_only_printed_as_zero(run, capsys):
    calls = []
    run.run_stage(_stage(run, calls))
    marker = json.loads(run.marker("demo").read_text())
    run.marker("demo").write_text(json.dumps({**marker, "seconds": "lots"}))
    run.progress.verbose = True
    run.run_stage(_stage(run, calls))
    assert calls == ["v1"] and "cached (0 s when it ran)" in capsys.readouterr().err
