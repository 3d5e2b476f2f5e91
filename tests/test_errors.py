"""describe_exception: one message and exit status per class of failure, shared by the CLI and the app."""

from __future__ import annotations

import errno
import re
import signal

import pytest

from paraclip.errors import (DataError, Interrupted, ModelLoadError, ParaclipError, WriteError,
                             describe_exception)


@pytest.mark.parametrize("exc, code, pattern", [
    (DataError("pairs.csv:3: missing field 'caption'"), 2, r"^pairs.csv:3: missing field 'caption'$"),
    (ModelLoadError("Unknown model 'x'"), 2, r"^Unknown model 'x'$"),
    (WriteError("could not write out.json"), 1, r"^could not write out.json$"),
    (UnicodeDecodeError("utf-8", b"ab\xff", 2, 3, "invalid start byte"), 2,
     r"could not be read as utf-8 \(byte b'\\xff' at offset 2\).*re-save the file as UTF-8"),
    (ModuleNotFoundError("No module named 'open_clip'", name="open_clip"), 2,
     r"not installed: open_clip\. Install the project's dependencies"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/out.jsonl"), 1,
     r"could not use /data/out.jsonl: No space left on device\. The disk is full"),
    (MemoryError(), 1, r"^ran out of memory\. Use a smaller batch"),
    (RecursionError("maximum recursion depth exceeded"), 1, r"^internal error: RecursionError: nesting too deep"),
    (KeyboardInterrupt(), 130, r"^interrupted; finished work is kept"),
    (Interrupted(signal.SIGINT), 130, r"^interrupted; finished work is kept"),
    (Interrupted(signal.SIGTERM), 143, r"^terminated \(SIGTERM\); finished work is kept"),
    (ValueError("bad thing\nsecond line"), 1,
     r"^internal error: ValueError: bad thing \(set PARACLIP_DEBUG=1 for the traceback; please report it\)$"),
    (AssertionError(), 1, r"^internal error: AssertionError \(set PARACLIP_DEBUG=1"),
])
def test_each_class_has_a_message_and_status(exc, code, pattern):
    message, status = describe_exception(exc)
    assert status == code
    assert re.search(pattern, message), message
    assert "\n" not in message


def test_a_torch_out_of_memory_is_a_runtime_failure_with_advice():
    import torch

    message, status = describe_exception(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert status == 1 and message.startswith("ran out of memory") and "--batch-size" in message


def test_file_text_can_be_hidden_for_a_hosted_app():
    exc = ParaclipError("data.csv:2: bad value 'secret-token'", file_text=["secret-token"])
    assert describe_exception(exc, hide_file_text=True) == ("data.csv:2: bad value '[file content hidden]'", 2)
    assert describe_exception(exc)[0].endswith("'secret-token'")


def test_a_long_internal_message_is_cut_to_one_short_line():
    message, _ = describe_exception(RuntimeError("x" * 5000))
    assert len(message) < 400 and message.count("x") == 300


def test_an_exception_whose_str_fails_still_gets_a_line():
    class Odd(Exception):
        def __str__(self):
            raise RuntimeError("no text")

    assert describe_exception(Odd()) == ("internal error: Odd (set PARACLIP_DEBUG=1 for the traceback; please "
                                         "report it)", 1)


@pytest.mark.parametrize("cut", [False, True], ids=["bad-stream", "cut-short"])
def test_a_truncated_or_damaged_gzip_input_is_the_users_to_fix(tmp_path, cut):
    import gzip

    path = tmp_path / "pairs.jsonl.gz"
    whole = gzip.compress(b'{"sentence1": "a", "sentence2": "b", "score": 1}\n' * 200)
    path.write_bytes(whole[: len(whole) // 3] if cut else b"\x1f\x8b\x08\x00garbage-after-the-magic")
    with pytest.raises(Exception) as info:  # whatever gzip raises for this damage (EOFError, BadGzipFile, ...)
        with gzip.open(path, "rb") as f:
            f.read()
    message, status = describe_exception(info.value)
    assert status == 2 and message.startswith("a compressed input file is truncated or damaged"), message
    assert "gzip -t" in message and "\n" not in message
