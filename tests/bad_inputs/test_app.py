"""Bad values given to the app's handlers (called directly, as Gradio calls them): each answers with a
visible ❌ message naming the field, never a traceback, and starts no job."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import pytest

from tests.bad_inputs.harness import Case, run_case
from tests.bad_inputs.inputs import world_with_gallery


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from workbench.services import AppConfig, Services

    root = tmp_path_factory.mktemp("app-bad")
    world = world_with_gallery(root / "world", n=12)
    # the defaults builder is not started: these handlers must refuse bad values before using models
    services = Services(AppConfig(app_dir=root / "app", build_defaults=False, gallery_size=8, max_jobs=1))
    yield SimpleNamespace(root=root, services=services, gallery=str(world["images"]), data=str(world["data"]))
    services.runner.cancel_all()


def _last(generator):
    last = None
    for last in generator:
        pass
    return last


def compare(w, baseline="paraclip-tiny", tasks=("zero-shot retrieval (gallery)",), ks="10", limit=None, pairs=""):
    from workbench import compare as tab

    status, *_ = _last(tab.run_compare(w.services, {}, baseline, [], list(tasks), w.gallery, pairs, ks, limit))
    return status


def start(w, **changes):
    from workbench import train as tab

    form = dict(base_model="paraclip-tiny", data_path=w.data, data_upload=None, images=w.gallery, steps=4,
                batch_size=8, lr=1e-4, loss_preset="paraclip", loss_weights="", val_split=0, device="cpu", name="")
    form.update(changes)
    status, *_ = tab.start_job(w.services, {}, tab.TrainForm(**form), None)
    return status


def explore(w, k=5, baseline="paraclip-tiny", query="a red square", paraphrase="a crimson box"):
    from workbench import explore as tab

    page, *_ = tab.explore(w.services, baseline, "", w.gallery, query, paraphrase, k)
    return html.unescape(re.sub(r"<[^>]+>", "", page)).strip()


def _no_job_started(w, outcome):
    assert w.services.runner.list(100) == [] and not list((w.root / "app" / "jobs").glob("*"))


def train_case(name: str, names: tuple[str, ...], **form) -> Case:
    """The Train tab's Start with one bad form value: refused with a message, and no job folder made."""
    return Case(f"train-{name}", call=lambda w: start(w, **form), names=names, kept=_no_job_started)


CASES = [
    Case("compare-k-zero", call=lambda w: compare(w, ks="0"), names=("k values", "positive")),
    Case("compare-k-words", call=lambda w: compare(w, ks="ten"), names=("k values", "'ten'")),
    Case("compare-gallery-limit-negative", call=lambda w: compare(w, limit=-1), names=("gallery limit", "-1")),
    Case("compare-gallery-limit-fraction", call=lambda w: compare(w, limit=2.5), names=("gallery limit", "2.5")),
    Case("compare-no-tasks", call=lambda w: compare(w, tasks=()), names=("at least one task",)),
    Case("compare-no-baseline", call=lambda w: compare(w, baseline=""), names=("baseline",)),
    Case("compare-pairs-needed", names=("pairs",),
         call=lambda w: compare(w, tasks=("paraphrased retrieval AO@k / JS@k (gallery + pairs)",))),
    train_case("steps-negative", ("steps", ">= 1"), steps=-1),
    train_case("batch-size-one", ("batch_size", ">= 2"), batch_size=1),
    train_case("lr-nan", ("lr", "finite"), lr=float("nan")),
    train_case("lr-zero", ("lr", "> 0"), lr=0),
    train_case("loss-weights-words", ("loss_weights",), loss_weights="l1=heavy"),
    train_case("loss-weights-unknown-term", ("l9", "l1, l2, l3"), loss_weights="l9=1"),
    train_case("loss-weights-negative", ("loss_weights", ">= 0"), loss_weights="l1=-2"),
    train_case("val-split-whole", ("val_split", "[0, 1)"), val_split=1.0),
    train_case("device-missing-gpu", ("cuda:99",), device="cuda:99"),
    train_case("loss-preset-typo", ("Did you mean 'paraclip'",), loss_preset="paraclipp"),
    train_case("no-data", ("No training data",), data_path=""),
    Case("explore-k-zero", call=lambda w: explore(w, k=0), names=("k=0",)),
    Case("explore-model-typo", call=lambda w: explore(w, baseline="ViT-B-23"), names=("ViT-B-23", "ViT-B-32")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_app_handlers(case, workspace):
    run_case(case, workspace)
