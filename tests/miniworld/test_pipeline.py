"""The whole reproduction at smoke size: real rendering, rewriter, training, evaluation and report.

The smoke run is built once per module (``smoke``). Tests that only read it use it as it is;
a test that changes the run folder asks for ``mutable_smoke``, which puts the folder back as it
was built afterwards (from a copy taken right after the build), so no test depends on another's
leftovers or on the order the tests run in. The folder is restored in place rather than copied
elsewhere because the trainer's resume check compares the paths saved in its checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time

import pytest
import torch

from paraclip.cli import main
from paraclip.miniworld.config import MiniWorldConfig
from paraclip.miniworld.jsonl import read_jsonl
from paraclip.miniworld.pipeline import ensure_default_models, plan_stages, planned_fingerprints, reproduce
from paraclip.miniworld.runner import Run
from paraclip.miniworld.tasks import TASK_NAMES


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("miniworld") / "run"
    config = MiniWorldConfig.preset("smoke", ablations=True)
    calls: list[tuple[int, int, str]] = []
    out = reproduce(config, root, progress=lambda done, total, message: calls.append((done, total, message)))
    shutil.copytree(root, root.with_name("as-built"), copy_function=shutil.copy2)
    return config, root, out, calls


@pytest.fixture
def mutable_smoke(smoke):
    """The smoke run, for a test that changes it; put back as built afterwards."""
    yield smoke
    root = smoke[1]
    shutil.rmtree(root)
    shutil.copytree(root.with_name("as-built"), root, copy_function=shutil.copy2)


def _markers(root):
    return {p.stem: json.loads(p.read_text()) for p in (root / "stages").glob("*.json")}


def test_reproduction_writes_an_honest_report(smoke):
    config, root, out, _ = smoke
    report = out.report.read_text()
    assert "## Headline: ParaCLIP against its fair controls" in report and "The paper's target effect" in report
    for section in ("## Protocol", "validation world", "seed 95 % CI", "verdict (item CI)", "Holm",
                    "## Vocabulary exposure", "## The paper's loss ablation", "Which arm wins where", "## Caveats",
                    "first scored it at **20", "canonical-word AO@10", "zero-shot shape acc@1"):
        assert section in report, section
    assert str(root) not in report  # no machine path
    for name in ("results.csv", "deltas.csv", "headline.csv", "arms.csv", "figures.html", "items.jsonl.gz",
                 "selection.json"):
        assert (root / "report" / name).stat().st_size > 0
    assert "plotly" in (root / "report" / "figures.html").read_text()[:5_000_000].lower()
    import pandas as pd

    results = pd.read_csv(root / "report" / "results.csv")
    tasks = set(TASK_NAMES.values()) - {TASK_NAMES["sts"]}  # STS-B: see test_sts_task_is_included_when_asked
    assert set(results["task"]) == tasks
    assert set(results["model"]) == {"baseline", "ParaCLIP", "LaCLIP-style", "CLIP fine-tuning"}
    assert "q_R@1" not in set(pd.read_csv(root / "report" / "deltas.csv").query("holm == True")["metric"])
    headline = pd.read_csv(root / "report" / "headline.csv")
    assert set(headline["baseline"]) == {"LaCLIP-style", "CLIP fine-tuning"} and set(headline["model"]) == {"ParaCLIP"}
    assert set(headline["verdict"]) <= {"better", "worse", "tie", "suggestive (better)", "suggestive (worse)",
                                        "uninformative"}
    deltas = pd.read_csv(root / "report" / "deltas.csv")
    row = deltas[(deltas.task == TASK_NAMES["in_vocab"]) & (deltas.metric == "AO@10")].iloc[0]
    assert row.ci_low <= row.delta <= row.ci_high and 0 < row.p_boot <= 1
    arms = pd.read_csv(root / "report" / "arms.csv")
    from paraclip.miniworld.ablations import ARMS

    assert set(arms["model"]) == {arm.label for arm in ARMS}
    assert set(arms["baseline"]) == {"baseline", ARMS[0].label}
    import gzip

    with gzip.open(root / "report" / "items.jsonl.gz", "rt") as f:
        items = [json.loads(line) for line in f]
    assert {(r["part"], r["model"]) for r in items} >= {("main", "ParaCLIP"), ("ablations", ARMS[1].label)}
    assert all(len(next(iter(r["items"].values()))) == r["n"] for r in items if r["items"])


def test_rate_and_step_are_chosen_on_the_validation_world_and_scored_once(smoke):
    from paraclip.miniworld.arms import LACLIP, PARACLIP, main_arm_checkpoint
    from paraclip.miniworld.selection import choose, read_selection

    config, root, out, _ = smoke
    run = Run(config, root)
    sel = read_selection(run)
    assert sel["candidates"] == [1, 2, 3] and {r["step"] for r in sel["rows"]} == {None, 1, 2, 3}
    assert set(sel["chosen"]) == {"paraclip", "laclip", "clip"}
    for arm in ("paraclip", "laclip", "clip"):
        assert sel["chosen"][arm] == choose([r for r in sel["rows"] if r["arm"] == arm])
    chosen = sel["chosen"]["paraclip"]
    path = main_arm_checkpoint(run, PARACLIP, 0, chosen["lr"], chosen["step"])
    assert out.checkpoints["paraclip"][0] == path
    models = _markers(root)["evaluate-s0"]["models"]
    assert models["ParaCLIP"] == path
    assert models["LaCLIP-style"] == main_arm_checkpoint(run, LACLIP, 0, sel["chosen"]["laclip"]["lr"],
                                                         sel["chosen"]["laclip"]["step"])
    # the test world's first scoring is recorded once and kept
    from paraclip.miniworld.scoring import note_test_world_scoring

    first = json.loads((root / "test-world-scored.json").read_text())["first_scored"]
    assert note_test_world_scoring(run) == first == _markers(root)["evaluate-s0"]["test_world_first_scored"]
    # the validation scores came from the validation world's own sets
    assert (root / "evalsets" / "val" / "pairs-in-vocab.jsonl").is_file()
    val_ids = {r["image_id"] for r in read_jsonl(root / "evalsets" / "val" / "pairs-in-vocab.jsonl")}
    assert val_ids and all(i.startswith("val-") for i in val_ids)


def test_ablation_arms_share_data_steps_and_seed(smoke):
    from paraclip.miniworld.ablations import ARMS

    config, root, _, _ = smoke
    base = root / "runs" / "baseline-s0" / "final.pt"
    for arm in ARMS:
        meta = torch.load(root / "runs" / f"abl-{arm.name}-s0" / "final.pt", weights_only=True)["paraclip"]
        cfg = meta["config"]
        assert meta["loss_preset"] == arm.loss and meta["step"] == config.ablation_steps
        assert cfg["seed"] == 0 and cfg["model"] == str(base) and cfg["data"] == str(root / "data" / "paraphrases.jsonl")
        assert cfg["batch_size"] == config.ablation_batch_size * arm.batch_factor and cfg["lr"] == config.ablation_lr


def test_paraclip_changed_only_the_text_tower(smoke):
    from paraclip.models import load_encoder

    _, _, out, _ = smoke
    base = load_encoder(out.checkpoints["baseline"][0], device="cpu").model.state_dict()
    tuned = load_encoder(out.checkpoints["paraclip"][0], device="cpu").model.state_dict()
    visual = [k for k in base if k.startswith("visual.")]
    assert visual and all(torch.equal(base[k], tuned[k]) for k in visual)
    assert any(not torch.equal(base[k], tuned[k]) for k in base if k.startswith("transformer."))


def test_progress_moves_forward_to_the_end(smoke):
    _, _, _, calls = smoke
    done = [c[0] for c in calls]
    assert done == sorted(done) and done[-1] == calls[-1][1] == 1000
    assert any("baseline" in c[2] for c in calls)


def test_rerun_skips_finished_stages(mutable_smoke):
    config, root, built, _ = mutable_smoke
    before = _markers(root)
    out = reproduce(config, root)
    after = _markers(root)
    assert after.keys() == before.keys()
    for name, marker in before.items():  # the report too: its fingerprint is its inputs', not the time
        assert after[name]["finished"] == marker["finished"], name
    assert out.checkpoints["paraclip"][0] == built.checkpoints["paraclip"][0]
    assert out.report.read_text() == built.report.read_text()


def test_interrupted_stage_is_finished_on_rerun(mutable_smoke):
    """A crash after training but before its marker: the trainer finds the finished run, nothing retrains."""
    config, root, _, _ = mutable_smoke
    (root / "stages" / "paraclip-lr0.001-s0.json").unlink()
    mtime = (root / "runs" / "paraclip-lr0.001-s0" / "final.pt").stat().st_mtime
    reproduce(config, root, evaluate=False)
    assert (root / "stages" / "paraclip-lr0.001-s0.json").is_file()
    assert (root / "runs" / "paraclip-lr0.001-s0" / "final.pt").stat().st_mtime == mtime


def test_changed_setting_redoes_what_depends_on_it(mutable_smoke):
    config, root, _, _ = mutable_smoke
    before = _markers(root)
    changed = dataclasses.replace(config, paraclip_steps=config.paraclip_steps + 1)
    reproduce(changed, root, evaluate=False)
    after = _markers(root)
    assert after["baseline-s0"]["finished"] == before["baseline-s0"]["finished"]
    assert after["paraclip-lr0.001-s0"]["finished"] != before["paraclip-lr0.001-s0"]["finished"]
    assert after["paraclip-lr0.001-s0"]["steps"] == config.paraclip_steps + 1


def test_cli_reproduce_resumes_and_prints_the_verdict(mutable_smoke, capsys):
    _, root, _, _ = mutable_smoke
    assert main(["miniworld", "--reproduce", "--preset", "smoke", "--out", str(root)]) == 0
    out = capsys.readouterr().out
    assert "report:" in out and "target effect" in out


def test_cli_rejects_unknown_settings(capsys):
    assert main(["miniworld", "--reproduce", "--preset", "smoke", "--set", "baseline_stepz=3"]) == 2
    assert "baseline_steps" in capsys.readouterr().err
    assert main(["miniworld", "--reproduce", "--preset", "smok"]) == 2
    assert "smoke" in capsys.readouterr().err


def test_default_models_for_the_app(mutable_smoke):
    from paraclip.data.galleries import load_gallery
    from paraclip.models import load_encoder

    config, root, _, _ = mutable_smoke
    paths = ensure_default_models(root=root, config=config)
    assert set(paths) == {"baseline", "paraclip", "gallery"}
    gallery = load_gallery(paths["gallery"])
    assert len(gallery) == config.n_eval
    encoder = load_encoder(paths["paraclip"], device="cpu")
    image = gallery.load_image(gallery.ids[0])
    scores = encoder.encode_image([image]) @ encoder.encode_text([gallery.caption_of(gallery.ids[0]), "x"]).T
    assert scores.shape == (1, 2)


def test_default_gallery_is_the_held_out_world(smoke):
    from paraclip.miniworld import default_gallery

    config, root, _, _ = smoke
    gallery = default_gallery(root, config)
    assert len(gallery) == config.n_eval and gallery.ids[0].startswith("test3-")
    assert gallery.load_image(gallery.ids[0]).size == (config.image_size, config.image_size)


def test_world_on_disk_is_disjoint_and_matches_the_records(smoke):
    _, root, _, _ = smoke
    run = Run(MiniWorldConfig.preset("smoke"), root)
    train = read_jsonl(run.world / "train.jsonl")
    held = read_jsonl(run.world / "eval.jsonl")
    val = read_jsonl(run.world / "val.jsonl")
    assert len(val) == run.config.n_val
    from paraclip.miniworld.world import SceneSpec

    keys = [{SceneSpec.from_dict(r["spec"]).meaning_key() for r in split} for split in (train, held, val)]
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]
    assert all((run.train_images / f"{r['image_id']}.png").is_file() for r in train)
    para = read_jsonl(run.paraphrases)
    assert [r["image_id"] for r in para] == [r["image_id"] for r in train]
    assert all(r["status"] == "ok" for r in para)


def test_sts_task_is_included_when_asked(smoke):
    from paraclip.miniworld.tasks import build_tasks

    config, root, _, _ = smoke
    evaluators, notes = build_tasks(Run(dataclasses.replace(config, sts=True), root))
    names = [ev.name for ev in evaluators]
    if notes:  # no STS-B data on this machine: said, not hidden
        assert "STS-B skipped" in notes[0] and TASK_NAMES["sts"] not in names
    else:
        assert TASK_NAMES["sts"] in names and len(evaluators[-1]) > 1000


def test_llm_source_through_the_real_engine(mutable_smoke, monkeypatch):
    """The second source: the paraphrasing engine against a local chat-completions server, every
    output checked against its scene, and ParaCLIP trained on each variant of the data."""
    from paraclip.testing.mock_server import Faults, MockChatServer

    config, root, _, _ = mutable_smoke
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-not-secret")
    with MockChatServer(Faults(p_copy=0.2, seed=1)) as server:
        llm_config = dataclasses.replace(config, llm_captions=24, llm_backend="openai", llm_model="mock",
                                         llm_base_url=server.base_url)
        out = reproduce(llm_config, root)
        assert len(server.bodies) >= 48  # two steps per caption, plus re-samples of copies
    summary = json.loads((root / "data" / "llm-summary.json").read_text())
    assert summary["captions"] == 24
    assert sum(summary["outcomes"].values()) == 24  # every caption accounted for
    # the mock server prefixes "An image showing ..." / "A photo depicting ...": the meaning is kept
    assert summary["accepted"] == summary["engine_ok"] > 0
    checked = read_jsonl(root / "data" / "llm-checked.jsonl")
    assert len(checked) == 24 and all(r["status"] in ("ok", "failed", "filtered") for r in checked)
    assert set(out.checkpoints) >= {"baseline", "paraclip", "ParaCLIP (LLM, checked)"}
    report = out.report.read_text()
    assert "Second paraphrase source" in report and "ParaCLIP (LLM, checked)" in report
    markers = _markers(root)
    print({k: (v['seconds'], v.get('cpu_seconds')) for k, v in markers.items()})


def test_parallel_rendering_gives_the_same_world(tmp_path, monkeypatch):
    from paraclip.miniworld import stages

    config = MiniWorldConfig.preset("smoke", n_train=60, n_eval=20, n_val=20)
    stages.build_world(Run(config, tmp_path / "one"))
    monkeypatch.setattr(stages, "PARALLEL_RENDER_MIN", 10)
    monkeypatch.setattr(stages, "RENDER_CHUNK", 16)
    info = stages.build_world(Run(config, tmp_path / "two"))
    assert info["render_workers"] == min(2, __import__("os").cpu_count() or 1)
    one = sorted((tmp_path / "one" / "world").rglob("*.png"))
    two = sorted((tmp_path / "two" / "world").rglob("*.png"))
    assert len(one) == len(two) == 100
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(one, two))
    assert (tmp_path / "one" / "world" / "train.jsonl").read_text() == \
        (tmp_path / "two" / "world" / "train.jsonl").read_text()


def _planned_fingerprints(config, root) -> dict[str, str]:
    return {name: fingerprint for name, (fingerprint, _) in planned_fingerprints(Run(config, root)).items()}


def test_fingerprints_come_from_the_settings_not_the_clock(tmp_path, monkeypatch):
    """Two plans of the smoke preset, twelve hours apart, fingerprint every stage alike (the report
    included); a changed setting changes the fingerprints of what depends on it, and only those."""
    config = MiniWorldConfig.preset("smoke", ablations=True)
    first = _planned_fingerprints(config, tmp_path / "a")
    later = time.time() + 12 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    second = _planned_fingerprints(config, tmp_path / "b")
    assert first == second
    assert {"world", "paraclip-lr0.001-s0", "select", "evaluate-s0", "abl-evaluate-s0", "report"} <= first.keys()
    changed = _planned_fingerprints(dataclasses.replace(config, paraclip_steps=config.paraclip_steps + 1), tmp_path)
    differ = {name for name in first if first[name] != changed[name]}
    assert differ == {"paraclip-lr0.001-s0", "laclip-lr0.001-s0", "clip-lr0.001-s0", "select", "evaluate-s0",
                      "report"}


def test_planned_fingerprints_are_the_ones_the_run_recorded(smoke):
    config, root, _, _ = smoke
    planned = planned_fingerprints(Run(config, root))
    assert {name: fp for name, (fp, _) in planned.items()} == {n: m["fingerprint"] for n, m in _markers(root).items()}


def test_progress_plan_and_the_run_use_one_list_of_stages(smoke):
    config, root, out, calls = smoke
    names = [stage.name for stage in plan_stages(Run(config, root))]
    assert list(out.stages) == names  # every planned stage ran, in the planned order
    assert sum(1 for c in calls if c[2].endswith(("(cached)", " s")) and ": done" in c[2]) == len(names)
