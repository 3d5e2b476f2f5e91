"""Mini-world scenes as a gallery folder (PNG images and ``captions.csv``), for ``load_gallery``."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Callable

from paraclip.miniworld.world import iter_scenes


def render_gallery(folder: str | os.PathLike, n: int, seed: int = 0, split: str = "test",
                   progress: Callable[[int, int], None] | None = None) -> Path:
    """Render ``n`` scenes of ``split`` into ``folder`` (replaced as a whole once complete, so a
    stopped render never leaves a half gallery). ``progress(done, n)`` is called as it goes."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, scene in enumerate(iter_scenes(seed=seed, split=split, n=n)):
        scene.image().save(tmp / f"{scene.image_id}.png")
        rows.append((f"{scene.image_id}.png", scene.caption, scene.image_id))
        if progress is not None and i % 20 == 0:
            progress(i, n)
    with open(tmp / "captions.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "caption", "image_id"])
        writer.writerows(rows)
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder
