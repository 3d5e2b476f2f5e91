"""Model files fed arbitrary shapes: a checkpoint (``torch.save`` of nested dicts/lists/tensors, or arbitrary
bytes) and a Hugging Face folder's ``config.json`` reach :func:`paraclip.models.loading.load_encoder`, the public
loader; it must end in a ParaclipError naming the file, never another exception."""

from __future__ import annotations

import io

import torch
from hypothesis import given
from hypothesis import strategies as st

from paraclip.models.loading import load_encoder

from .strategies import JSON_DOC, assert_clean_failure, contents, reproducible

_TENSORS = st.sampled_from([torch.zeros(0), torch.zeros(2, 3), torch.ones(1, dtype=torch.int64),
                            torch.zeros(4, 4, dtype=torch.float16)])
_LEAVES = st.one_of(_TENSORS, st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["paraclip-tiny", "ViT-B-32", "RN50"]))
_KEYS = st.one_of(st.sampled_from(["state_dict", "model", "arch", "config", "step", "text", "visual.proj",
                                   "logit_scale", "positional_embedding", "module.logit_scale"]),
                  st.text(max_size=8), st.integers(-3, 3))
CHECKPOINT = st.recursive(_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(_KEYS, inner, max_size=5)),
                          max_leaves=12)


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@reproducible(30)
@given(st.one_of(CHECKPOINT.map(_saved), st.binary(max_size=300)), st.sampled_from(["model.pt", "model.bin"]))
def test_checkpoint_files(tmp_path, data, name):
    path = tmp_path / name
    path.write_bytes(data)
    assert_clean_failure(lambda p: load_encoder(str(p), device="cpu"), path)


@reproducible(30)
@given(contents(JSON_DOC))
def test_hf_config_json(tmp_path, data):
    folder = tmp_path / "hf-model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_bytes(data)
    assert_clean_failure(lambda p: load_encoder(str(p), device="cpu"), folder)
