"""The file button's kernel side: files arrive in pieces, in order, within the limit, or not at all.

``PageSide`` sends the messages the page script sends (start, pieces, end, cancel) and records
what the kernel answers, so each test drives the protocol exactly as a browser would.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from edit_helpers import RecordingPreviewEngine, drag, picture, png_bytes
from ipyimagegen.session import JobRunner
from ipyimagegen.widgets.edit_tab import EditTab
from ipyimagegen.widgets.file_picker import CHUNK_BYTES, FilePicker, progress_text
from ipyimagegen.widgets.result_grid import ResultGrid

MiB = 1024 * 1024


class PageSide:
    """The page's side of a :class:`FilePicker`: the messages its script sends, and what it got back."""

    def __init__(self, picker: FilePicker) -> None:
        self.picker = picker
        self.answers: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self._ids = itertools.count(1)
        picker.send = lambda content, buffers=None: self.answers.append(content)
        picker.observe(lambda change: self.notes.append(change["new"]), "note")

    def message(self, content: Any, buffers: list[Any] | None = None) -> None:
        self.picker._handle_message(self.picker, content, buffers or [])

    def start(self, files: list[tuple[str, int]], upload_id: str | None = None) -> str:
        upload_id = upload_id or f"upload-{next(self._ids)}"
        described = [
            {"name": name, "type": "image/png", "size": size, "last_modified": 0} for name, size in files
        ]
        self.message({"event": "upload-start", "id": upload_id, "files": described})
        return upload_id

    def chunk(self, upload_id: str, index: int, offset: int, data: Any) -> None:
        self.message({"event": "upload-chunk", "id": upload_id, "file": index, "offset": offset}, [data])

    def end(self, upload_id: str) -> None:
        self.message({"event": "upload-end", "id": upload_id})

    def upload(self, files: list[tuple[str, bytes]], chunk: int = CHUNK_BYTES) -> str:
        """What the page does with chosen files: start, each file within the limit in pieces, end."""
        upload_id = self.start([(name, len(data)) for name, data in files])
        limit = self.picker.max_bytes
        for index, (_name, data) in enumerate(files):
            if limit and len(data) > limit:
                continue
            for offset in range(0, len(data), chunk):
                self.chunk(upload_id, index, offset, memoryview(data)[offset : offset + chunk])
        self.end(upload_id)
        return upload_id

    def stopped(self) -> list[str]:
        return [answer["id"] for answer in self.answers if answer.get("event") == "upload-stop"]

    def acknowledged(self, upload_id: str) -> list[int]:
        return [
            answer["received"]
            for answer in self.answers
            if answer.get("event") == "upload-progress" and answer["id"] == upload_id
        ]


def _picker(**kwargs: Any) -> tuple[FilePicker, PageSide, list[list[dict[str, Any]]], list[str]]:
    picker = FilePicker(**kwargs)
    got: list[list[dict[str, Any]]] = []
    errors: list[str] = []
    picker.on_files(got.append)
    picker.on_error(errors.append)
    return picker, PageSide(picker), got, errors


def _noise(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# --- pieces in order ----------------------------------------------------------------------------


def test_a_file_in_pieces_arrives_whole_with_its_progress() -> None:
    picker, page, got, errors = _picker(max_bytes=50 * MiB)
    data = _noise(3 * MiB + 12_345)
    upload_id = page.upload([("photo.png", data)])
    assert errors == [] and len(got) == 1
    (entry,) = got[0]
    assert entry["name"] == "photo.png" and entry["size"] == len(data) and bytes(entry["content"]) == data
    assert isinstance(entry["content"].obj, bytearray)  # assembled in one buffer, not a list of copies
    assert page.acknowledged(upload_id) == [min(len(data), n * CHUNK_BYTES) for n in range(1, 5)]
    assert "reading 0.0 of 3.0 MB" in page.notes and "reading 2.0 of 3.0 MB" in page.notes
    assert picker.note == "photo.png" and not picker.busy and page.stopped() == []
    assert picker.get_state()["chunk_bytes"] == CHUNK_BYTES  # what the page cuts files into


def test_several_files_arrive_one_after_the_other() -> None:
    picker, page, got, errors = _picker(multiple=True)
    files = [("a.png", _noise(1500, 1)), ("empty.png", b""), ("b.png", _noise(2 * MiB, 2))]
    page.upload(files)
    assert errors == []
    assert [(e["name"], bytes(e["content"])) for e in got[0]] == files


@pytest.mark.parametrize(
    ("received", "total", "text"),
    [
        (6_500_000, 18_874_368, "6.2 of 18.0 MB"),
        (2048, 700 * 1024, "2 of 700 KB"),
        (1000, 4000, "1,000 of 4,000 bytes"),
        (12, 512, "12 of 512 bytes"),
    ],
)
def test_progress_is_told_in_the_unit_of_the_total(received: int, total: int, text: str) -> None:
    assert progress_text(received, total) == text


# --- the limit, from the size and as pieces arrive -----------------------------------------------


def test_a_file_over_the_limit_is_refused_from_its_size_and_never_read() -> None:
    picker, page, got, errors = _picker(max_bytes=50 * MiB, too_large_hint="Scale it down.")
    upload_id = page.start([("huge.jpg", 60 * MiB)])
    assert errors == ["huge.jpg is 60.0 MB; the largest file accepted is 50.0 MB. Scale it down."]
    assert picker.note == "not used: huge.jpg" and picker.refused == ["huge.jpg"] and not picker.busy
    page.chunk(upload_id, 0, 0, b"x" * 1000)  # a page that sends it anyway: nothing is kept
    page.end(upload_id)
    assert got == [] and len(errors) == 1


def test_a_file_over_the_limit_among_others_is_left_out_and_the_rest_arrive() -> None:
    picker, page, got, errors = _picker(max_bytes=4000, multiple=True)
    page.upload([("small.png", _noise(3000)), ("big.png", _noise(5000)), ("other.png", _noise(10))])
    assert [entry["name"] for entry in got[0]] == ["small.png", "other.png"]
    assert picker.refused == ["big.png"] and len(errors) == 1 and "big.png is 5 KB" in errors[0]


def test_a_page_that_sends_a_piece_of_a_file_over_the_limit_is_stopped() -> None:
    picker, page, got, errors = _picker(max_bytes=4000, multiple=True)
    upload_id = page.start([("small.png", 100), ("big.png", 5000)])
    page.chunk(upload_id, 0, 0, _noise(100))
    page.chunk(upload_id, 1, 0, _noise(1000))
    page.end(upload_id)
    assert got == [] and page.stopped() == [upload_id]
    assert "a piece of big.png came although it is over the limit" in errors[-1]


def test_a_file_that_sends_more_than_it_said_is_stopped_at_the_first_extra_byte() -> None:
    picker, page, got, errors = _picker(max_bytes=50 * MiB)
    upload_id = page.start([("photo.png", 1500)])
    page.chunk(upload_id, 0, 0, _noise(1000))
    page.chunk(upload_id, 0, 1000, _noise(1000))
    assert page.stopped() == [upload_id] and got == []
    assert errors == [
        "The upload of photo.png was stopped at 1,000 of 1,500 bytes: photo.png sent more than the 1 KB "
        "it said it has. Nothing was changed; choose the file again."
    ]
    assert picker.note == "not used: photo.png" and not picker.busy


# --- pieces out of order, twice, too large, or otherwise wrong ----------------------------------


def _half_sent(**kwargs: Any) -> tuple[FilePicker, PageSide, list[Any], list[str], str, bytes]:
    picker, page, got, errors = _picker(**kwargs)
    data = _noise(4000)
    upload_id = page.start([("photo.png", len(data))])
    page.chunk(upload_id, 0, 0, data[:1000])
    return picker, page, got, errors, upload_id, data


@pytest.mark.parametrize(
    ("content", "buffers", "words"),
    [
        ({"file": 0, "offset": 2000}, [b"y" * 1000], "came out of order (at byte 2,000, not 1,000)"),
        ({"file": 0, "offset": 0}, [b"y" * 1000], "came twice (at byte 0)"),
        ({"file": 0, "offset": 1000}, [b"y" * (CHUNK_BYTES + 1)], "over the 1008 KB one message may carry"),
        ({"file": 0, "offset": 1000}, [b""], "an empty piece of photo.png"),
        ({"file": 0, "offset": 1000}, [], "with 0 buffers instead of one"),
        ({"file": 0, "offset": 1000}, [b"a", b"b"], "with 2 buffers instead of one"),
        ({"file": 0, "offset": 1000}, [12345], "was not bytes"),
        ({"file": 3, "offset": 1000}, [b"y"], "without its file and place in it"),
        ({"file": "0", "offset": 1000}, [b"y"], "without its file and place in it"),
        ({"file": 0, "offset": True}, [b"y"], "without its file and place in it"),
        ({"file": 0}, [b"y"], "without its file and place in it"),
    ],
)
def test_a_wrong_piece_stops_the_upload_and_says_why(
    content: dict[str, Any], buffers: list[Any], words: str
) -> None:
    picker, page, got, errors, upload_id, data = _half_sent()
    page.message({"event": "upload-chunk", "id": upload_id, **content}, buffers)
    assert page.stopped() == [upload_id] and not picker.busy
    assert len(errors) == 1 and words in errors[0] and "stopped at 1,000 of 4,000 bytes" in errors[0]
    page.chunk(upload_id, 0, 1000, data[1000:])  # what was still on its way is dropped
    page.end(upload_id)
    assert got == [] and len(errors) == 1 and picker.note == "not used: photo.png"


def test_pieces_of_a_later_file_before_the_first_is_complete_are_refused() -> None:
    picker, page, got, errors = _picker(multiple=True)
    upload_id = page.start([("a.png", 2000), ("b.png", 2000)])
    page.chunk(upload_id, 0, 0, _noise(1000))
    page.chunk(upload_id, 1, 0, _noise(1000))
    assert page.stopped() == [upload_id] and got == []
    assert "a piece of b.png came before the files ahead of it were complete" in errors[0]


def test_an_upload_that_ends_short_hands_nothing_on() -> None:
    picker, page, got, errors, upload_id, _data = _half_sent()
    page.end(upload_id)
    assert got == [] and page.stopped() == [upload_id]
    assert "it ended with 1000 bytes of photo.png's 4 KB" in errors[0]


def test_an_upload_the_page_gives_up_hands_nothing_on() -> None:
    picker, page, got, errors, upload_id, _data = _half_sent()
    page.message({"event": "upload-cancel", "id": upload_id, "reason": "the browser could not read the file"})
    assert got == [] and page.stopped() == []  # the page knows already
    assert "stopped at 1,000 of 4,000 bytes: the browser could not read the file" in errors[0]
    assert picker.note == "not used: photo.png" and not picker.busy


def test_a_new_upload_replaces_the_one_in_flight() -> None:
    picker, page, got, errors, first, data = _half_sent()
    other = _noise(3000, seed=5)
    second = page.start([("other.png", len(other))])
    page.chunk(first, 0, 1000, data[1000:])  # still on its way: ignored
    page.end(first)
    assert got == [] and errors == [] and picker.busy
    page.chunk(second, 0, 0, other)
    page.end(second)
    assert [(e["name"], bytes(e["content"])) for e in got[0]] == [("other.png", other)]
    assert errors == [] and page.stopped() == []


@pytest.mark.parametrize(
    ("files", "buffers", "words"),
    [
        ([], [], "it named no files"),
        ("photo.png", [], "it named no files"),
        (
            [{"name": "a.png", "size": 1}, {"name": "b.png", "size": 1}],
            [],
            "it named 2 files; this button takes 1 at a time",
        ),
        (["photo.png"], [], "a file was described by something other than its name and size"),
        ([{"name": "photo.png"}], [], "photo.png came without its size"),
        ([{"name": "photo.png", "size": -5}], [], "photo.png came without its size"),
        ([{"name": "photo.png", "size": 1.5}], [], "photo.png came without its size"),
        ([{"name": "photo.png", "size": True}], [], "photo.png came without its size"),
        ([{"name": "photo.png", "size": 3}], [b"abc"], "its first message carried file bytes"),
    ],
)
def test_a_wrong_start_is_refused_and_says_why(files: Any, buffers: list[Any], words: str) -> None:
    picker, page, got, errors = _picker(max_bytes=50 * MiB)
    page.message({"event": "upload-start", "id": "u1", "files": files}, buffers)
    assert page.stopped() == ["u1"] and got == [] and not picker.busy
    assert errors == [f"The upload was refused: {words}. Choose the files again."]
    assert picker.note == "upload refused"


def test_names_are_cut_and_a_missing_name_is_upload() -> None:
    picker, page, got, _errors = _picker()
    page.message(
        {"event": "upload-start", "id": "u1", "files": [{"name": "x" * 1000, "type": "image/png", "size": 2}]}
    )
    page.chunk("u1", 0, 0, b"ab")
    page.end("u1")
    page.message({"event": "upload-start", "id": "u2", "files": [{"name": None, "type": 7, "size": 1}]})
    page.chunk("u2", 0, 0, b"a")
    page.end("u2")
    assert [(e["name"], e["type"]) for batch in got for e in batch] == [
        ("x" * 255, "image/png"),
        ("upload", ""),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "upload-start",
        None,
        {"event": "files", "files": [{"name": "a.png"}]},  # one message with every file: no more
        {"event": "upload-end"},
        {"event": "upload-end", "id": "../../etc"},
        {"event": "upload-end", "id": "x" * 65},
        {"event": "upload-chunk", "id": 7, "file": 0, "offset": 1000},
    ],
)
def test_messages_that_are_not_part_of_an_upload_change_nothing(content: Any) -> None:
    picker, page, got, errors, upload_id, data = _half_sent()
    page.message(content, [b"z" * 10])
    page.chunk(upload_id, 0, 1000, data[1000:])
    page.end(upload_id)
    assert errors == [] and [bytes(e["content"]) for e in got[0]] == [data]


# --- the Edit tab: a picture in pieces, and nothing lost on a failure ---------------------------


def _edit_tab(max_file_bytes: int = 50 * MiB) -> tuple[EditTab, PageSide]:
    tab = EditTab(RecordingPreviewEngine(), JobRunner(), ResultGrid(), max_file_bytes=max_file_bytes)
    tab.use_image(picture(120, 80))
    drag(tab.painter, [(10, 10), (60, 10)])
    assert tab.painter.painted_fraction > 0
    return tab, PageSide(tab.upload.upload)


def _unchanged(tab: EditTab, image: np.ndarray, mask: np.ndarray) -> bool:
    return np.array_equal(np.asarray(tab.painter.image), image) and np.array_equal(tab.painter.mask, mask)


def test_the_edit_tab_shows_a_picture_that_came_in_pieces() -> None:
    tab, page = _edit_tab()
    data = png_bytes(picture(1200, 900))
    assert len(data) > 2 * CHUNK_BYTES
    page.upload([("garden.png", data)])
    assert tab.painter.image.size == (1200, 900) and tab.painter.painted_fraction == 0
    assert "Loaded garden.png" in tab.status.value and tab.upload.upload.note == "garden.png"
    assert "1200×900" in tab.summary.value


def test_a_picture_over_the_limit_is_refused_with_the_limit_and_the_painting_stays() -> None:
    tab, page = _edit_tab()
    image, mask = np.asarray(tab.painter.image), tab.painter.mask
    page.start([("phone.jpg", 60 * MiB)])
    problem = tab.upload.problem.value  # beside the upload button
    assert "phone.jpg is 60.0 MB; the largest file accepted is 50.0 MB" in problem
    assert "Scale it down or save it as JPEG or WebP" in problem
    assert tab.upload.upload.note == "not used: phone.jpg"
    assert _unchanged(tab, image, mask)


def test_an_upload_that_breaks_off_leaves_the_picture_and_the_painting() -> None:
    tab, page = _edit_tab()
    image, mask = np.asarray(tab.painter.image), tab.painter.mask
    data = png_bytes(picture(1200, 900))
    upload_id = page.start([("garden.png", len(data))])
    page.chunk(upload_id, 0, 0, data[:CHUNK_BYTES])
    page.chunk(upload_id, 0, 0, data[:CHUNK_BYTES])  # twice
    assert "came twice" in tab.upload.problem.value and "Nothing was changed" in tab.upload.problem.value
    assert _unchanged(tab, image, mask)
    page.end(upload_id)
    assert _unchanged(tab, image, mask)


def test_references_over_the_limit_are_named_next_to_those_taken() -> None:
    tab, _page = _edit_tab(max_file_bytes=20_000)
    tab.params.model = tab.offered[0]
    page = PageSide(tab.reference_upload.upload)
    page.upload([("ref.png", png_bytes(picture(30, 30, seed=2))), ("big.png", _noise(30_000))])
    assert tab.reference_upload.upload.note == "ref.png; not used: big.png"
    assert [ref.name for ref in tab.references] == ["ref.png"]
    assert "big.png is 29 KB; the largest file accepted is 20 KB" in tab.status.value
