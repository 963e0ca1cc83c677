"""Report photos: checked by what the bytes are (never by the name), stored under names the system chooses.

A phone sends JPEG, PNG or HEIC; anything else — a script renamed ``.jpg``, a GIF, a PDF, a
decompression bomb — is refused with a reason in Thai and English, and nothing is written.
The original is kept byte-for-byte; a display copy and a thumbnail are JPEGs with EXIF
orientation applied, so every browser shows them upright.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import re
import tempfile
import unicodedata
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import ExifTags, Image, ImageOps
from pillow_heif import register_heif_opener

from domain.errors import InvalidInput, NotFound, Unavailable

register_heif_opener()
log = logging.getLogger(__name__)

DISPLAY_PX = 1600
THUMB_PX = 320
# Pillow format name → (extension of the original, content type). Phones' multi-picture JPEGs open as MPO.
ACCEPTED = {
    "JPEG": ("jpg", "image/jpeg"),
    "MPO": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "HEIF": ("heic", "image/heic"),
}
OPENERS = ("JPEG", "PNG", "HEIF")  # the only decoders that ever see an upload
NAME_PATTERN = re.compile(r"[0-9a-f]{32}\.(?:original\.(?:jpg|png|heic)|display\.jpg|thumb\.jpg)")
QUARTER_TURNS = {5, 6, 7, 8}  # EXIF orientations whose upright picture swaps width and height
SEPARATORS = re.compile(r"[\\/]")  # either OS's: "C:\\x\\y.jpg" and "../../y.jpg" both end in y.jpg


class StorageUnavailable(Unavailable):
    """The server cannot write the photo folder (disk full, read-only, no permission): nothing was
    saved, and it is the administrator's to fix, not the user's."""


FULL = {errno.ENOSPC, errno.EDQUOT}
READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_error(error: OSError, what: tuple[str, str] = ("the photo", "รูปภาพ")
                  ) -> StorageUnavailable:
    """What a failed write of the server's disk means for the person: ``what`` (English, Thai)
    was not saved, and why, in words an administrator can act on."""
    en, th = what
    if error.errno in FULL:
        return StorageUnavailable(
            f"the server's disk is full: {en} was not saved (nothing else changed); tell the "
            "system administrator, then try again",
            f"พื้นที่จัดเก็บของเครื่องแม่ข่ายเต็ม จึงยังไม่ได้บันทึก{th} (ข้อมูลอื่นไม่เปลี่ยนแปลง) "
            "กรุณาแจ้งผู้ดูแลระบบ แล้วลองอีกครั้ง")
    if error.errno in READ_ONLY:
        return StorageUnavailable(
            f"the server may not write its data folder (read-only or no permission): {en} was "
            "not saved (nothing else changed); tell the system administrator",
            f"เครื่องแม่ข่ายเขียนลงโฟลเดอร์ข้อมูลไม่ได้ (อ่านได้อย่างเดียวหรือไม่มีสิทธิ์) "
            f"จึงยังไม่ได้บันทึก{th} (ข้อมูลอื่นไม่เปลี่ยนแปลง) กรุณาแจ้งผู้ดูแลระบบ")
    return StorageUnavailable(
        f"the server could not store {en} ({error.strerror or error}): nothing was saved; "
        "tell the system administrator",
        f"เครื่องแม่ข่ายจัดเก็บ{th}ไม่ได้ จึงยังไม่ได้บันทึก กรุณาแจ้งผู้ดูแลระบบ")


@dataclass(frozen=True)
class PhotoLimits:
    """What one upload may weigh and how many pixels it may decode to (from the directive's form)."""

    max_bytes: int = 10_000_000
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class StoredPhoto:
    """The three files written for one upload; width and height are as the photo is seen (upright)."""

    stored_name: str
    display_name: str
    thumb_name: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    sha256: str


class NamedPhoto(Protocol):
    """Anything carrying the three names (a StoredPhoto, a ReportPhoto row)."""

    stored_name: str
    display_name: str
    thumb_name: str


class PhotoStore:
    """Photo files under one directory (``settings.data_dir / "photos"``); only names it made are served."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def save(self, data: bytes, filename: str, limits: PhotoLimits = PhotoLimits()) -> StoredPhoto:
        """Check, render and store an upload; InvalidInput (and no file) if it is not an acceptable photo.

        ``filename`` only names the file in the error message; it never becomes a path.
        """
        shown = sanitise_filename(filename)
        img = _open(data, shown, limits)
        ext, content_type = ACCEPTED[img.format]
        display, thumb, (width, height) = _render(img, shown)
        uid = uuid.uuid4().hex
        photo = StoredPhoto(
            stored_name=f"{uid}.original.{ext}", display_name=f"{uid}.display.jpg",
            thumb_name=f"{uid}.thumb.jpg", content_type=content_type, size_bytes=len(data),
            width=width, height=height, sha256=hashlib.sha256(data).hexdigest(),
        )
        try:
            self._write_all({photo.stored_name: data, photo.display_name: display,
                             photo.thumb_name: thumb})
        except OSError as error:
            raise storage_error(error) from error
        return photo

    def path(self, name: str) -> Path:
        """The file for a name this store generated; anything else is NotFound, so no request leaves root."""
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise NotFound(f"no such photo: {name!r}", "ไม่พบรูปภาพนี้")
        return self.root / name

    def existing(self, name: str) -> Path:
        """The file for ``name``; NotFound, saying so, when the row outlived its file."""
        path = self.path(name)
        if not path.is_file():
            raise NotFound(f"the file of this photo is missing on the server ({name}); it was "
                           "deleted or not restored from a backup: tell the system administrator",
                           "ไม่พบไฟล์ของรูปภาพนี้ในเครื่องแม่ข่าย (อาจถูกลบหรือกู้คืนข้อมูลไม่ครบ) "
                           "กรุณาแจ้งผู้ดูแลระบบ")
        return path

    def delete(self, photo: NamedPhoto) -> None:
        """Remove the three files; a file already gone is fine (deleting twice is not an error).

        Runs after the change is committed: a file that cannot be removed (read-only folder) is
        logged and left behind, an orphan the row no longer names, never an error for the user.
        """
        for name in (photo.stored_name, photo.display_name, photo.thumb_name):
            try:
                self.path(name).unlink(missing_ok=True)
            except OSError as error:
                log.warning("photo file %s not removed: %s", name, error)

    def _write_all(self, files: dict[str, bytes]) -> None:
        """All or nothing: each file is written atomically; a failure part-way removes those already made."""
        self.root.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        try:
            for name, content in files.items():
                _write_atomic(self.root / name, content)
                written.append(self.root / name)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise


def sanitise_filename(name: str) -> str:
    """A safe name to *show* (basename, no control or direction characters, ≤ 120 chars); never a path."""
    base = SEPARATORS.split(unicodedata.normalize("NFC", str(name)))[-1]
    base = "".join(ch for ch in base if not unicodedata.category(ch).startswith("C")).strip()
    if base in ("", ".", ".."):
        return "photo"
    stem, dot, suffix = base.rpartition(".")
    if len(base) > 120 and dot and stem and len(suffix) <= 10:
        return stem[: 119 - len(suffix)].rstrip() + "." + suffix
    return base[:120]


def _open(data: bytes, shown: str, limits: PhotoLimits) -> Image.Image:
    """Identify by content and check the header (size, pixels) before any pixel is decoded."""
    if not data:
        raise InvalidInput(f"{shown}: the file is empty", f"{shown}: ไฟล์ว่างเปล่า")
    if len(data) > limits.max_bytes:
        mb, limit = f"{len(data) / 1e6:.1f}", f"{limits.max_bytes / 1e6:g}"
        raise InvalidInput(f"{shown}: the photo is {mb} MB; at most {limit} MB",
                           f"{shown}: รูปมีขนาด {mb} MB เกินกำหนด (ไม่เกิน {limit} MB)")
    try:
        with warnings.catch_warnings():  # Pillow's own bomb check warns before it errors; both mean "too big"
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=OPENERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(shown, limits) from None
    except Exception:  # hostile bytes may trip any parser error; all mean the same to the person
        raise InvalidInput(f"{shown}: not a photo: the file's content is not JPEG, PNG or HEIC",
                           f"{shown}: ไฟล์นี้ไม่ใช่รูปภาพ JPEG, PNG หรือ HEIC") from None
    if img.format not in ACCEPTED:
        raise InvalidInput(f"{shown}: not a photo: the file's content is not JPEG, PNG or HEIC",
                           f"{shown}: ไฟล์นี้ไม่ใช่รูปภาพ JPEG, PNG หรือ HEIC")
    if img.width * img.height > limits.max_pixels:
        raise _too_many_pixels(shown, limits)
    return img


def _too_many_pixels(shown: str, limits: PhotoLimits) -> InvalidInput:
    mp = f"{limits.max_pixels / 1e6:g}"
    return InvalidInput(f"{shown}: the photo has too many pixels; at most {mp} megapixels",
                        f"{shown}: รูปมีจำนวนพิกเซลเกินกำหนด (ไม่เกิน {mp} ล้านพิกเซล)")


def _render(img: Image.Image, shown: str) -> tuple[bytes, bytes, tuple[int, int]]:
    """Decode once, turn upright, flatten; the display and thumbnail JPEGs and the upright original size."""
    width, height = img.size  # before draft() shrinks a JPEG
    try:
        img.draft(None, (DISPLAY_PX * 2, DISPLAY_PX * 2))  # JPEG: a 12 MP photo never sits whole in memory
        img.load()  # a truncated or corrupt file fails here (and a PNG's EXIF may follow its pixels)
        if img.getexif().get(ExifTags.Base.Orientation, 1) in QUARTER_TURNS:
            width, height = height, width
        # An RGB profile (a phone's Display P3) still describes the pixels; a CMYK one no longer would.
        icc = img.info.get("icc_profile") if img.mode in ("RGB", "RGBA") else None
        picture = _flatten(ImageOps.exif_transpose(img))
        picture.thumbnail((DISPLAY_PX, DISPLAY_PX), Image.Resampling.LANCZOS)
        display = _jpeg(picture, 85, icc)
        picture.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
        return display, _jpeg(picture, 80, icc), (width, height)
    except Exception:  # decoders report damage as OSError, SyntaxError, ValueError…: one reason for people
        raise InvalidInput(f"{shown}: the photo could not be read (the file is damaged or incomplete)",
                           f"{shown}: อ่านรูปไม่ได้ (ไฟล์เสียหรือส่งมาไม่ครบ) กรุณาส่งใหม่") from None


def _flatten(img: Image.Image) -> Image.Image:
    """JPEG has no alpha or palette: put transparent parts on white, as the printed page would show them."""
    if img.mode == "RGB":
        return img
    if not img.has_transparency_data:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    page = Image.new("RGB", rgba.size, "white")
    page.paste(rgba, mask=rgba.getchannel("A"))
    return page


def _jpeg(img: Image.Image, quality: int, icc: bytes | None) -> bytes:
    """Encode without the original's EXIF (orientation is applied; GPS stays only in the original)."""
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, optimize=True, icc_profile=icc)
    return out.getvalue()


def _write_atomic(final: Path, content: bytes) -> None:
    """Readers see the whole file or none: write a temp file beside it, fsync, then rename over."""
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
