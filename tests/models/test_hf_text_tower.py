"""open_clip models whose text tower is a Hugging Face model (the paper's ``roberta-ViT-B-32`` family),
offline: a tiny RoBERTa (config, random weights and a word-level tokenizer built here in a temp folder)
behind an open_clip ``CustomTextCLIP``. Training (text tower only), trimming, checkpoints, resume and
the STS / retrieval evaluations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from paraclip.models import load_encoder
from tests.training.helpers import make_world, read_metrics, state_dict_of, tiny_config

WORDS = ("a an the one two three single red green blue yellow crimson emerald navy golden square circle stripe "
         "cross box disc band plus sign number item labelled of , photo picture").split()
SPECIAL = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # RoBERTa's ids: <s>=0, <pad>=1, </s>=2


def _tiny_roberta(folder: Path, weights: bool = True) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

    folder.mkdir(parents=True)
    vocab = {t: i for i, t in enumerate(list(SPECIAL) + WORDS + [str(i) for i in range(40)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>", mask_token="<mask>").save_pretrained(folder)
    config = RobertaConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=24, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, type_vocab_size=1)
    config.save_pretrained(folder)
    if weights:  # stands in for roberta-base's weights on the hub
        torch.manual_seed(0)
        RobertaModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


def _register(name: str, hf_dir: Path, folder: Path) -> str:
    import open_clip

    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
              "text_cfg": {"hf_model_name": str(hf_dir), "hf_tokenizer_name": str(hf_dir), "hf_model_pretrained": False,
                           "hf_pooler_type": "mean_pooler", "hf_proj_type": "linear", "context_length": 16}}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    open_clip.add_model_config(path)
    return name


@pytest.fixture(scope="module")
def roberta_arch(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("hf-tower")
    return _register("paraclip-test-roberta", _tiny_roberta(root / "tiny-roberta"), root)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("hf-world") / "world", n=16)


def _config(world, out_dir, arch, **overrides):
    return tiny_config(world, out_dir, model=arch, batch_size=8, steps=4, checkpoint_every=2, **overrides)


def test_only_the_text_tower_trains(roberta_arch):
    from open_clip.hf_model import HFTextEncoder

    from paraclip.training.model import ContrastiveModule, build_optimizer

    clip = load_encoder(roberta_arch, device="cpu").model
    assert isinstance(clip.text, HFTextEncoder)
    ContrastiveModule(clip, freeze_image=True, learn_logit_scale=True)
    trainable = {n for n, p in clip.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("text.") or n == "logit_scale" for n in trainable)
    assert {n for n, _ in clip.named_parameters() if n.startswith("text.")} <= trainable
    assert not any(p.requires_grad for p in clip.visual.parameters())
    in_optimizer = {id(p) for g in build_optimizer(clip, 1e-3, 0.1, (0.9, 0.98), 1e-6).param_groups for p in g["params"]}
    assert in_optimizer == {id(p) for n, p in clip.named_parameters() if n in trainable}


def test_trimmed_tokens_fall_back_to_the_full_context_with_the_towers_pad_id(roberta_arch):
    from paraclip.training.data import tokenize
    from paraclip.training.model import encode_text_trimmed

    encoder = load_encoder(roberta_arch, device="cpu")
    texts = ["a red square", "one navy box labelled 3 of a golden disc"]
    full = encoder.tokenizer(texts)
    assert full.shape[1] == 16 and int(full[0, -1]) == 1  # RoBERTa pads with 1, not 0
    with torch.no_grad():
        reference = encoder.model.encode_text(full)
        torch.testing.assert_close(encode_text_trimmed(encoder.model, tokenize(texts, encoder.tokenizer).long()),
                                   reference)
        # tokens cut short (as a batch trimmed to its longest row would be) get the tower's pad id back
        torch.testing.assert_close(encode_text_trimmed(encoder.model, full[:, :12]), reference)


def test_train_checkpoint_resume_and_load_without_the_hub_weights(roberta_arch, world, tmp_path):
    from paraclip.training import train

    whole = train(_config(world, tmp_path / "whole", roberta_arch))
    assert whole.completed and whole.steps == 4
    rows = [r for r in read_metrics(whole.metrics_file) if "loss" in r]
    assert len(rows) == 4 and all(np.isfinite(r["loss"]) for r in rows)

    from paraclip.training.checkpoint import seed_everything

    seed_everything(0)  # the trainer's random init of the image tower (no pretrained weights)
    start = load_encoder(roberta_arch, device="cpu").model.state_dict()
    final = state_dict_of(whole.checkpoint)
    assert all(torch.equal(final[k], v) for k, v in start.items() if k.startswith("visual."))
    changed = [k for k, v in start.items() if k.startswith("text.") and not torch.equal(final[k], v)]
    assert any("transformer.encoder" in k for k in changed) and "text.proj.weight" in changed

    seen = []
    cfg = _config(world, tmp_path / "parts", roberta_arch)
    first = train(cfg, on_metrics=seen.append, should_stop=lambda: len(seen) >= 2)
    assert not first.completed and first.steps == 2
    second = train(cfg)
    assert second.completed and second.steps == 4
    resumed = state_dict_of(second.checkpoint)
    assert all(torch.equal(final[k], resumed[k]) for k in final)

    # a checkpoint carries every weight: loading it must not fetch the text tower's base weights
    no_weights = _tiny_roberta(tmp_path / "tiny-roberta-config-only", weights=False)
    arch = _register("paraclip-test-roberta-no-weights", no_weights, tmp_path)
    ckpt = tmp_path / "final-copy.pt"
    state = torch.load(whole.checkpoint, map_location="cpu", weights_only=True)
    state["arch"] = arch
    torch.save(state, ckpt)
    encoder = load_encoder(str(ckpt), device="cpu")
    assert all(torch.equal(encoder.model.state_dict()[k], v) for k, v in final.items())

    # and `paraclip export` writes a folder that plain open_clip loads with the same weights
    import open_clip

    from paraclip.models.export import export_model

    exported = export_model(ckpt, tmp_path / "export")
    model, _ = open_clip.create_model_from_pretrained(f"local-dir:{exported}")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in final.items())


def test_sts_and_retrieval_evaluations(roberta_arch, tmp_path):
    from paraclip.evaluation.suite import evaluate_models

    gallery = tmp_path / "gallery"
    gallery.mkdir()
    lines = ["file,caption"]
    for n, (colour, rgb) in enumerate({"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 200, 40)}.items()):
        Image.new("RGB", (32, 32), rgb).save(gallery / f"{n}.png")
        lines.append(f"{n}.png,a {colour} square")
    (gallery / "captions.csv").write_text("\n".join(lines) + "\n")
    sts = tmp_path / "pairs.csv"
    sts.write_text("sentence1,sentence2,score\n" + "\n".join(
        f"a {a} square,a {b} box,{s}" for a, b, s in
        [("red", "red", 5), ("red", "blue", 1), ("blue", "navy", 4), ("green", "emerald", 4), ("golden", "red", 0)]))
    out = evaluate_models([roberta_arch], tasks=f"retrieval,{sts}", gallery=str(gallery), device="cpu", n_boot=10)
    assert len(out.results) == 2 and not out.skipped
    retrieval = next(r for r in out.results if r.task == "retrieval")
    assert retrieval.n == 3 and 0 <= retrieval.metrics["t2i_R@1"] <= 100
    sts_result = next(r for r in out.results if r.task != "retrieval")
    assert np.isfinite(sts_result.metrics["spearman"])
