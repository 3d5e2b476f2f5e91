"""Image uploads for training: zips unpacked safely under plain names, limits enforced."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from workbench.image_uploads import save_image_upload
from workbench.uploads import UploadError


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="PNG")
    return buf.getvalue()


def test_a_zip_is_unpacked_flat_and_only_images_are_kept(tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("photos/000123.png", png_bytes())
        z.writestr("../../escape.png", png_bytes())
        z.writestr("notes.txt", "not an image")
        z.writestr("__MACOSX/._000123.png", b"junk")
    folder, count, skipped = save_image_upload([str(archive)], tmp_path / "session", max_mb=5)
    assert folder.parent == tmp_path / "session"
    assert sorted(p.name for p in folder.iterdir()) == ["000123.png", "escape.png"]
    assert (count, skipped) == (2, 2)
    assert not (tmp_path / "escape.png").exists()


def test_loose_image_files_and_the_limits(tmp_path):
    image = tmp_path / "abc.png"
    image.write_bytes(png_bytes())
    folder, count, _ = save_image_upload([str(image)], tmp_path / "s", max_mb=5)
    assert count == 1 and (folder / "abc.png").is_file()
    with pytest.raises(UploadError, match="No images in the upload"):
        text = tmp_path / "x.txt"
        text.write_text("hello")
        save_image_upload([str(text)], tmp_path / "s", max_mb=5)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.png", b"\0" * (3 * 1024 * 1024))  # compresses to a few KB
    with pytest.raises(UploadError, match="too large"):
        save_image_upload([str(bomb)], tmp_path / "s", max_mb=0.5)
    with pytest.raises(UploadError, match="not a readable zip"):
        fake = tmp_path / "fake.zip"
        fake.write_bytes(b"PK not really")
        save_image_upload([str(fake)], tmp_path / "s", max_mb=5)


@pytest.mark.parametrize("case", ["too-many", "too-large", "too-many-loose"])
def test_a_refused_upload_leaves_nothing_behind(tmp_path, monkeypatch, case):
    """A refused 25,000-entry zip left 20,000 files (79 MB) each time: now the count is checked before
    unpacking, and whatever a refusal stopped half-way is removed."""
    import workbench.image_uploads as image_uploads

    monkeypatch.setattr(image_uploads, "MAX_IMAGES", 10)
    session = tmp_path / "session"
    archive = tmp_path / "images.zip"
    files = [str(archive)]
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        if case == "too-many":
            for i in range(25):
                z.writestr(f"{i:06d}.png", png_bytes())
        elif case == "too-large":  # five small images unpacked, then one over the unpacked budget
            for i in range(5):
                z.writestr(f"{i:06d}.png", png_bytes())
            z.writestr("big.png", b"\0" * (3 * 1024 * 1024))
        else:
            z.writestr("000000.png", png_bytes())
    if case == "too-many-loose":
        for i in range(12):
            (tmp_path / f"{i}.png").write_bytes(png_bytes())
            files.append(str(tmp_path / f"{i}.png"))
    with pytest.raises(UploadError, match="over the limit|too large|Too many"):
        save_image_upload(files, session, max_mb=0.5)
    assert not session.exists() or list(session.iterdir()) == []
