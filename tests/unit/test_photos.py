"""Uploads are checked by content; hostile files are refused with a reason and leave nothing behind.

Every image here is generated in the test, so no binary fixture lives in the repository.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import struct
import time
import zlib

import pillow_heif
import pytest
from PIL import Image, ImageFile

from domain.errors import InvalidInput, NotFound
from tidtam.infra.photos import (
    NAME_PATTERN,
    PhotoLimits,
    PhotoStore,
    StorageUnavailable,
    StoredPhoto,
    sanitise_filename,
)


@pytest.fixture
def store(tmp_path):
    return PhotoStore(tmp_path / "photos")


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def noisy(size=(400, 300)) -> Image.Image:
    """Noise, so the JPEG has real scan data to truncate."""
    return Image.merge("RGB", [Image.effect_noise(size, 60) for _ in range(3)])


def jpeg(size=(400, 300), **params) -> bytes:
    return encode(noisy(size), "JPEG", **params)


def smooth(size: tuple[int, int]) -> Image.Image:
    """A gradient: quick to encode at phone size."""
    return Image.linear_gradient("L").resize(size).convert("RGB")


def png_bomb(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG: tiny on disk, width × height pixels once decoded."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits, all zero
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is edited to claim a huge size."""
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def stored_image(store: PhotoStore, name: str) -> Image.Image:
    return Image.open(io.BytesIO(store.path(name).read_bytes()))


def files_in(store: PhotoStore) -> list[str]:
    return sorted(os.listdir(store.root)) if store.root.exists() else []


def refused(store: PhotoStore, data: bytes, name: str = "upload.jpg", **limits) -> InvalidInput:
    """The upload is refused, with a reason in both languages, and nothing is left in the store."""
    with pytest.raises(InvalidInput) as caught:
        store.save(data, name, PhotoLimits(**limits))
    assert caught.value.message_en and caught.value.message_th
    assert files_in(store) == []
    return caught.value


# --- accepted photos ---------------------------------------------------------------------------


def test_jpeg_is_stored_with_display_and_thumbnail(store):
    data = encode(smooth((3200, 2400)), "JPEG")
    photo = store.save(data, "IMG_0001.JPG")
    assert isinstance(photo, StoredPhoto)
    assert (photo.content_type, photo.size_bytes) == ("image/jpeg", len(data))
    assert (photo.width, photo.height) == (3200, 2400)
    assert photo.sha256 == hashlib.sha256(data).hexdigest()
    assert photo.stored_name.endswith(".original.jpg")
    assert store.path(photo.stored_name).read_bytes() == data  # byte-for-byte
    assert stored_image(store, photo.display_name).size == (1600, 1200)
    assert stored_image(store, photo.thumb_name).size == (320, 240)
    assert files_in(store) == sorted([photo.stored_name, photo.display_name, photo.thumb_name])


def test_small_photo_is_not_enlarged(store):
    photo = store.save(jpeg((200, 150)), "small.jpg")
    assert stored_image(store, photo.display_name).size == (200, 150)
    assert stored_image(store, photo.thumb_name).size == (200, 150)


def test_exif_orientation_is_applied_to_display_and_thumbnail(store):
    img = noisy((200, 100))
    exif = img.getexif()
    exif[0x0112] = 6  # camera held upright: turn 90° clockwise to view
    data = encode(img, "JPEG", exif=exif)
    photo = store.save(data, "portrait.jpg")
    assert (photo.width, photo.height) == (100, 200)
    for name in (photo.display_name, photo.thumb_name):
        shown = stored_image(store, name)
        assert shown.format == "JPEG" and shown.size == (100, 200)
        assert shown.getexif().get(0x0112) in (None, 1)  # no second rotation by the browser
    assert store.path(photo.stored_name).read_bytes() == data  # the original keeps its EXIF


def test_heic_from_a_phone_is_accepted(store):
    buf = io.BytesIO()
    pillow_heif.from_pillow(smooth((640, 480))).save(buf, quality=70)
    data = buf.getvalue()
    assert data[4:12] == b"ftypheic"
    photo = store.save(data, "IMG_0002.HEIC")
    assert (photo.content_type, photo.width, photo.height) == ("image/heic", 640, 480)
    assert photo.stored_name.endswith(".original.heic")
    assert store.path(photo.stored_name).read_bytes() == data
    display = stored_image(store, photo.display_name)
    assert (display.format, display.size) == ("JPEG", (640, 480))


def test_multi_picture_jpeg_from_a_phone_is_accepted_as_jpeg(store):
    img = noisy((300, 200))
    data = encode(img, "MPO", save_all=True, append_images=[img])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    photo = store.save(data, "portrait-mode.jpg")
    assert (photo.content_type, photo.stored_name[-4:]) == ("image/jpeg", ".jpg")


def test_transparent_png_is_put_on_white(store):
    img = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    img.paste((200, 0, 0, 255), (10, 10, 30, 20))
    photo = store.save(encode(img, "PNG"), "logo.png")
    assert (photo.content_type, photo.stored_name[-4:]) == ("image/png", ".png")
    display = stored_image(store, photo.display_name).convert("RGB")
    assert min(display.getpixel((1, 1))) >= 245  # transparent → white, not black
    red, green, _ = display.getpixel((20, 15))
    assert red > 150 and green < 60


@pytest.mark.parametrize(("mode", "fmt"), [
    ("L", "JPEG"), ("CMYK", "JPEG"), ("1", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("P", "PNG"),
    ("I;16", "PNG"), ("RGB", "PNG"),
])
def test_every_mode_a_camera_or_editor_writes_becomes_a_jpeg(store, mode, fmt):
    img = Image.new(mode, (64, 48))
    params = {"transparency": 0} if mode == "P" else {}
    photo = store.save(encode(img, fmt, **params), f"x.{fmt.lower()}")
    display = stored_image(store, photo.display_name)
    assert (display.format, display.mode, display.size) == ("JPEG", "RGB", (64, 48))


# --- refused uploads ----------------------------------------------------------------------------

NOT_A_PHOTO = "not JPEG, PNG or HEIC"


@pytest.mark.parametrize(("name", "data"), [
    ("shell script renamed", b"#!/bin/sh\nrm -rf / --no-preserve-root\n"),
    ("html renamed", b"<!doctype html><script>alert(document.cookie)</script>"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>'),
    ("pdf", encode(Image.new("RGB", (20, 20)), "PDF")),
    ("gif", encode(Image.new("RGB", (20, 20), "blue"), "GIF")),
    ("gif/js polyglot", b"GIF89a/*\x01\x00\x01\x00\x00\x00\x00*/=1;alert(1);//" + bytes(20)),
    ("bmp", encode(Image.new("RGB", (20, 20)), "BMP")),
    ("webp", encode(Image.new("RGB", (20, 20)), "WEBP")),
    ("avif", encode(Image.new("RGB", (20, 20)), "AVIF")),
    ("jpeg magic then a script", b"\xff\xd8\xff\xe0" + b"<?php system($_GET['c']); ?>" * 10),
])
def test_content_that_is_not_a_photo_is_refused_whatever_the_name(store, name, data):
    error = refused(store, data, "holiday.jpg")
    assert NOT_A_PHOTO in error.message_en
    assert "ไม่ใช่รูปภาพ JPEG, PNG หรือ HEIC" in error.message_th
    assert error.message_en.startswith("holiday.jpg: ")


def test_empty_file_is_refused(store):
    error = refused(store, b"", "empty.jpg")
    assert "empty" in error.message_en and "ว่างเปล่า" in error.message_th


@pytest.mark.parametrize("data", [jpeg()[:4000], encode(noisy(), "PNG")[:5000]], ids=["jpeg", "png"])
def test_truncated_photo_is_refused(store, data):
    error = refused(store, data)
    assert "could not be read" in error.message_en and "อ่านรูปไม่ได้" in error.message_th


def test_fifty_megabytes_is_refused_before_decoding(store, monkeypatch):
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("decoded an oversized upload"))
    error = refused(store, b"\xff\xd8\xff\xe0" + bytes(50_000_000 - 4), "huge.jpg")
    assert error.message_en == "huge.jpg: the photo is 50.0 MB; at most 10 MB"
    assert "50.0 MB" in error.message_th and "10 MB" in error.message_th


def test_size_limit_comes_from_the_directive(store):
    data = jpeg()
    refused(store, data, max_bytes=len(data) - 1)
    assert store.save(data, "ok.jpg", PhotoLimits(max_bytes=len(data))).size_bytes == len(data)


@pytest.mark.parametrize(("make", "width", "height"), [
    (png_bomb, 8_000, 8_000),  # 64 MP: over our 40 MP, under Pillow's own warning
    (png_bomb, 10_000, 10_000),  # 100 MP: Pillow's DecompressionBombWarning
    (png_bomb, 20_000, 20_000),  # 400 MP: Pillow's DecompressionBombError
    (jpeg_claiming, 60_000, 60_000),  # a JPEG frame header claiming 3.6 GP
], ids=["ours", "pillow-warning", "pillow-error", "jpeg-header"])
def test_decompression_bomb_is_refused_from_the_header(store, monkeypatch, make, width, height):
    started = time.monotonic()
    data = make(width, height)
    assert len(data) < 1_000_000  # small on the wire …
    loads = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loads.append(self))
    error = refused(store, data, "bomb.png")
    assert "too many pixels" in error.message_en and "40 ล้านพิกเซล" in error.message_th
    assert loads == []  # … and never decoded
    assert time.monotonic() - started < 2


def test_pixel_limit_comes_from_the_directive(store):
    png = encode(Image.new("RGB", (20, 20)), "PNG")  # 400 pixels
    error = refused(store, png, max_pixels=399)
    assert "too many pixels; at most 0.000399 megapixels" in error.message_en
    assert "0.000399 ล้านพิกเซล" in error.message_th
    assert (store.save(png, "ok.png", PhotoLimits(max_pixels=400)).width, len(files_in(store))) == (20, 3)


def test_a_failed_write_leaves_nothing_behind(store, monkeypatch):
    real_replace, calls = os.replace, []

    def flaky_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(StorageUnavailable, match="disk is full"):
        store.save(jpeg(), "photo.jpg")
    assert files_in(store) == []  # neither the first file nor any temp file


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", [
    "../../etc/passwd.jpg", "/etc/passwd", "C:\\Windows\\system32\\x.jpg", "a\x00b.jpg",
    "x" * 5000 + ".jpg", "..", "", "\u202egpj.exe",
])
def test_stored_names_never_come_from_the_upload_name(tmp_path, hostile):
    store = PhotoStore(tmp_path / "photos")
    photo = store.save(jpeg((40, 30)), hostile)
    names = [photo.stored_name, photo.display_name, photo.thumb_name]
    assert all(NAME_PATTERN.fullmatch(name) for name in names)
    assert sorted(os.listdir(tmp_path)) == ["photos"]  # nothing written beside or above root
    assert files_in(store) == sorted(names)


@pytest.mark.parametrize(("given", "shown"), [
    ("IMG_0001.JPG", "IMG_0001.JPG"),
    ("รูปกิจกรรม ครั้งที่ 1.heic", "รูปกิจกรรม ครั้งที่ 1.heic"),
    ("../../etc/passwd.jpg", "passwd.jpg"),
    ("C:\\x\\y.jpg", "y.jpg"),
    ("/var/tmp/", "photo"),
    ("a\x00b\r\n.jpg", "ab.jpg"),
    ("photo\u202egpj.exe", "photogpj.exe"),  # right-to-left override would show "exe.jpg"
    ("  spaced.png  ", "spaced.png"),
    ("..", "photo"),
    ("", "photo"),
    ("\x00\x01", "photo"),
])
def test_sanitise_filename(given, shown):
    assert sanitise_filename(given) == shown


def test_sanitise_filename_keeps_the_extension_of_a_long_name():
    shown = sanitise_filename("ก" * 300 + ".jpeg")
    assert len(shown) == 120 and shown.endswith(".jpeg")
    assert len(sanitise_filename("x" * 300)) == 120


@pytest.mark.parametrize("name", [
    "../photos/x.jpg", "/etc/passwd", "..", "", "passwd",
    "0123456789abcdef0123456789abcdef.jpg",
    "0123456789abcdef0123456789abcdef.original.exe",
    "0123456789abcdef0123456789abcdef.display.jpg/../../../etc/passwd",
    "0123456789ABCDEF0123456789ABCDEF.thumb.jpg",
    "0123456789abcdef0123456789abcdef.thumb.jpg\x00.png",
    "0123456789abcdef0123456789abcdef.thumb.jpg\n",
])
def test_path_refuses_any_name_the_store_did_not_make(store, name):
    with pytest.raises(NotFound):
        store.path(name)


def test_path_and_delete(store):
    photo = store.save(jpeg((40, 30)), "a.jpg")
    assert store.path(photo.thumb_name) == store.root / photo.thumb_name
    store.delete(photo)
    assert files_in(store) == []
    store.delete(photo)  # already gone: fine
