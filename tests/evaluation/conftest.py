"""Fixtures for the evaluation tests: a colour encoder with known embeddings, a synthetic gallery, and
torch on one thread for every test here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from paraclip.models.base import Encoder

COLOURS = {
    "red": (230, 20, 20), "green": (20, 200, 40), "blue": (20, 40, 230), "yellow": (240, 230, 20),
    "purple": (150, 30, 160), "orange": (250, 140, 10), "white": (250, 250, 250), "black": (10, 10, 10),
}


class ColourEncoder(Encoder):
    """A real :class:`Encoder` whose embeddings are known by construction.

    An image embeds as its mean colour (centred); a text embeds as the sum of the colours it
    names. So "red" retrieves red images first, and a crop of the red half of an image scores
    higher with "red" than the whole image does.
    """

    name = "colour-encoder"

    def __init__(self):
        super().__init__("cpu")
        self.preprocess = self._mean_colour

    @staticmethod
    def _mean_colour(image) -> torch.Tensor:
        arr = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0) / 255.0
        return torch.from_numpy(arr)

    def _embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels - 0.5

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), 3)
        for n, text in enumerate(texts):
            for word in text.lower().replace(".", " ").split():
                if word in COLOURS:
                    out[n] += torch.tensor(COLOURS[word], dtype=torch.float32) / 255.0 - 0.5
        return out + 1e-4 * torch.tensor([1.0, 2.0, 3.0])  # never exactly zero


@pytest.fixture(scope="session")
def colour_encoder() -> ColourEncoder:
    return ColourEncoder()


@pytest.fixture(scope="session")
def colour_gallery_dir(tmp_path_factory):
    """24 small images: 3 shades of each of 8 colours, each with two captions naming its colour."""
    folder = tmp_path_factory.mktemp("colour-gallery")
    rng = np.random.default_rng(0)
    lines = ["file,caption,image_id"]
    for name, rgb in COLOURS.items():
        for shade in range(3):
            arr = np.clip(np.array(rgb) + rng.integers(-15, 16, size=(12, 12, 3)), 0, 255).astype(np.uint8)
            file = f"{name}-{shade}.png"
            Image.fromarray(arr).save(folder / file)
            lines.append(f"{file},a {name} square number {shade},{name}-{shade}")
            lines.append(f"{file},the colour {name} shade {shade},{name}-{shade}")
    (folder / "captions.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(autouse=True)
def one_thread():
    """Every evaluation test runs torch on one thread: small score blocks run far faster on one thread
    than on two contended ones (CI has 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
