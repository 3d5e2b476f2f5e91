"""Good inputs that the bad-input cases start from: the training tests' synthetic world, with a
captions file so that its images folder is also an evaluation gallery."""

from __future__ import annotations

import json
from pathlib import Path

from tests.training.helpers import make_world


def world_with_gallery(root: Path, n: int) -> dict:
    """``make_world`` plus ``images/captions.csv`` (file, caption, image_id) and the parsed ``records``."""
    world = make_world(root, n=n)
    records = [json.loads(line) for line in world["data"].read_text().splitlines()]
    (world["images"] / "captions.csv").write_text(
        "file,caption,image_id\n" + "".join(f"{r['image_id']}.png,{r['caption']},{r['image_id']}\n" for r in records))
    return {**world, "records": records}
