"""The server's own disk fails: full, read-only, a photo file gone. A clear Thai and English answer
(JSON to scripts and API clients, a page to browsers), and nothing half-written.

The photo folder lives on a real, tiny tmpfs mounted for the test: a real ENOSPC when it is full,
a real EROFS once it is remounted read-only (root ignores permission bits, a read-only mount not).
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from models.report import photos_of
from tests.conftest import unavailable
from tests.web.conftest import make_app
from tests.web.helpers import signed_in
from tests.web.test_report_pages import CODE, KEYS, draft, jpeg, report, stored, upload
from tidtam.infra.photos import PhotoStore, StorageUnavailable, storage_error

FULL_TH = "พื้นที่จัดเก็บของเครื่องแม่ข่ายเต็ม จึงยังไม่ได้บันทึกรูปภาพ"
READ_ONLY_TH = "เครื่องแม่ข่ายเขียนลงโฟลเดอร์ข้อมูลไม่ได้"


@pytest.fixture
def tiny_disk(tmp_path) -> Iterator[Path]:
    """A 1 MB tmpfs of its own (the demo database fits, little more), unmounted afterwards."""
    mount = shutil.which("mount")
    folder = tmp_path / "disk"
    folder.mkdir()
    made = subprocess.run([mount or "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                          capture_output=True, text=True) if mount else None
    if made is None or made.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {made.stderr.strip() if made else 'no mount'}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Write until the filesystem says it is full."""
    with open(folder / "filler", "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


@pytest.fixture
def staff_on(engine):
    """A signed-in district staff member of an app whose data folder is ``data_dir``."""
    clients: list[TestClient] = []

    def make(data_dir: Path) -> TestClient:
        client = signed_in(TestClient(make_app(engine, data_dir=data_dir)), f"staff-{CODE}")
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def photo_count(engine) -> int:
    with Session(engine) as session:
        saved = stored(engine)
        return len(photos_of(session, saved.id)) if saved else 0


def test_a_full_disk_refuses_the_photo_clearly_and_keeps_nothing(tiny_disk, staff_on, engine):
    staff = staff_on(tiny_disk)
    version = draft(staff, report(), 0).json()["version"]
    (tiny_disk / "photos").mkdir()
    fill(tiny_disk)

    answer = upload(staff, KEYS[0], ("ต้นไม้.jpg", jpeg()))
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail["th"].startswith(FULL_TH) and "disk is full" in detail["en"]
    assert photo_count(engine) == 0 and stored(engine).version == version
    assert [p.name for p in (tiny_disk / "photos").iterdir()] == []  # no partial file either

    page = upload(staff, KEYS[0], ("ต้นไม้.jpg", jpeg()), json=False)  # a form post: a page
    assert page.status_code == 503 and FULL_TH in page.text and "disk is full" in page.text
    assert "Traceback" not in page.text


def test_a_read_only_data_folder_refuses_the_photo_clearly_and_keeps_nothing(tiny_disk, staff_on,
                                                                             engine):
    staff = staff_on(tiny_disk)
    version = draft(staff, report(), 0).json()["version"]
    (tiny_disk / "photos").mkdir()
    remount_read_only(tiny_disk)

    answer = upload(staff, KEYS[0], ("ต้นไม้.jpg", jpeg()))
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail["th"].startswith(READ_ONLY_TH) and "read-only" in detail["en"]
    assert photo_count(engine) == 0 and stored(engine).version == version


def test_a_photo_whose_file_is_gone_says_so_instead_of_a_500(staff_on, engine, tmp_path):
    staff = staff_on(tmp_path)
    draft(staff, report(), 0)
    assert upload(staff, KEYS[0], ("ต้นไม้.jpg", jpeg())).status_code == 200
    with Session(engine) as session:
        [photo] = photos_of(session, stored(engine).id)
    (tmp_path / "photos" / photo.display_name).unlink()

    gone = staff.get(f"/photos/{photo.id}")
    assert gone.status_code == 404
    assert "ไม่พบไฟล์ของรูปภาพนี้ในเครื่องแม่ข่าย" in gone.text and "missing on the server" in gone.text
    assert staff.get(f"/photos/{photo.id}/thumb").status_code == 200  # the other files serve on


@pytest.mark.parametrize(("code", "th", "en"), [
    (errno.ENOSPC, "พื้นที่จัดเก็บของเครื่องแม่ข่ายเต็ม", "disk is full"),
    (errno.EDQUOT, "พื้นที่จัดเก็บของเครื่องแม่ข่ายเต็ม", "disk is full"),
    (errno.EROFS, "อ่านได้อย่างเดียว", "read-only"),
    (errno.EACCES, "อ่านได้อย่างเดียว", "no permission"),
    (errno.EIO, "จัดเก็บรูปภาพไม่ได้", "could not store the photo"),
])
def test_each_storage_failure_has_its_own_words(code, th, en):
    error = storage_error(OSError(code, "boom"))
    assert isinstance(error, StorageUnavailable) and th in error.message_th and en in error.message_en


def test_a_file_that_cannot_be_deleted_is_left_behind_not_an_error(tiny_disk):
    store = PhotoStore(tiny_disk / "photos")
    photo = store.save(jpeg(), "a.jpg")
    remount_read_only(tiny_disk)
    store.delete(photo)  # after the commit: logged, never raised
    assert (tiny_disk / "photos" / photo.stored_name).exists()


def test_an_unexpected_error_answers_a_script_in_json(engine, tmp_path):
    """A bug's 500 still answers the page's script in the shape it reads, never an HTML page."""
    app = make_app(engine, data_dir=tmp_path)
    route = f"/boom-{uuid.uuid4().hex}"

    @app.get(route)
    def boom():
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get(route, headers={"accept": "application/json"})
        page = client.get(route)
    assert answer.status_code == 500 and set(answer.json()["detail"]) == {"th", "en"}
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")


def test_a_sqlite_database_on_a_full_disk_says_the_change_was_not_saved(tiny_disk, tmp_path):
    """The database file itself on the full disk: marking a step done is refused with the cause,
    and the item is still open."""
    from sqlalchemy import create_engine
    from sqlmodel import select

    from models.directive import ItemStatus, TrackedItem
    from tests.conftest import NOW
    from tests.web.helpers import csrf
    from tidtam.infra import db
    from tidtam.ops.bootstrap import initialise

    url = f"sqlite:///{tiny_disk / 'tidtam.db'}"
    engine = db.engine_for(url)
    try:
        initialise(engine, demo=True, now=NOW)
        with Session(engine) as session:
            item = session.exec(select(TrackedItem).where(
                TrackedItem.district_code == CODE, TrackedItem.status == ItemStatus.OPEN)
                .order_by(TrackedItem.id)).first()
        # signing in writes its session row: done before the disk fills up
        with signed_in(TestClient(make_app(engine, data_dir=tmp_path)), f"staff-{CODE}") as staff:
            fill(tiny_disk)
            page = staff.post(f"/items/{item.id}/done", data={
                "csrftoken": csrf(staff), "version": item.version, "note": "ก" * 1999},
                follow_redirects=False)
        assert page.status_code == 503 and "พื้นที่จัดเก็บของเครื่องแม่ข่ายเต็ม" in page.text
        assert "การเปลี่ยนแปลงนี้" in page.text and "your change was not saved" in page.text
        with Session(create_engine(url)) as session:
            assert session.get(TrackedItem, item.id).status == ItemStatus.OPEN
    finally:
        engine.dispose()
        db.engine_for.cache_clear()
