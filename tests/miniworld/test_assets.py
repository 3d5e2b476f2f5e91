"""The shipped ``assets/`` folder and ``paraclip miniworld --export-assets``.

The repository's own folder is checked as shipped: every file against the manifest (sha256, size,
nothing missing or extra), the size budget, both models loading with ``load_encoder`` and with
plain open_clip, and their held-out AO@10 / JS@10 reproducing the recorded figures. The export
itself runs at smoke size through the CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from paraclip.cli import main
from paraclip.miniworld.assets import FILES, MODEL_LABELS, check_assets, evaluate_assets, read_manifest, shipped_defaults

REPO_ASSETS = Path(__file__).resolve().parents[2] / "assets"
SIZE_BUDGET_MB = 20
TOLERANCE = 0.5  # AO@10 / JS@10 points (x100): fp16 weights and BLAS order move them by far less


def _plain_open_clip(folder: Path, model: str):
    import open_clip
    import torch

    config = next((folder / "models").glob("*.json"))
    open_clip.add_model_config(config)
    net, _, preprocess = open_clip.create_model_and_transforms(config.stem, pretrained=str(folder / FILES[model]))
    tokenizer = open_clip.get_tokenizer(config.stem)
    with torch.no_grad():
        text = net.encode_text(tokenizer(["a small red circle"]))
    return net, preprocess, text


# -- the shipped folder ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    manifest = read_manifest(REPO_ASSETS)
    assert manifest is not None, f"{REPO_ASSETS}/manifest.json is missing: run `paraclip miniworld --export-assets`"
    return manifest


def test_shipped_files_match_the_manifest(shipped):
    assert check_assets(REPO_ASSETS, verify_hashes=True) == []
    for rel, entry in shipped["files"].items():
        assert entry["command"] == shipped["command"] and entry["made_from"], rel
    # the shipped models come from the committed report's run (reports/miniworld): the full preset
    assert shipped["command"] == "paraclip miniworld --export-assets assets --preset full"
    assert shipped["config"]["seeds"][0] == 0
    total = sum(e["size"] for e in shipped["files"].values()) + (REPO_ASSETS / "manifest.json").stat().st_size
    assert total <= SIZE_BUDGET_MB * 1024 * 1024, f"assets/ is {total / 1e6:.1f} MB"
    paths = shipped_defaults(REPO_ASSETS)
    assert paths is not None and set(paths) == set(FILES)


@pytest.mark.slow
def test_shipped_models_reproduce_their_recorded_rank_similarity(shipped):
    measured = evaluate_assets(REPO_ASSETS)
    for model in MODEL_LABELS:
        for pair_set, recorded in shipped["metrics"][model].items():
            got = measured[model][pair_set]
            assert got["n"] == recorded["n"]
            for metric in ("AO@10", "JS@10"):
                assert abs(got[metric] - recorded[metric]) <= TOLERANCE, (model, pair_set, metric, got, recorded)
    # the reason they are shipped: ParaCLIP is more stable under paraphrasing than its baseline
    assert shipped["metrics"]["paraclip"]["in-vocab"]["AO@10"] > shipped["metrics"]["baseline"]["in-vocab"]["AO@10"]


@pytest.mark.parametrize("model", list(MODEL_LABELS))
def test_shipped_models_load_with_load_encoder_and_plain_open_clip(shipped, model):
    import torch

    from paraclip.models import load_encoder

    encoder = load_encoder(str(REPO_ASSETS / FILES[model]), device="cpu")
    assert encoder.arch == shipped["config"]["arch"]
    ours = encoder.encode_text(["a small red circle"]).float()
    _, _, theirs = _plain_open_clip(REPO_ASSETS, model)
    theirs = torch.nn.functional.normalize(theirs.float(), dim=-1)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_examples_are_training_data_for_the_gallery(shipped):
    from paraclip.data.galleries import folder_gallery
    from paraclip.training.data import read_records

    gallery = folder_gallery(REPO_ASSETS / FILES["gallery"])
    records, report = read_records(REPO_ASSETS / FILES["paraphrases"], ("caption", "paraphrase_1", "paraphrase_2"))
    assert report.lines == len(gallery) and len(records) >= 0.9 * len(gallery)
    assert {r.image_id for r in records} <= set(gallery.ids)


# -- the export ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets-export")
    dest = root / "assets"
    assert main(["miniworld", "--preset", "smoke", "--out", str(root / "run"), "--export-assets", str(dest)]) == 0
    return root, dest


def test_export_writes_a_complete_folder(exported, capsys):
    _, dest = exported
    manifest = read_manifest(dest)
    assert check_assets(dest) == []
    listed = set(manifest["files"])
    assert {FILES["baseline"], FILES["paraclip"], FILES["pairs_in_vocab"], FILES["pairs_oov"], FILES["captions"],
            FILES["paraphrases"], "gallery/captions.csv", "models/paraclip-tiny.json"} <= listed
    assert sum(1 for rel in listed if rel.startswith("gallery/") and rel.endswith(".png")) == manifest["gallery_images"]
    assert manifest["command"] == f"paraclip miniworld --export-assets {dest.as_posix()} --preset smoke"
    assert manifest["config"]["arch"] == "paraclip-tiny" and manifest["stage_fingerprints"]["paraclip-lr0.001-s0"]
    for model in MODEL_LABELS:
        assert set(manifest["metrics"][model]) == {"in-vocab", "oov"}
        _plain_open_clip(dest, model)


def test_check_assets_names_every_problem(exported, tmp_path):
    _, dest = exported
    copy = tmp_path / "assets"
    shutil.copytree(dest, copy)
    (copy / FILES["pairs_oov"]).unlink()
    (copy / "extra.txt").write_text("x")
    with open(copy / FILES["captions"], "a", encoding="utf-8") as f:
        f.write("more,text\n")
    data = bytearray((copy / FILES["paraclip"]).read_bytes())
    data[-1] ^= 0xFF
    (copy / FILES["paraclip"]).write_bytes(bytes(data))
    problems = check_assets(copy)
    assert f"missing: {FILES['pairs_oov']}" in problems and "not in the manifest: extra.txt" in problems
    assert f"size differs: {FILES['captions']}" in problems and f"sha256 differs: {FILES['paraclip']}" in problems
    assert shipped_defaults(copy) is None


def test_export_replaces_a_stale_folder_and_refuses_other_folders(exported, capsys):
    root, dest = exported
    (dest / "stale.txt").write_text("left over")
    assert main(["miniworld", "--preset", "smoke", "--out", str(root / "run"), "--export-assets", str(dest)]) == 0
    assert not (dest / "stale.txt").exists() and check_assets(dest) == []
    other = root / "not-assets"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["miniworld", "--preset", "smoke", "--out", str(root / "run"), "--export-assets", str(other)]) == 2
    assert "not an assets folder" in capsys.readouterr().err and (other / "notes.txt").exists()


def test_manifest_is_plain_json_a_person_can_read(exported):
    _, dest = exported
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["metrics_note"] and all(len(e["sha256"]) == 64 for e in manifest["files"].values())


@pytest.mark.parametrize("damage", [b'{"format": "x", "fil', b"\xff\xfe", b"[" * 100_000, b'["not", "a manifest"]'])
def test_a_damaged_manifest_is_no_readable_manifest(tmp_path, damage):
    (tmp_path / "manifest.json").write_bytes(damage)
    assert read_manifest(tmp_path) is None
    assert check_assets(tmp_path) == [f"{tmp_path}: no readable manifest.json"]
