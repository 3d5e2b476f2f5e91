"""Handlers return named outputs (NamedTuples) and each tab wires its components by those names: the
components the page registers are in the order of the fields, so no output can shift by one."""

from __future__ import annotations

from workbench import app, compare, explore, paraphrase, train
from workbench.compare_view import PLOT_SLOTS


def _ids(block_fn) -> list:
    return [getattr(c, "elem_id", None) for c in block_fn.outputs]


def test_each_handlers_fields_are_wired_to_their_own_components(services):
    demo = app.build_demo(services)
    by_api = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}

    compared = by_api["compare"]
    assert len(compared.outputs) == len(compare.CompareOutputs._fields)
    ids = dict(zip(compare.CompareOutputs._fields, _ids(compared)))
    assert (ids["status"], ids["summary"], ids["notes"], ids["results"], ids["deltas"]) == (
        "compare-status", "compare-summary", "compare-notes", "compare-results", "compare-deltas")
    assert [ids[f"plot_{slot}"] for slot in PLOT_SLOTS] == [f"compare-plot-{slot}" for slot in PLOT_SLOTS]

    ids = dict(zip(explore.ExploreOutputs._fields, _ids(by_api["explore"])))
    assert (ids["panels"], ids["metrics"], ids["heatmap"]) == ("explore-results", "explore-metrics", "explore-heatmap")

    ids = dict(zip(paraphrase.ParaphraseOutputs._fields, _ids(by_api["paraphrase"])))
    assert (ids["status"], ids["table"], ids["files"], ids["view"]) == (
        "paraphrase-status", "paraphrase-table", "paraphrase-files", "paraphrase-view")

    ids = dict(zip(train.JobStarted._fields, _ids(by_api["start_training"])))
    assert (ids["message"], ids["job_pick"]) == ("train-message", "train-job")

    polls = [fn for fn in demo.fns.values() if len(fn.outputs) == len(train.JobPoll._fields)
             and _ids(fn)[0] == "train-history"]
    assert polls and all(dict(zip(train.JobPoll._fields, _ids(fn)))["curve"] == "train-curve" for fn in polls)

    refresh = [fn for fn in demo.fns.values() if len(fn.outputs) == len(app.ChoiceUpdates._fields)
               and _ids(fn)[0] == "pc-banner"]
    assert refresh
    ids = dict(zip(app.ChoiceUpdates._fields, _ids(refresh[0])))
    assert (ids["train_model"], ids["compare_baseline"], ids["explore_other"], ids["explore_gallery"]) == (
        "train-model", "compare-baseline", "explore-other", "explore-gallery")
    # the dropdowns' values come in in DROPDOWNS order: each input is the component its update goes to
    assert [c._id for c in refresh[0].inputs[2:]] == [c._id for c in refresh[0].outputs[2:]]
    assert app.ChoiceUpdates._fields[2:] == app.DROPDOWNS


def test_outputs_left_out_are_skipped():
    import gradio as gr

    out = compare.CompareOutputs.only(status="⏳", session={})
    assert out.status == "⏳" and out.session == {} and out.plot_forest == gr.skip()
    assert len(out) == 5 + len(PLOT_SLOTS) + 2
    status, *_, session = out  # still a tuple, in the order Gradio takes it
    assert (status, session) == ("⏳", {})
    assert paraphrase.ParaphraseOutputs.only(view="all").table == gr.skip()
