import pytest
import torch

from paraclip.models import load_encoder

from paraclip.training.model import (
    ContrastiveModule, build_optimizer, encode_text_trimmed, lr_at, parameter_groups, warmup_steps,
)


def test_trimmed_text_forward_equals_open_clip(tiny_encoder):
    model = tiny_encoder.model
    tokens = tiny_encoder.tokenizer(["a red square", "two small blue circles left of a striped green triangle"])
    with torch.no_grad():
        torch.testing.assert_close(encode_text_trimmed(model, tokens), model.encode_text(tokens),
                                   atol=1e-5, rtol=1e-5)


def test_other_text_towers_get_their_full_context_back():
    import open_clip

    from paraclip.models import register_project_configs
    from paraclip.training.data import tokenize

    register_project_configs()
    model = open_clip.create_model("paraclip-tiny", force_custom_text=True)  # CustomTextCLIP
    tokenizer = open_clip.get_tokenizer("paraclip-tiny")
    texts = ["a red square", "a blue circle under a tree"]
    short = tokenize(texts, tokenizer).long()
    assert short.shape[1] < 32
    with torch.no_grad():
        torch.testing.assert_close(encode_text_trimmed(model, short), model.encode_text(tokenizer(texts)))


def test_frozen_image_tower_and_param_groups():
    tiny_encoder = load_encoder("paraclip-tiny", device="cpu")  # not the shared fixture: this test mutates it
    module = ContrastiveModule(tiny_encoder.model, freeze_image=True, learn_logit_scale=False)
    named = dict(tiny_encoder.model.named_parameters())
    assert not any(p.requires_grad for n, p in named.items() if n.startswith("visual."))
    assert not named["logit_scale"].requires_grad and named["token_embedding.weight"].requires_grad
    decay, no_decay = parameter_groups(tiny_encoder.model, 0.2)
    ids = lambda g: {id(p) for p in g["params"]}  # noqa: E731
    assert id(named["transformer.resblocks.0.attn.in_proj_weight"]) in ids(decay)
    for name in ("token_embedding.weight", "positional_embedding", "ln_final.weight",
                 "transformer.resblocks.0.mlp.c_fc.bias"):
        assert id(named[name]) in ids(no_decay)
    assert decay["weight_decay"] == 0.2 and no_decay["weight_decay"] == 0.0
    module.train()
    assert not tiny_encoder.model.visual.training and tiny_encoder.model.transformer.training
    ContrastiveModule(tiny_encoder.model, freeze_image=False, learn_logit_scale=True)
    assert all(p.requires_grad for n, p in tiny_encoder.model.named_parameters() if n != "logit_bias")
    assert build_optimizer(tiny_encoder.model, 1e-3, 0.1, (0.9, 0.98), 1e-6).defaults["lr"] == 1e-3


def test_warmup_then_cosine():
    total, warm = 100, warmup_steps(0.1, 100)
    assert warm == 10 and warmup_steps(25, 100) == 25
    lrs = [lr_at(s, total, 1.0, warm, 0.1) for s in range(total)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_length_buckets_give_the_same_features_and_gradients(tiny_encoder):
    from paraclip.training import model as model_module

    model, tokenizer = tiny_encoder.model, tiny_encoder.tokenizer
    words = "a small red circle left of a large blue striped square with three dotted green stars".split()
    texts = [" ".join(words[: 1 + (i * 7) % len(words)]) for i in range(300)]  # mixed lengths, unsorted
    tokens = tokenizer(texts)
    assert tokens.shape[0] >= 2 * model_module.MIN_BUCKET_ROWS
    lengths = model_module._lengths(tokens)
    assert lengths.min() < lengths.max()

    def features_and_grad(encode):
        model.zero_grad(set_to_none=True)
        out = encode(tokens)
        out.pow(2).sum().backward()
        return out.detach(), model.token_embedding.weight.grad.clone()

    with torch.enable_grad():
        bucketed, grad_bucketed = features_and_grad(lambda t: encode_text_trimmed(model, t))
        single, grad_single = features_and_grad(model.encode_text)
    torch.testing.assert_close(bucketed, single, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad_bucketed, grad_single, rtol=1e-3, atol=1e-5)
    model.zero_grad(set_to_none=True)
