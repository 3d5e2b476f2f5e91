"""Mini-world scenes rendered as a gallery folder that load_gallery reads."""

from __future__ import annotations

from paraclip.data.galleries import load_gallery
from paraclip.miniworld.gallery import render_gallery
from paraclip.miniworld.world import iter_scenes


def test_rendered_gallery_loads_with_the_scenes_captions(tmp_path):
    calls = []
    folder = render_gallery(tmp_path / "g", 5, progress=lambda done, n: calls.append((done, n)))
    gallery = load_gallery(str(folder))
    scenes = list(iter_scenes(seed=0, split="test", n=5))
    assert list(gallery.ids) == [s.image_id for s in scenes]
    assert [c[0] for c in gallery.captions] == [s.caption for s in scenes]
    assert gallery.load_image(gallery.ids[0]).size == scenes[0].image().size
    assert calls == [(0, 5)] and sorted(p.name for p in tmp_path.iterdir()) == ["g"]  # no .tmp left
    render_gallery(folder, 3)  # rendering again replaces the folder as a whole
    assert len(load_gallery(str(folder)).ids) == 3
