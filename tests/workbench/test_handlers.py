"""Tab handlers called directly (no browser): uploads, paraphrasing + review, compare, explore, choices."""

from __future__ import annotations

import json
from dataclasses import replace

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
import pytest

from tests.workbench.plot_geometry import figure_of
from workbench import compare, explore, paraphrase, review, train
from workbench.uploads import UploadError, check_text_upload


def run_to_end(gen):
    last = None
    for last in gen:
        pass
    return last


@pytest.mark.parametrize("name, data, match", [
    ("captions.pdf", b"%PDF-1.4", "unsupported file type"),
    ("captions.txt", "a caf\xe9 by the sea\n".encode("latin-1"), "not UTF-8"),
    ("captions.txt", b"", "empty"),
    ("captions.txt", b"\x00\x01\x02binary", "binary"),
    ("captions.txt", b"x" * (2 * 1024 * 1024 + 1), "upload limit"),
])
def test_bad_uploads_give_a_message(tmp_path, name, data, match):
    src = tmp_path / name
    src.write_bytes(data)
    with pytest.raises(UploadError, match=match):
        check_text_upload(str(src), tmp_path / "session", max_mb=2)


def test_good_upload_is_copied_into_the_session_folder(tmp_path):
    src = tmp_path / "caps.csv"
    src.write_text("image_id,caption\n1,a dog on a red sofa\n", encoding="utf-8")
    dest = check_text_upload(str(src), tmp_path / "session", max_mb=2)
    assert dest.parent == tmp_path / "session" and dest.read_text(encoding="utf-8") == src.read_text()


def test_bad_upload_in_the_paraphrase_handler_is_a_visible_message(services, tmp_path):
    src = tmp_path / "caps.txt"
    src.write_bytes("caf\xe9 au lait on a table\n".encode("latin-1"))
    status, *_ = run_to_end(paraphrase.run_paraphrase(
        services, {}, paraphrase.ParaphraseForm(upload=str(src), preset="paper")))
    assert status.startswith("❌") and "UTF-8" in status


def test_paraphrase_review_and_export_with_a_local_api_server(services, chat_server):
    text = "image_id,caption\ntest-000000,two red circles left of a blue square\ntest-000001,a small green star above a cross\nx,one"
    earlier = len(chat_server.headers)  # the server is shared with other tests
    status, table, files, session, _ = run_to_end(paraphrase.run_paraphrase(
        services, {}, paraphrase.ParaphraseForm(text, backend=paraphrase.BACKEND_API, base_url=chat_server.base_url,
                                                api_model="mock", api_key="sk-secret-test", preset="paper",
                                                temperature=1.0, top_p=0.1)))
    assert status.startswith("✅"), status
    assert list(table["caption"]) == ["two red circles left of a blue square", "a small green star above a cross"]
    assert all(table["status"] == "ok") and all(table["paraphrase_2"].str.len() > 0)
    out = session["paraphrases"]
    assert "sk-secret-test" not in open(out, encoding="utf-8").read()
    assert "sk-secret-test" not in __import__("os").environ.values()  # handed to the backend, not the environment
    assert {h.get("Authorization") for h in chat_server.headers[earlier:]} == {"Bearer sk-secret-test"}
    assert sorted(p.rsplit(".", 1)[1] for p in files) == ["csv", "jsonl"]
    picked = {"file": out, "index": 0}
    # "rejected" on a clicked row (boxes pre-filled with its text) stores "rejected", not "edited"
    p1, p2 = table.loc[0, "paraphrase_1"], table.loc[0, "paraphrase_2"]
    msg, table, files, _ = review.apply_review(session, picked, 0, "rejected", p1, p2, "all")
    assert msg.startswith("✅") and table.loc[0, "review"] == "rejected", msg
    # "accepted" with the pre-filled text unchanged stays "accepted"
    msg, table, *_ = review.apply_review(session, {"file": out, "index": 1}, 1, "accepted",
                                         table.loc[1, "paraphrase_1"], table.loc[1, "paraphrase_2"], "all")
    assert table.loc[1, "review"] == "accepted", msg
    msg, table, *_ = review.apply_review(session, {"file": out, "index": 1}, 1, "accepted",
                                         "a little green star over a cross", table.loc[1, "paraphrase_2"], "all")
    assert table.loc[1, "review"] == "edited" and table.loc[1, "paraphrase_1"] == "a little green star over a cross"
    records = [json.loads(line) for line in open(out, encoding="utf-8")]
    assert records[1]["original"]["paraphrase_1"] != "a little green star over a cross"
    assert "paraphrase_2" not in records[1]["original"]  # only the edited text is replaced
    assert review.apply_review(session, None, 99, "accepted", "", "", "all")[0].startswith("❌")
    # a row picked in an earlier run's table is refused, not written into this run's row
    stale = review.apply_review(session, {"file": "/elsewhere/old.jsonl", "index": 1}, 1, "rejected", "x", "y", "all")
    assert stale[0].startswith("❌") and "earlier run" in stale[0]
    assert review.apply_review(session, picked, 0, "edited", p1, p2, "all")[0].startswith("❌")


def test_explore_shows_both_models_with_rank_metrics(services):
    models = services.model_labels()
    gallery = next(iter(services.defaults.gallery_choices()))
    page, metrics, fig, timing = explore.explore(services, models[0], models[1], gallery,
                                                 "two red circles left of a blue square",
                                                 "a pair of red circles to the left of a blue square", 5)
    assert page.count('class="pc-panel"') == 2 and page.count("<img") == 4 * 5
    assert list(metrics["model"]) == models[:2]
    assert metrics["AO@5"].between(0, 100).all() and metrics["JS@5"].between(0, 100).all()
    fig = figure_of(fig)  # plotly JSON, as the browser gets it
    assert isinstance(fig, go.Figure) and len(fig.data) == 2
    assert list(fig.data[0].x) == ["1", "2"] and fig.layout.height > 0
    assert timing.endswith("ms")
    # thumbnails travel inside the page: small WebP (PNG where Pillow lacks WebP), at most 96 px
    import base64
    import io
    import re

    from PIL import Image

    uris = re.findall(r'src="data:image/(webp|png);base64,([^"]+)"', page)
    assert len(uris) == 20
    fmt, data = uris[0]
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.format.lower() == fmt and max(image.size) <= 96
    bad_page, *_ = explore.explore(services, "no-such-model-xyz", None, gallery, "a", "b", 5)
    assert "pc-error" in bad_page


@pytest.mark.slow
def test_compare_runs_ao_js_by_default_and_shows_n_deltas_and_one_plot_per_group(services):
    models = services.model_labels()
    gallery = next(iter(services.defaults.gallery_choices()))
    last = run_to_end(compare.run_compare(services, {}, models[0], [models[1]], compare.DEFAULT_TASKS, gallery, "",
                                          "1,5", 0))
    status, results, deltas, summary, notes, *figures, files, session = last
    assert status.startswith("✅"), status
    assert set(results.columns) >= {"task", "metric", "n", *models[:2]}
    assert set(results["task"]) == {"retrieval", "paraphrased-retrieval", "STSB"}
    assert set(results.loc[results.task == "paraphrased-retrieval", "metric"]) == {"AO@1", "JS@1"}
    assert (results["n"].astype(str).str.len() > 0).all()
    assert set(deltas["model"]) == {models[1]} and deltas["95% CI"].str.startswith("[").all()
    assert set(deltas["significant"]) <= {"yes", "no"} and (deltas["n"] > 0).all()
    assert summary.count("(n = ") == 4 and "significant" in summary  # R@1, AO@1, JS@1, Spearman
    assert "default in-vocabulary paraphrase pairs" in notes and "outside its training vocabulary" in notes
    shown = {slot: figure_of(f["value"]) for slot, f in zip(compare.PLOT_SLOTS, figures) if f.get("visible")}
    assert set(shown) == {"retrieval", "paraphrased", "sts", "forest", "scatter"}
    assert len(shown["retrieval"].data) == 2 and len(shown["forest"].data) == 1
    assert {p.rsplit("/", 1)[1] for p in files} == {"results.csv", "deltas.csv", "results.json"}
    err = run_to_end(compare.run_compare(services, {}, models[0], [], ["paraphrased retrieval AO@k / JS@k "
                                                                       "(gallery + pairs)"], "tuxpaint-none", "",
                                         "10", 0))
    assert err[0].startswith("❌") and "pairs" in err[0]


class _GatedEncoder:
    """Wraps an encoder: after its first batch of text it sets ``batch_done`` and holds the encoding until
    ``release`` is set, so a test can press Stop while an evaluation is certainly mid-encoding."""

    def __init__(self, encoder, batch_done, release):
        self._encoder, self.batch_done, self.release = encoder, batch_done, release

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def encode_text(self, texts, batch_size=None, progress=None):
        def gate(done, total):
            self.batch_done.set()
            assert self.release.wait(60), "the test never released the encoder"
            if callable(progress):
                progress(done, total)

        return self._encoder.encode_text(texts, batch_size=batch_size, progress=gate)


def test_compare_stop_ends_the_evaluation_thread_within_seconds(services, monkeypatch):
    """Stop while STS-B is being encoded (thousands of sentences): the worker thread ends within a
    few seconds, not after the task, and the status says stopped."""
    import threading
    import time

    batch_done, release = threading.Event(), threading.Event()
    # the gated encoder lives in this process, so this is the thread path (PARACLIP_APP_COMPARE_PROCESS=0); the
    # worker process's stop is tested in test_runs.py
    monkeypatch.setattr(services, "worker_processes", lambda: None)
    real_get = services.encoders.get
    monkeypatch.setattr(services.encoders, "get", lambda *key: _GatedEncoder(real_get(*key), batch_done, release))
    models = services.model_labels()
    gen = compare.run_compare(services, {}, models[0], [models[1]], ["STS-B (offline)"], None, "", "10", 0,
                              session_id="stop-test")
    last = None
    for last in gen:  # each step of the generator waits at most 0.5 s for the worker
        if batch_done.is_set():
            break
    assert batch_done.is_set(), f"the comparison ended before encoding a batch: {last and last[0]}"
    assert services.runs.stop("compare", "stop-test")
    stopped_at = time.monotonic()
    release.set()
    last = run_to_end(gen)
    assert time.monotonic() - stopped_at < 10
    assert last[0].startswith("⏹ stopped"), last[0]
    assert not [t for t in threading.enumerate() if t.name == "paraclip-wb-compare"]


def test_start_requires_data_and_login_when_auth_is_on(services, monkeypatch):
    class Req:
        username = None

    form = train.TrainForm(services.model_labels()[0], steps=10, batch_size=8, val_split=0.0, device="cpu")
    msg, *_ = train.start_job(services, {}, form, Req())
    assert msg.startswith("❌") and "training data" in msg
    monkeypatch.setattr(services.config, "auth", [("alice", "pw")])
    msg, *_ = train.start_job(services, {}, replace(form, data_path="x.jsonl"), Req())
    assert "Log in" in msg


def test_pasted_captions_are_refused_up_front_and_the_example_data_trains(services, chat_server):
    class Req:
        username = None

    *_, session, _ = run_to_end(paraphrase.run_paraphrase(
        services, {}, paraphrase.ParaphraseForm("a dog runs on the grass\nthree people ride bikes on a road",
                                                backend=paraphrase.BACKEND_API, base_url=chat_server.base_url,
                                                api_model="mock", preset="paper", temperature=1.0, top_p=0.1)))
    model = services.model_labels()[0]
    gallery = next(iter(services.defaults.gallery_choices()))
    before = len(services.runner.list())
    form = train.TrainForm(model, images=gallery, steps=10, batch_size=2, val_split=0.1, device="cpu")
    msg, _, session = train.start_job(services, session, form, Req())
    assert msg.startswith("❌") and "no image id" in msg and "no-l1" in msg, msg
    assert len(services.runner.list()) == before  # nothing was started
    msg, *_ = train.start_job(services, session, replace(form, steps=0), Req())
    assert "steps must be >= 1 (got 0)" in msg
    preset, val_split, _ = train.use_text_only()
    msg, pick, _ = train.start_job(services, session, replace(form, steps=3, loss_preset=preset, val_split=val_split,
                                                              name="text-only"), Req())
    assert msg.startswith("⏳ started job") and "stand-in ids" in msg, msg
    data, images, steps, batch, note = train.use_example_data(services)
    assert "mini-world scenes" in note and len(list(__import__("pathlib").Path(images).glob("*.png"))) >= 200
    msg, pick, _ = train.start_job(services, {}, replace(form, data_path=data, images=images, steps=3, batch_size=8,
                                                         name="example"), Req())
    assert msg.startswith("⏳ started job"), msg
    job = services.runner.get(pick["value"])
    assert job.config["images"] == images and job.config["data"] == data
    services.runner.cancel_all()


def test_loss_presets_listed_in_the_form_match_the_trainer():
    from paraclip.training.losses import LOSS_PRESETS

    assert train.LOSS_PRESET_NAMES == LOSS_PRESETS.names()


def test_curve_metrics_leave_out_rates_and_the_heatmap_fails_soft():
    rows = [{"step": 1, "loss": 2.0, "loss_l1": 1.0, "lr": 1e-4, "samples_per_s": 30.0, "mem_mb": 900.0},
            {"step": 2, "loss": 1.5, "val_R@1": 12.0, "val_seconds": 3.0}]
    assert train.curve_metrics(rows) == ["loss", "loss_l1", "val_R@1"]
    from paraclip.similarity_plots import similarity_heatmaps

    fig = similarity_heatmaps(pd.DataFrame({"x": [1]}))
    assert "Missing column" in fig.layout.annotations[0].text


def test_miniworld_defaults_are_adopted_and_their_progress_shown(app_dir):
    from workbench.defaults import DefaultAssets
    from workbench.services import AppConfig

    assets = DefaultAssets(AppConfig(app_dir=app_dir, build_defaults=False))
    assets.state, assets.building_trained = "fallback", True
    assets._miniworld_progress(3, 10, "baseline-s0: step 120/600")
    assert "30%" in assets.status_markdown() and "baseline-s0" in assets.status_markdown()
    assets._adopt_miniworld({"baseline": "/m/base.pt", "paraclip": "/m/para.pt", "gallery": "/m/gallery"})
    assert [m.label for m in assets.model_choices()][:2] == ["mini-world CLIP baseline", "mini-world ParaCLIP"]
    assert assets.gallery_choices()["mini-world"] == "/m/gallery"


def test_explore_is_warm_when_the_default_models_are_ready(tmp_path):
    from workbench.services import AppConfig, Services

    fresh = Services(AppConfig(app_dir=tmp_path, gallery_size=8, build_defaults=False))
    assert not fresh._indexes
    assert fresh.defaults.wait(300)
    gallery = next(iter(fresh.defaults.gallery_choices()))
    for choice in fresh.defaults.model_choices()[:2]:
        assert (choice.key, gallery) in fresh._indexes


def test_the_train_timer_on_a_finished_job_sends_nothing_but_the_history(services):
    """An open Train tab on a finished job re-sent (and Gradio re-hashed) its checkpoints every tick."""
    import sys
    import time

    import gradio as gr

    from workbench.train import poll

    job = services.runner.start("train", "finished", [sys.executable, "-c", "pass"])
    for _ in range(400):
        if not services.runner.get(job.id).active:
            break
        time.sleep(0.05)
    first = poll(services, job.id, {}, timer=True)  # just finished: shown once more
    assert isinstance(first[1], str) and "finished" in first[1]
    services.runner.store.update(job.id, finished=time.time() - 60)
    later = poll(services, job.id, {}, timer=True)
    assert all(out == gr.skip() for out in later[1:])
    picked = poll(services, job.id, {})  # picking it (not the timer) shows it in full
    assert "finished" in picked[1]


def test_a_comparison_in_a_worker_process_gives_the_same_numbers_as_in_a_thread(services, monkeypatch):
    """Issue 22 §9 moved a serving app's comparisons into a worker process: the tables, the files' content
    and the figures must not depend on where the work ran."""
    models = services.model_labels()
    gallery = next(iter(services.defaults.gallery_choices()))
    form = (models[0], [models[1]], ["zero-shot retrieval (gallery)", "STS-B (offline)"], gallery, "", "1,5", 32)
    assert services.worker_processes() is not None  # the default
    in_process = run_to_end(compare.run_compare(services, {}, *form, session_id="in-process"))
    monkeypatch.setattr(services, "worker_processes", lambda: None)
    in_thread = run_to_end(compare.run_compare(services, {}, *form, session_id="in-thread"))
    assert in_process[0] == in_thread[0] and in_process[0].startswith("✅ 4 results"), in_process[0]
    pd.testing.assert_frame_equal(in_process[1], in_thread[1])
    pd.testing.assert_frame_equal(in_process[2], in_thread[2])
    assert in_process[3] == in_thread[3] and in_process[4] == in_thread[4]  # summary, notes
    for a, b in zip(in_process[5:5 + len(compare.PLOT_SLOTS)], in_thread[5:5 + len(compare.PLOT_SLOTS)]):
        assert a.get("visible") == b.get("visible")
        if a.get("visible"):
            assert json.loads(a["value"].plot) == json.loads(b["value"].plot)
    for a, b in zip(in_process[-2][:2], in_thread[-2][:2]):  # results.csv, deltas.csv; not the timings
        pd.testing.assert_frame_equal(pd.read_csv(a).drop(columns=["seconds"], errors="ignore"),
                                      pd.read_csv(b).drop(columns=["seconds"], errors="ignore"))


def test_the_default_gallerys_thumbnails_are_ready_and_shared_by_the_models(services):
    """Issue 22 §9: the defaults builder renders the Explore gallery's thumbnails once, for both models."""
    models = services.defaults.model_choices()[:2]
    gallery = next(iter(services.defaults.gallery_choices()))
    services.warm_explore()
    first, second = (services.gallery_index(choice.key, gallery) for choice in models)
    assert first is not second and first._thumbs is second._thumbs
    assert set(first._thumbs) == set(first.ids) and all(uri.startswith("data:image/") for uri in first._thumbs.values())


def test_a_tabs_second_comparison_changes_plot_visibility_only_where_it_changes(services):
    """Each gr.update rebuilds a component's config in the server (issue 22 §9): a slot already shown gets its
    new figure as a plain value, a slot staying hidden is skipped, and only a slot to hide gets an update."""
    from gradio.components.plot import PlotData

    models = services.model_labels()
    gallery = next(iter(services.defaults.gallery_choices()))
    slots = compare.PLOT_SLOTS
    first = run_to_end(compare.run_compare(services, {}, models[0], [models[1]],
                                           ["zero-shot retrieval (gallery)", "STS-B (offline)"], gallery, "", "1", 16))
    plots = dict(zip(slots, first[5:5 + len(slots)]))
    assert {s for s, p in plots.items() if isinstance(p, dict) and p.get("visible")} == {"retrieval", "sts", "forest",
                                                                                       "scatter"}
    session = first[-1]
    assert session["compare_plots"] == ["retrieval", "sts", "forest", "scatter"]
    second = run_to_end(compare.run_compare(services, session, models[0], [models[1]],
                                            ["zero-shot retrieval (gallery)"], gallery, "", "1", 16))
    plots = dict(zip(slots, second[5:5 + len(slots)]))
    assert isinstance(plots["retrieval"], PlotData) and isinstance(plots["forest"], PlotData)
    assert plots["sts"].get("visible") is False and plots["scatter"].get("visible") is False
    assert all(plots[s] == gr.skip() for s in ("paraphrased", "aro", "classification"))
    assert second[-1]["compare_plots"] == ["retrieval", "forest"]


def test_the_api_model_judges_meaning_when_asked_and_only_for_the_api_backend(services):
    from paraclip.paraphrase import load_records
    from paraclip.testing.mock_server import Faults, MockChatServer

    assert paraphrase.ParaphraseForm(meaning_judge=True).config("c.sqlite").meaning_judge is False  # local backend
    text = "a dog runs on the grass\nthree people ride bikes on a road"
    with MockChatServer(Faults(replies={"Is the rewrite faithful?": "No"})) as server:
        status, table, _, session, _ = run_to_end(paraphrase.run_paraphrase(
            services, {}, paraphrase.ParaphraseForm(text, backend=paraphrase.BACKEND_API, base_url=server.base_url,
                                                    api_model="mock", preset="paper", meaning_judge=True)))
        asked = sum("Is the rewrite faithful?" in b["messages"][-1]["content"] for b in server.bodies)
    assert status.startswith("✅"), status
    assert asked == 4 and list(table["meaning"].str.startswith("⚠ changed")) == [True, True]
    records = load_records(session["paraphrases"])
    assert {r["quality"]["meaning_method"] for r in records} == {"llm-judge-v2 (openai:mock)"}
