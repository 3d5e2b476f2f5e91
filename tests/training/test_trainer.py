import json

import numpy as np
import pytest
import torch

from paraclip.errors import DataError, ModelLoadError, ParaclipError
from paraclip.files import DamagedCacheWarning
from paraclip.models.checkpoint import save_checkpoint
from paraclip.training import train

from .helpers import bomb_png, make_world, read_metrics, state_dict_of, tiny_config


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    """A paraclip-tiny model saved as a checkpoint file, used as the 'pretrained' starting point."""
    from paraclip.models import load_encoder

    torch.manual_seed(123)
    encoder = load_encoder("paraclip-tiny", device="cpu")
    path = tmp_path_factory.mktemp("base") / "tiny-base.pt"
    return save_checkpoint(path, encoder.model.state_dict(), "paraclip-tiny")


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("shared") / "world", n=32)


def test_loss_goes_down_on_a_fixed_batch(tmp_path):
    # batch = the whole (16-record) data set, so every step sees the same examples
    world16 = make_world(tmp_path / "w16", n=16)
    result = train(tiny_config(world16, tmp_path / "run", steps=25, batch_size=16, lr=2e-3, warmup=0,
                               checkpoint_every=0))
    rows = [r for r in read_metrics(result.metrics_file) if "loss" in r]
    assert [r["step"] for r in rows] == list(range(1, 26))
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    for key in ("loss_l1", "loss_l2", "loss_l3", "lr", "logit_scale", "samples_per_s", "mem_mb", "grad_norm"):
        assert key in rows[0], key


@pytest.mark.slow
def test_frozen_image_tower_is_bit_identical_and_checkpoint_loads_in_open_clip(shared_world, tmp_path,
                                                                               base_checkpoint):
    import open_clip

    from paraclip.models import load_encoder, register_project_configs

    result = train(tiny_config(shared_world, tmp_path / "run", pretrained=str(base_checkpoint), steps=4))
    assert result.completed and result.checkpoint == tmp_path / "run" / "final.pt" and result.arch == "paraclip-tiny"
    before, after = state_dict_of(base_checkpoint), state_dict_of(result.checkpoint)
    assert before.keys() == after.keys()
    visual = [k for k in before if k.startswith("visual.")]
    assert visual and all(torch.equal(before[k], after[k]) for k in visual)
    assert not torch.equal(before["token_embedding.weight"], after["token_embedding.weight"])
    assert not torch.equal(before["transformer.resblocks.0.attn.in_proj_weight"],
                           after["transformer.resblocks.0.attn.in_proj_weight"])

    register_project_configs()
    model, _, _ = open_clip.create_model_and_transforms("paraclip-tiny", pretrained=str(result.checkpoint))
    assert torch.equal(model.state_dict()["token_embedding.weight"], after["token_embedding.weight"])
    encoder = load_encoder(str(result.checkpoint), device="cpu")
    assert encoder.arch == "paraclip-tiny"
    meta = torch.load(result.checkpoint, map_location="cpu", weights_only=True)["paraclip"]
    assert meta["loss_preset"] == "paraclip" and meta["step"] == 4 and meta["config"]["lr"] == 1e-3

    # the features of this run's frozen tower are in the cache; a run from features alone needs no images
    again = train(tiny_config(shared_world, tmp_path / "run2", pretrained=str(base_checkpoint), steps=2,
                              images=None))
    assert again.completed


@pytest.mark.parametrize("preset", ["l1-only", "l2-only", "l3-only", "no-l1", "no-l2", "no-l3", "clip", "laclip"])
def test_every_ablation_preset_trains(shared_world, tmp_path, preset):
    from paraclip.training.losses import LOSS_PRESETS

    result = train(tiny_config(shared_world, tmp_path / preset, steps=2, loss_preset=preset, checkpoint_every=0))
    rows = [r for r in read_metrics(result.metrics_file) if "loss" in r]
    terms = [t.name for t in LOSS_PRESETS.get(preset).terms]
    assert len(rows) == 2 and all(f"loss_{t}" in rows[0] for t in terms)
    assert rows[0]["loss"] == pytest.approx(sum(rows[0][f"loss_{t}"] for t in terms), rel=1e-5)


@pytest.mark.slow
def test_resume_after_stop_equals_an_uninterrupted_run(shared_world, tmp_path):
    whole = train(tiny_config(shared_world, tmp_path / "whole", steps=8, checkpoint_every=3, loss_preset="laclip"))

    seen = []
    cfg = tiny_config(shared_world, tmp_path / "parts", steps=8, checkpoint_every=3, loss_preset="laclip")
    first = train(cfg, on_metrics=seen.append, should_stop=lambda: len(seen) >= 4)
    assert not first.completed and first.steps == 4 and first.checkpoint is None
    assert first.last_checkpoint.name == "step-00000004.pt"
    second = train(cfg)
    assert second.completed and second.steps == 8

    a, b = state_dict_of(whole.checkpoint), state_dict_of(second.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows_a = [r for r in read_metrics(whole.metrics_file) if "loss" in r]
    rows_b = [r for r in read_metrics(second.metrics_file) if "loss" in r]
    assert [r["step"] for r in rows_b] == list(range(1, 9))
    assert [r["loss"] for r in rows_a] == [r["loss"] for r in rows_b]
    # a third call finds the run finished and does nothing
    assert train(cfg).steps == 8


def test_training_both_towers_from_scratch_on_images_in_memory(tmp_path):
    from PIL import Image

    world = make_world(tmp_path / "w", n=16)
    captions = tmp_path / "captions.jsonl"  # the mini-world's pretraining data: image_id + caption only
    captions.write_text("".join(json.dumps({"image_id": r["image_id"], "caption": r["caption"]}) + "\n"
                                for r in map(json.loads, world["data"].read_text().splitlines())))
    images = {p.stem: Image.open(p).convert("RGB") for p in world["images"].glob("*.png")}
    cfg = tiny_config(world, tmp_path / "scratch", data=str(captions), images=None, freeze_image=False,
                      loss_preset="clip", steps=12, batch_size=16, lr=2e-3, warmup=0, checkpoint_every=0)
    result = train(cfg, images=images)
    rows = [r for r in read_metrics(result.metrics_file) if "loss" in r]
    assert rows[-1]["loss"] < rows[0]["loss"]
    from paraclip.models import load_encoder
    from paraclip.training.checkpoint import seed_everything

    seed_everything(0)
    init = load_encoder("paraclip-tiny", device="cpu").model.state_dict()
    final = state_dict_of(result.checkpoint)
    assert not torch.equal(init["visual.conv1.weight"], final["visual.conv1.weight"])
    assert not list((tmp_path / "w" / "features").glob("*/*.npy"))  # no feature cache when the tower trains


def test_validators_write_val_rows(shared_world, tmp_path):
    calls = []

    def probe(encoder):
        calls.append(encoder)
        emb = encoder.encode_text(["a red square", "a crimson box"])
        return {"cos": float(emb[0] @ emb[1])}

    cfg = tiny_config(shared_world, tmp_path / "val", steps=4, validate_every=2, validation=["heldout"],
                      val_split=0.5, batch_size=4)
    result = train(cfg, validators=[probe])
    val_rows = [r for r in read_metrics(result.metrics_file) if "val_probe_cos" in r]
    assert [r["step"] for r in val_rows] == [0, 2, 4] and len(calls) == 3
    assert {"val_heldout_loss", "val_heldout_loss_l1", "val_heldout_r1_caption", "val_heldout_ao10",
            "val_heldout_js10"} <= set(val_rows[-1])
    assert 0 <= val_rows[-1]["val_heldout_ao10"] <= 100
    assert result.final_metrics["val_probe_cos"] == val_rows[-1]["val_probe_cos"]
    assert result.data_report["held_out"] > 0


def test_unreadable_image_is_an_error_or_a_reported_skip(tmp_path):
    world = make_world(tmp_path / "w", n=12)
    (world["images"] / "img0003.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"1 images could not be read.*img0003"):
        train(tiny_config(world, tmp_path / "a", steps=1))
    result = train(tiny_config(world, tmp_path / "b", steps=1, skip_missing_images=True))
    assert result.data_report["skipped"] == {"image unreadable": 1} and result.data_report["kept"] == 11


def test_missing_images_and_empty_data_are_clear_errors(tmp_path):
    world = make_world(tmp_path / "w", n=12)
    (world["images"] / "img0005.png").unlink()
    with pytest.raises(DataError, match=r"1 of 12 records.*img0005.*skip_missing_images"):
        train(tiny_config(world, tmp_path / "a", steps=1))
    world["data"].write_text(json.dumps({"image_id": "x", "caption": "c", "status": "failed"}) + "\n")
    with pytest.raises(DataError, match="No usable training records.*1 status 'failed'"):
        train(tiny_config(world, tmp_path / "b", steps=1))


def test_checkpoint_of_another_architecture_is_a_clear_error(shared_world, tmp_path):
    from paraclip.models import load_encoder

    mini = load_encoder("paraclip-mini", device="cpu")
    other = tmp_path / "mini.pt"
    save_checkpoint(other, mini.model.state_dict(), "paraclip-mini")
    with pytest.raises(ModelLoadError, match="paraclip-mini"):
        train(tiny_config(shared_world, tmp_path / "a", pretrained=str(other), steps=1))

    train(tiny_config(shared_world, tmp_path / "b", steps=1))
    with pytest.raises(ParaclipError, match=r"model: 'paraclip-tiny' in the checkpoint.*resume: false"):
        train(tiny_config(shared_world, tmp_path / "b", model=str(other), pretrained=None, steps=2))


def test_resume_false_moves_the_old_run_aside(shared_world, tmp_path):
    train(tiny_config(shared_world, tmp_path / "r", steps=1))
    result = train(tiny_config(shared_world, tmp_path / "r", steps=1, lr=5e-4, resume=False))
    assert result.completed
    previous = list((tmp_path / "r").glob("previous-*"))
    assert len(previous) == 1 and (previous[0] / "final.pt").exists()
    status = json.loads((tmp_path / "r" / "run.json").read_text())
    assert status["state"] == "finished" and status["step"] == status["total_steps"] == 1


def test_images_decoded_per_step_train_the_same_as_images_in_memory(tmp_path):
    world = make_world(tmp_path / "w", n=16)
    common = dict(freeze_image=False, loss_preset="clip", steps=3, batch_size=8, checkpoint_every=0)
    in_memory = train(tiny_config(world, tmp_path / "mem", **common))
    per_step = train(tiny_config(world, tmp_path / "lazy", image_memory_gb=0.0, **common))
    a, b = state_dict_of(in_memory.checkpoint), state_dict_of(per_step.checkpoint)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5, msg=key)


def test_grad_checkpointing_and_bf16_autocast_options_run(shared_world, tmp_path):
    plain = train(tiny_config(shared_world, tmp_path / "plain", steps=2, checkpoint_every=0))
    ckpt = train(tiny_config(shared_world, tmp_path / "gc", steps=2, checkpoint_every=0, grad_checkpointing=True))
    la = [r["loss"] for r in read_metrics(plain.metrics_file) if "loss" in r]
    lb = [r["loss"] for r in read_metrics(ckpt.metrics_file) if "loss" in r]
    assert lb == pytest.approx(la, rel=1e-5)  # recomputing activations does not change the maths
    bf16 = train(tiny_config(shared_world, tmp_path / "bf16", steps=2, checkpoint_every=0, precision="bf16"))
    lc = [r["loss"] for r in read_metrics(bf16.metrics_file) if "loss" in r]
    assert lc[0] == pytest.approx(la[0], rel=0.05) and all(np.isfinite(lc))


def test_pruning_drops_stop_checkpoints_before_scheduled_ones(tmp_path):
    from paraclip.training.checkpoint import RunFiles, prune_checkpoints

    files = RunFiles(tmp_path)
    files.checkpoints.mkdir(parents=True)
    for step in (300, 600, 728, 746, 900):
        (files.checkpoints / f"step-{step:08d}.pt").write_bytes(b"x")
    prune_checkpoints(files, keep=3, every=300)
    assert [p.name for p in files.step_checkpoints()] == ["step-00000300.pt", "step-00000600.pt",
                                                           "step-00000900.pt"]
    (files.checkpoints / "step-00000950.pt").write_bytes(b"x")  # stopped again: the newest is the resume point
    prune_checkpoints(files, keep=3, every=300)
    assert [p.name for p in files.step_checkpoints()] == ["step-00000300.pt", "step-00000600.pt",
                                                           "step-00000900.pt", "step-00000950.pt"]
    prune_checkpoints(files, keep=1)  # no schedule given: the newest `keep`
    assert [p.name for p in files.step_checkpoints()] == ["step-00000950.pt"]


def test_a_per_step_run_with_bad_images_skips_them_and_finishes(tmp_path):
    world = make_world(tmp_path / "w", n=16)
    truncated = world["images"] / "img0002.png"
    truncated.write_bytes(truncated.read_bytes()[:60])
    (world["images"] / "img0004.png").write_bytes(bomb_png())
    settings = dict(freeze_image=False, image_memory_gb=1e-6, loss_preset="clip", steps=3, batch_size=4,
                    checkpoint_every=0)
    with pytest.raises(DataError, match="2 images could not be read"):
        train(tiny_config(world, tmp_path / "refused", **settings))
    assert not (tmp_path / "refused" / "final.pt").exists()
    result = train(tiny_config(world, tmp_path / "skipped", skip_missing_images=True, **settings))
    assert result.completed and result.checkpoint.exists()
    assert [row["step"] for row in read_metrics(tmp_path / "skipped" / "metrics.jsonl") if "loss" in row] == [1, 2, 3]


def test_a_finished_run_with_a_damaged_data_report_is_still_finished(tmp_path, shared_world):
    config = tiny_config(shared_world, tmp_path / "r", steps=1, checkpoint_every=1)
    assert train(config).data_report
    (tmp_path / "r" / "data_report.json").write_text('{"kept": 3')  # cut short
    with pytest.warns(DamagedCacheWarning, match=r"data_report\.json: damaged data report .*malformed JSON"):
        again = train(config)
    assert again.completed and again.data_report == {} and again.steps == 1
