"""Helpers for the training tests: a synthetic world of coloured-shape PNGs with captions and paraphrases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 60, 220), "yellow": (230, 220, 30)}
SHAPES = ("square", "circle", "stripe", "cross")
SYNONYMS = {"red": "crimson", "green": "emerald", "blue": "navy", "yellow": "golden",
            "square": "box", "circle": "disc", "stripe": "band", "cross": "plus sign"}


def _draw(colour, shape: str, size: int, rng) -> np.ndarray:
    img = np.full((size, size, 3), 245, dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    c = size / 2 + rng.integers(-2, 3)
    if shape == "square":
        mask = (abs(yy - c) < size / 4) & (abs(xx - c) < size / 4)
    elif shape == "circle":
        mask = (yy - c) ** 2 + (xx - c) ** 2 < (size / 3.5) ** 2
    elif shape == "stripe":
        mask = abs(yy - c) < size / 8
    else:
        mask = (abs(yy - c) < size / 10) | (abs(xx - c) < size / 10)
    img[mask] = colour
    return img


def make_world(root: Path, n: int = 32, size: int = 32, seed: int = 0, statuses: dict[int, str] | None = None
               ) -> dict[str, Path]:
    """Write ``n`` images to root/images and their paraphrase records to root/data.jsonl."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    statuses = statuses or {}
    lines = []
    for i in range(n):
        colour = list(COLOURS)[i % 4]
        shape = SHAPES[(i // 4) % 4]
        image_id = f"img{i:04d}"
        Image.fromarray(_draw(COLOURS[colour], shape, size, rng)).save(images / f"{image_id}.png")
        record = {
            "index": i, "image_id": image_id,
            "caption": f"a {colour} {shape} number {i}",
            "paraphrase_1": f"one {colour} {shape}, item {i}",
            "paraphrase_2": f"a single {SYNONYMS[colour]} {SYNONYMS[shape]} labelled {i}",
            "status": statuses.get(i, "ok"),
        }
        lines.append(json.dumps(record))
    data = root / "data.jsonl"
    data.write_text("\n".join(lines) + "\n")
    return {"images": images, "data": data, "root": root}


def tiny_config(world: dict[str, Path], out_dir: Path, **overrides):
    from paraclip.training import TrainConfig

    base = dict(model="paraclip-tiny", pretrained=None, data=str(world["data"]), images=str(world["images"]),
                features_from=str(world["root"] / "features"), out_dir=str(out_dir), steps=6, batch_size=8,
                lr=1e-3, warmup=2, checkpoint_every=3, validation=[], device="cpu", seed=0, threads=1)
    base.update(overrides)
    return TrainConfig(**base)


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def state_dict_of(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A real 69-byte PNG declaring ``width`` x ``height`` pixels (a decompression bomb): a 1x1 PNG with
    the IHDR size patched and its CRC recomputed."""
    import io
    import struct
    import zlib

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    png = bytearray(buf.getvalue())
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)
