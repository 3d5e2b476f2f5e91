"""``paraclip export``: an open_clip folder that plain open_clip loads, the model card, and the hub push
(through a recording stand-in for HfApi; no network)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from paraclip.cli import main
from paraclip.models import load_encoder
from paraclip.models.checkpoint import save_checkpoint
from paraclip.models.export import CONFIG_NAME, WEIGHTS_NAME, export_model, push_folder


@pytest.fixture(scope="module")
def final_pt(tmp_path_factory):
    import open_clip

    from paraclip.models.loading import register_project_configs

    register_project_configs()
    torch.manual_seed(5)
    model = open_clip.create_model("paraclip-tiny")
    meta = {"format": "paraclip.checkpoint/1", "run_name": "tiny-run", "step": 12, "epoch": 2,
            "base_model": "paraclip-tiny", "pretrained": None, "loss_preset": "paraclip",
            "loss_terms": [["L1", "image", "p2", 1.0], ["L2", "caption", "p1", 1.0], ["L3", "p1", "p2", 0.5]],
            "freeze_image": True, "records": 40, "data_fingerprint": "abc123",
            "config": {"model": "paraclip-tiny", "data": "pairs.jsonl", "loss_preset": "paraclip"}}
    path = tmp_path_factory.mktemp("run") / "final.pt"
    save_checkpoint(path, model.state_dict(), "paraclip-tiny", name="tiny-run", epoch=2, paraclip=meta)
    return path


@pytest.fixture
def results_dir(tmp_path):
    folder = tmp_path / "eval"
    folder.mkdir()
    pd.DataFrame([
        {"model": "base", "pretrained": None, "label": "base", "task": "STSB", "metric": "spearman", "value": 70.0,
         "main": True, "n": 100, "source": "s", "seconds": 1.0},
        {"model": "final.pt", "pretrained": None, "label": "final.pt", "task": "STSB", "metric": "spearman",
         "value": 75.5, "main": True, "n": 100, "source": "s", "seconds": 1.0},
    ]).to_csv(folder / "results.csv", index=False)
    pd.DataFrame([{"task": "STSB", "model": "final.pt", "baseline": "base", "metric": "spearman", "value": 75.5,
                   "baseline_value": 70.0, "delta": 5.5, "ci_low": 2.25, "ci_high": 8.5, "significant": True,
                   "n": 100, "n_boot": 1000, "confidence": 0.95}]).to_csv(folder / "deltas.csv", index=False)
    return folder


def test_export_loads_in_plain_open_clip_with_the_same_weights(final_pt, results_dir, tmp_path):
    import open_clip

    out = export_model(final_pt, tmp_path / "export", results_dir)
    assert {p.name for p in out.iterdir()} == {CONFIG_NAME, WEIGHTS_NAME, "README.md"}
    config = json.loads((out / CONFIG_NAME).read_text())
    assert config["model_cfg"]["embed_dim"] == 32 and "mean" in config["preprocess_cfg"]

    model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{out}")
    ours = load_encoder(str(final_pt), device="cpu")
    for key, value in ours.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    tokenizer = open_clip.get_tokenizer(f"local-dir:{out}")
    with torch.no_grad():
        text = model.encode_text(tokenizer(["a red square"]), normalize=True)
    assert torch.allclose(text, ours.encode_text(["a red square"]), atol=1e-5)

    card = (out / "README.md").read_text()
    for expected in ("library_name: open_clip", "# tiny-run", "`paraclip-tiny`", "pairs.jsonl (40 records",
                     "L3 (p1–p2, weight 0.5)", "| steps | 12 (epochs: 2) |", "| image tower | frozen |",
                     "| STSB | spearman | 70.00 | 75.50 |", "| STSB | spearman | final.pt | +5.50* | [+2.25, +8.50] | 100 |",
                     "95% confidence intervals (1000 replicates"):
        assert expected in card, expected


class RecordingApi:
    def __init__(self, fail: bool = False):
        self.calls, self.fail = [], fail

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        if self.fail:
            raise ConnectionError("no route to host")
        self.calls.append(("upload_folder", kwargs))
        return type("Info", (), {"commit_url": "https://example.invalid/commit/1"})()


def test_cli_export_and_push(final_pt, tmp_path, monkeypatch, capsys):
    api = RecordingApi()
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: api)
    out = tmp_path / "exported"
    rc = main(["export", "--model", str(final_pt), "--out", str(out), "--push-to-hub", "me/paraclip-tiny"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert (out / WEIGHTS_NAME).is_file() and "## Evaluation" not in (out / "README.md").read_text()
    assert api.calls[0] == ("create_repo", "me/paraclip-tiny", {"repo_type": "model", "private": False,
                                                                "exist_ok": True})
    upload = api.calls[1][1]
    assert upload["folder_path"] == str(out) and upload["repo_id"] == "me/paraclip-tiny"
    assert upload["repo_type"] == "model" and "commit/1" in printed.out

    failing = RecordingApi(fail=True)
    with pytest.raises(Exception, match=r"Could not push .* no route to host\. The exported folder is kept"):
        push_folder(out, "me/paraclip-tiny", api=failing)
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: failing)
    rc = main(["export", "--model", str(final_pt), "--out", str(out), "--push-to-hub", "me/paraclip-tiny"])
    assert rc == 1 and "no route to host" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--model", "{missing}"], "no such checkpoint file"),
    (["--model", "{bare}"], "does not record its architecture"),
    (["--model", "{a_list}"], "a_list.pt is not a model checkpoint: it holds a list"),
    (["--model", "{strings}"], "strings.pt is not a model checkpoint: its 'state_dict' entry holds a str"),
    (["--model", "{final}", "--results", "{tmp}"], "no results.csv"),
    (["--model", "{final}", "--push-to-hub", "no-slash"], "give the repository as ORG/NAME"),
])
def test_cli_bad_input(final_pt, tmp_path, capsys, argv, message):
    bare = tmp_path / "bare.pt"
    torch.save({"w": torch.zeros(1)}, bare)
    torch.save([1, 2, 3], tmp_path / "a_list.pt")
    torch.save({"state_dict": "hello", "arch": "paraclip-tiny"}, tmp_path / "strings.pt")
    values = {"missing": tmp_path / "nope.pt", "bare": bare, "final": final_pt, "tmp": tmp_path,
              "a_list": tmp_path / "a_list.pt", "strings": tmp_path / "strings.pt"}
    argv = [a.format(**values) for a in argv]
    rc = main(["export", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o" / WEIGHTS_NAME).exists()


@pytest.mark.parametrize("damage, file, said", [
    (b"\xff\xfe\x00garbage", "results.csv", "results.csv: cannot read it as CSV"),
    (b"a,b\n1,2\n", "results.csv", "results.csv: missing column(s) label, metric, task, value"),
    (b'task,metric\n"unclosed,1\n', "deltas.csv", "deltas.csv: "),
    (b"task,metric,model\nSTSB,spearman,x\n", "deltas.csv", "deltas.csv: missing column(s) ci_high, ci_low"),
])
def test_a_damaged_results_file_is_named(final_pt, results_dir, tmp_path, capsys, damage, file, said):
    (results_dir / file).write_bytes(damage)
    rc = main(["export", "--model", str(final_pt), "--results", str(results_dir), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and said in err and "Traceback" not in err and "internal error" not in err
