"""The gallery: files with embedded metadata, a SQLite index, crash and restart safety, search, export."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipyimagegen import gallery_index
from ipyimagegen.api.types import GeneratedImage, GenerateRequest, ImagesResponse
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.gallery import Gallery, GalleryItem, embed_metadata, read_metadata

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def engine() -> PreviewEngine:
    return PreviewEngine()


@pytest.fixture
def gallery(tmp_path: Path) -> Gallery:
    with Gallery(tmp_path / "gallery") as opened:
        yield opened


def noise_png(side: int = 64, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def image(
    prompt: str, *, model: str = "dall-e-2", seed: int = 0, revised: str | None = None
) -> GeneratedImage:
    request = GenerateRequest(prompt=prompt, model=model, size="256x256", quality=None)
    return GeneratedImage(
        data=noise_png(seed=seed),
        seed=seed,
        revised_prompt=revised,
        request=request,
        metadata={"backend": "test"},
    )


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk of a PNG."""
    out, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        out.append((data[position + 4 : position + 8], data[position + 8 : position + 8 + length]))
        position += 12 + length
    return out


def decodes(path: Path) -> bool:
    with Image.open(path) as opened:
        opened.load()
    return True


# --- metadata in the files -----------------------------------------------------------------------


def test_png_keeps_its_image_data_and_carries_the_metadata_in_text_chunks(
    gallery: Gallery, engine: PreviewEngine
) -> None:
    response = engine.generate(
        prompt="a red fox in the snow, naïve style", model="dall-e-3", size="1024x1024"
    )
    original = response[0]
    item = gallery.save_response(response)[0]

    saved = item.path.read_bytes()
    added = [c for c in chunks(saved) if c not in chunks(original.data)]
    assert [c for c in chunks(saved) if c not in added] == chunks(original.data)  # nothing else changed
    assert {kind for kind, _ in added} == {b"iTXt"}
    with Image.open(item.path) as png:
        text = dict(png.text)
        assert np.array_equal(np.asarray(png), np.asarray(original.to_pil()))
    assert text["prompt"] == "a red fox in the snow, naïve style"
    assert text["Software"] == "ipyimagegen offline preview engine"  # the engine's own entry is kept
    document = json.loads(text["ipyimagegen"])
    assert document == read_metadata(item.path) == read_metadata(saved)
    assert document["id"] == item.id and item.path.name == f"{item.id}.png"
    assert document["prompt"] == "a red fox in the snow, naïve style"
    assert document["revised_prompt"] == original.revised_prompt and original.revised_prompt
    assert document["model"] == "dall-e-3"
    assert document["size"] == "1024x1024"
    assert document["endpoint"] == "generations"
    assert document["seed"] == original.seed
    assert document["backend"] == engine.name
    assert document["options"] == {"model": "dall-e-3", "n": 1, "size": "1024x1024"}
    assert datetime.fromisoformat(document["created"]).tzinfo is not None


def test_a_png_without_a_software_entry_gets_one(gallery: Gallery) -> None:
    item = gallery.save(image("a plain square"))
    with Image.open(item.path) as png:
        assert png.text["Software"].startswith("ipyimagegen")


def test_saving_a_gallery_png_again_replaces_its_metadata_instead_of_adding_more(gallery: Gallery) -> None:
    first = gallery.save(image("first prompt"))
    again = GeneratedImage(data=first.data, request=GenerateRequest(prompt="second prompt", model="dall-e-2"))
    second = gallery.save(again)
    keywords = [data.split(b"\x00")[0] for kind, data in chunks(second.data) if kind in (b"tEXt", b"iTXt")]
    assert sorted(keywords) == [b"Software", b"ipyimagegen", b"prompt"]
    assert read_metadata(second.path)["prompt"] == "second prompt"


@pytest.mark.parametrize(("output_format", "extension"), [("jpeg", "jpg"), ("webp", "webp")])
def test_jpeg_and_webp_are_stored_untouched_with_a_json_sidecar(
    gallery: Gallery, engine: PreviewEngine, output_format: str, extension: str
) -> None:
    response = engine.generate(prompt="a harbour at dawn", model="gpt-image-1", output_format=output_format)
    item = gallery.save_response(response)[0]
    assert item.path.suffix == f".{extension}"
    assert item.path.read_bytes() == response[0].data
    sidecar = item.path.with_suffix(".json")
    assert json.loads(sidecar.read_text("utf-8"))["prompt"] == "a harbour at dawn"
    assert read_metadata(item.path)["options"]["output_format"] == output_format
    assert item.mime_type == f"image/{output_format}"
    with Gallery(gallery.root) as reopened:
        assert reopened.get(item.id).prompt == "a harbour at dawn"


def test_read_metadata_of_other_images_is_empty(tmp_path: Path) -> None:
    assert read_metadata(noise_png()) == {}
    assert read_metadata(b"GIF89a not a png") == {}
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (8, 8)).save(photo)
    assert read_metadata(photo) == {}


def test_something_that_is_not_an_image_is_refused(gallery: Gallery) -> None:
    with pytest.raises(ValueError, match="not a PNG, JPEG or WebP"):
        gallery.save(GeneratedImage(data=b"<html>an error page</html>"))
    assert len(gallery) == 0


# --- edits, variations, inputs and lineage -------------------------------------------------------


def test_edits_and_variations_store_their_inputs_and_can_be_made_again(
    gallery: Gallery, engine: PreviewEngine
) -> None:
    original = gallery.save_response(
        engine.generate(prompt="a quiet lake", model="dall-e-2", size="256x256")
    )[0]
    mask = np.zeros((256, 256), dtype=bool)
    mask[:100] = True
    edit_response = engine.edit(
        image=original.data, mask=mask, prompt="a red balloon in the sky", model="dall-e-2"
    )
    edited = gallery.save_response(edit_response, parent_id=original.id)[0]
    variation_response = engine.create_variation(image=edited.data, model="dall-e-2", size="256x256")
    varied = gallery.save_response(variation_response, parent_id=edited.id)[0]

    assert edited.endpoint == "edits" and varied.endpoint == "variations"
    assert edited.parent_id == original.id and varied.parent_id == edited.id
    request = edit_response.request
    assert gallery.input_data(edited.input_ids[0]) == request.images[0].data
    assert gallery.input_data(edited.mask_id) == request.mask.data
    assert (gallery.root / "masks" / f"{edited.mask_id}.png").exists()
    assert gallery.input_data(varied.input_ids[0]) == variation_response.request.image.data

    for item, response in ((edited, edit_response), (varied, variation_response)):
        again = engine.run(item.to_request())
        assert again[0].data == response[0].data  # the same request, inputs and seed: the same picture


def test_to_request_rebuilds_the_generate_request_for_this_image(
    gallery: Gallery, engine: PreviewEngine
) -> None:
    response = engine.generate(
        prompt="three pears", model="gpt-image-1", n=3, quality="low", size="1024x1024"
    )
    item = gallery.save_response(response)[2]
    request = item.to_request()
    assert isinstance(request, GenerateRequest)
    assert (request.prompt, request.model, request.quality, request.size) == (
        "three pears",
        "gpt-image-1",
        "low",
        "1024x1024",
    )
    assert request.n == 1 and request.seed == response[2].seed
    assert engine.run(request)[0].data == response[2].data


def test_inputs_are_stored_once_by_content(gallery: Gallery) -> None:
    data = noise_png(seed=5)
    first = gallery.save_input(data)
    assert gallery.save_input(data) == first
    assert len(list((gallery.root / "inputs").iterdir())) == 1
    mask_id = gallery.save_input(noise_png(seed=6), kind="mask")
    assert (gallery.root / "masks" / f"{mask_id}.png").exists()
    item = gallery.save(image("with inputs"), inputs=[first, noise_png(seed=7)])
    assert item.input_ids[0] == first and len(item.input_ids) == 2
    with pytest.raises(ValueError, match="kind"):
        gallery.save_input(data, kind="other")
    with pytest.raises(KeyError):
        gallery.save(image("unknown input"), inputs=["0" * 64])


def test_lineage_is_the_chain_of_parents_oldest_first(gallery: Gallery) -> None:
    root = gallery.save(image("root"))
    child = gallery.save(image("child"), parent_id=root.id)
    grandchild = gallery.save(image("grandchild"), parent_id=child.id)
    assert [item.id for item in gallery.lineage(grandchild.id)] == [root.id, child.id, grandchild.id]
    assert [item.id for item in gallery.lineage(root.id)] == [root.id]
    gallery.delete(child.id)
    assert [item.id for item in gallery.lineage(grandchild.id)] == [grandchild.id]


# --- listing and search --------------------------------------------------------------------------


@pytest.fixture
def filled(gallery: Gallery) -> Gallery:
    gallery.save(image("a red fox in the snow", model="dall-e-2", seed=1))
    gallery.save(image("a blue whale", model="dall-e-3", seed=2, revised="a blue whale under a crimson sky"))
    gallery.save(image("red sunset over the sea", model="gpt-image-1", seed=3))
    gallery.save(image("100% pure_cotton shirt", model="dall-e-2", seed=4))
    return gallery


@pytest.mark.parametrize("full_text", [True, False], ids=["fts5", "like"])
def test_search_filters_and_pages(filled: Gallery, full_text: bool) -> None:
    assert filled.index.full_text  # this SQLite has FTS5; the LIKE fallback is checked by switching it off
    filled.index.full_text = full_text

    def prompts(**filters: object) -> list[str]:
        return [item.prompt for item in filled.items(**filters)]

    assert prompts() == [
        "100% pure_cotton shirt",
        "red sunset over the sea",
        "a blue whale",
        "a red fox in the snow",
    ]
    assert prompts(text="red") == ["red sunset over the sea", "a red fox in the snow"]
    assert prompts(text="FOX red") == ["a red fox in the snow"]
    assert prompts(text="whal") == ["a blue whale"]
    assert prompts(text="crimson") == ["a blue whale"]  # the revised prompt is searched too
    assert prompts(text="cotton") == ["100% pure_cotton shirt"]
    assert prompts(text="100%") == ["100% pure_cotton shirt"]
    assert prompts(text="giraffe") == []
    assert prompts(model="dall-e-2") == ["100% pure_cotton shirt", "a red fox in the snow"]
    assert prompts(text="red", model="gpt-image-1") == ["red sunset over the sea"]
    assert filled.count(text="red") == 2 and filled.count() == len(filled) == 4
    assert prompts(offset=1, limit=2) == ["red sunset over the sea", "a blue whale"]
    assert filled.models() == ["dall-e-2", "dall-e-3", "gpt-image-1"]


def test_time_and_endpoint_filters(filled: Gallery) -> None:
    newest = filled.items(limit=1)[0]
    assert filled.count(since=newest.created) == 1
    assert filled.count(until=newest.created) == 3
    assert filled.count(since=datetime.now(timezone.utc) + timedelta(hours=1)) == 0
    assert filled.count(since="2000-01-01") == 4
    assert filled.count(since=time.time() - 3600, until=time.time() + 3600) == 4
    assert filled.count(endpoint="generations") == 4 and filled.count(endpoint="edits") == 0


def test_get_contains_and_unknown_ids(filled: Gallery) -> None:
    item = filled.items(limit=1)[0]
    assert filled.get(item.id) == item and item.id in filled
    assert "nope" not in filled
    with pytest.raises(KeyError, match="No image 'nope'"):
        filled.get("nope")


# --- delete, thumbnails, export ------------------------------------------------------------------


def test_delete_removes_the_file_the_row_and_the_thumbnails(gallery: Gallery) -> None:
    keep = gallery.save(image("keep"))
    gone = gallery.save(image("gone"))
    gallery.thumbnail(gone.id)
    gallery.delete(gone.id)
    assert not gone.path.exists() and gone.id not in gallery
    assert list(gallery.thumbnails_dir.iterdir()) == []
    with pytest.raises(KeyError):
        gallery.thumbnail(gone.id)
    assert [item.id for item in gallery.items()] == [keep.id]
    assert gallery.count(text="gone") == 0
    with pytest.raises(KeyError):
        gallery.delete(gone.id)


def test_thumbnails_are_made_once_and_kept_on_disk(
    gallery: Gallery, engine: PreviewEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = gallery.save_response(engine.generate(prompt="a tall tower", model="dall-e-3", size="1024x1792"))[
        0
    ]
    data, mime = gallery.thumbnail(item.id, max_side=128)
    assert mime == "image/jpeg"
    with Image.open(io.BytesIO(data)) as small:
        assert max(small.size) == 128 and small.size[1] > small.size[0]
    cached = list(gallery.thumbnails_dir.iterdir())
    assert [path.name for path in cached] == [f"{item.id}-128.jpg"]

    def no_decoding(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the full image was read again")

    monkeypatch.setattr("ipyimagegen.imaging.thumbnail", no_decoding)
    assert gallery.thumbnail(item.id, max_side=128) == (data, mime)
    with Gallery(gallery.root) as reopened:
        assert reopened.thumbnail(item.id, max_side=128) == (data, mime)


def test_export_writes_images_inputs_and_manifests(
    gallery: Gallery, engine: PreviewEngine, tmp_path: Path
) -> None:
    first = gallery.save(image("first, with a comma", seed=1))
    edited = gallery.save_response(
        engine.edit(image=first.data, prompt="add a moon", model="gpt-image-1", size="1024x1024"),
        parent_id=first.id,
    )[0]
    gallery.save(image("not exported", seed=3))
    target = gallery.export([first.id, edited.id], tmp_path / "out" / "export.zip")
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        assert names == {
            f"images/{first.path.name}",
            f"images/{edited.path.name}",
            f"inputs/{edited.input_ids[0]}.png",
            "manifest.json",
            "manifest.csv",
        }
        assert archive.read(f"images/{first.path.name}") == first.data
        manifest = json.loads(archive.read("manifest.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8"))))
    assert [entry["id"] for entry in manifest["items"]] == [first.id, edited.id]
    assert manifest["items"][1]["parent_id"] == first.id
    assert manifest["items"][1]["input_ids"] == edited.input_ids
    assert [row["prompt"] for row in rows] == ["first, with a comma", "add a moon"]
    assert json.loads(rows[1]["options"])["model"] == "gpt-image-1"
    assert rows[0]["file"] == f"images/{first.path.name}"
    everything = gallery.export(None, tmp_path / "all.zip")
    with zipfile.ZipFile(everything) as archive:
        assert len(json.loads(archive.read("manifest.json"))["items"]) == 3
    assert not [p for p in tmp_path.rglob("*.tmp")]


# --- threads, processes, crashes -----------------------------------------------------------------


def test_saves_from_many_threads(gallery: Gallery) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for index in range(5):
                gallery.save(image(f"worker {worker} image {index}", seed=worker * 10 + index))
                gallery.items(limit=3)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(gallery) == 20 and len({item.id for item in gallery.items(limit=None)}) == 20


def run_python(code: str, *args: str) -> str:
    environment = {**os.environ, "PYTHONPATH": SRC}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_everything_saved_is_found_again_by_a_new_process(gallery: Gallery, engine: PreviewEngine) -> None:
    made = gallery.save_response(
        engine.generate(prompt="a lighthouse", model="dall-e-2", size="256x256", n=2)
    )
    edited = gallery.save_response(
        engine.edit(image=made[0].data, prompt="a storm", model="gpt-image-1", size="1024x1024"),
        parent_id=made[0].id,
    )[0]
    gallery.close()
    listing = run_python(
        """
        import json, sys
        from ipyimagegen.gallery import Gallery, read_metadata
        with Gallery(sys.argv[1]) as gallery:
            out = []
            for item in gallery.items(limit=None):
                out.append({**item.to_dict(), "embedded": read_metadata(item.path),
                            "lineage": [i.id for i in gallery.lineage(item.id)],
                            "input": [len(gallery.input_data(i)) for i in item.input_ids]})
        print(json.dumps(out))
        """,
        str(gallery.root),
    )
    found = {entry["id"]: entry for entry in json.loads(listing)}
    assert set(found) == {made[0].id, made[1].id, edited.id}
    for item in [*made, edited]:
        entry = found[item.id]
        assert entry["embedded"]["id"] == item.id
        expected = item.to_dict()
        assert {key: entry[key] for key in expected} == expected
    assert found[edited.id]["lineage"] == [made[0].id, edited.id]
    assert found[edited.id]["input"][0] > 0


def test_a_process_killed_mid_batch_leaves_only_whole_indexed_images(tmp_path: Path) -> None:
    root = tmp_path / "gallery"
    environment = {**os.environ, "PYTHONPATH": SRC}
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import io, sys
                import numpy as np
                from PIL import Image
                from ipyimagegen.api.types import GeneratedImage, GenerateRequest
                from ipyimagegen.gallery import Gallery
                gallery = Gallery(sys.argv[1])
                pixels = np.random.default_rng(0).integers(0, 256, (768, 768, 3), dtype=np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(pixels).save(buffer, "PNG", compress_level=0)  # large: writing takes time
                for index in range(100000):
                    request = GenerateRequest(prompt=f"image {index}", model="dall-e-2")
                    item = gallery.save(GeneratedImage(data=buffer.getvalue(), request=request))
                    print(item.id, flush=True)
                """
            ),
            str(root),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert writer.stdout is not None
    finished = [writer.stdout.readline().strip() for _ in range(8)]
    writer.kill()  # SIGKILL on POSIX: no cleanup, in the middle of whatever save comes next
    writer.wait(timeout=30)
    finished += [line.strip() for line in writer.stdout if line.strip()]
    writer.stdout.close()

    with Gallery(root) as reopened:
        assert reopened.wait_tidy(timeout=30)
        indexed = reopened.items(limit=None)
        ids = {item.id for item in indexed}
        assert set(finished) <= ids
        for item in indexed:
            assert item.path.exists() and decodes(item.path)
            assert read_metadata(item.path)["id"] == item.id
            assert item.prompt.startswith("image ")
        whole_files = {p.stem for p in reopened.images_dir.iterdir() if p.suffix == ".png"}
        assert whole_files == ids  # no file without a row, no row without a file


def test_after_opening_stray_images_are_indexed_missing_ones_dropped_and_old_temporary_files_removed(
    gallery: Gallery,
) -> None:
    kept = gallery.save(image("kept"))
    lost = gallery.save(image("lost"))
    gallery.close()
    lost.path.unlink()  # removed by hand
    stray_document = {"id": "20240101-000000-0badf00d", "created": "2024-01-01T00:00:00.000000+00:00"}
    stray_document.update(prompt="written, but not indexed before a crash", model="dall-e-2")
    stray = gallery.images_dir / "20240101-000000-0badf00d.png"
    stray.write_bytes(embed_metadata(noise_png(seed=9), stray_document))
    old_temporary = gallery.images_dir / ".20240101-000000-00000000.png.1234abcd.tmp"
    old_temporary.write_bytes(noise_png()[:100])
    an_hour_ago = time.time() - 3600
    os.utime(old_temporary, (an_hour_ago, an_hour_ago))
    fresh_temporary = gallery.images_dir / ".20240101-000000-11111111.png.5678abcd.tmp"
    fresh_temporary.write_bytes(noise_png()[:100])  # perhaps another process's save in progress
    dropped = gallery.images_dir / "holiday.png"  # put there by hand: no metadata at all
    dropped.write_bytes(noise_png(seed=10))
    orphan_sidecar = gallery.images_dir / "20240101-000000-22222222.json"  # its image was never written
    orphan_sidecar.write_text("{}")
    os.utime(orphan_sidecar, (an_hour_ago, an_hour_ago))

    with Gallery(gallery.root) as reopened:
        assert reopened.wait_tidy(timeout=30)
        assert {item.id for item in reopened.items()} == {kept.id, stray.stem, "holiday"}
        assert reopened.get("holiday").prompt == "" and reopened.get("holiday").size == "64x64"
        assert reopened.get(stray.stem).prompt == "written, but not indexed before a crash"
        assert reopened.count(text="crash") == 1
        assert not old_temporary.exists() and not orphan_sidecar.exists()
        assert fresh_temporary.exists()


# --- where galleries live ------------------------------------------------------------------------


def test_default_location_is_next_to_the_notebook_or_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IPYIMAGEGEN_GALLERY", raising=False)
    monkeypatch.chdir(tmp_path)
    with Gallery() as here:
        assert here.root == tmp_path.resolve() / "ipyimagegen-gallery"
    monkeypatch.setenv("IPYIMAGEGEN_GALLERY", str(tmp_path / "elsewhere"))
    with Gallery() as configured:
        assert configured.root == (tmp_path / "elsewhere").resolve()
        assert (configured.root / "index.sqlite").exists()


def test_a_closed_gallery_says_how_to_reopen(gallery: Gallery) -> None:
    gallery.close()
    with pytest.raises(RuntimeError, match="open it again"):
        gallery.items()
    assert "closed" in repr(gallery)


def test_an_index_from_a_newer_version_is_not_touched(gallery: Gallery) -> None:
    gallery.index.db.execute(f"PRAGMA user_version={gallery_index.SCHEMA_VERSION + 1}")
    gallery.close()
    with pytest.raises(RuntimeError, match="upgrade ipyimagegen"):
        Gallery(gallery.root)


def test_items_are_frozen_records_with_bytes_on_demand(gallery: Gallery) -> None:
    item = gallery.save(image("bytes on demand", seed=4))
    assert isinstance(item, GalleryItem)
    assert item.data == item.path.read_bytes()
    assert "data" not in repr(item) and "bytes on demand" in repr(item)
    with pytest.raises(AttributeError):
        item.prompt = "changed"  # type: ignore[misc]
    response = ImagesResponse(data=[image("from a response", seed=8)], backend="remote", request_id="req_123")
    saved = gallery.save_response(response)[0]
    assert (saved.backend, saved.request_id) == ("remote", "req_123")


def test_a_handed_over_gallery_cannot_reach_files_outside_its_images(
    tmp_path: Path, engine: PreviewEngine
) -> None:
    folder = tmp_path / "handed-over"
    made = Gallery(folder)
    good = made.save(engine.generate(prompt="a kept picture", model="dall-e-2", size="256x256")[0])
    outside = made.save(engine.generate(prompt="points outside", model="dall-e-2", size="256x256")[0])
    absolute = made.save(engine.generate(prompt="an absolute path", model="dall-e-2", size="256x256")[0])
    linked = made.save(engine.generate(prompt="a link out", model="dall-e-2", size="256x256")[0])
    made.close()
    notes = tmp_path / "notes.txt"
    notes.write_text("private")
    link = folder / "images" / "link.png"
    link.symlink_to(notes)
    import sqlite3

    with sqlite3.connect(folder / "index.sqlite") as db:
        db.execute("UPDATE images SET file = ? WHERE id = ?", ("../notes.txt", outside.id))
        db.execute("UPDATE images SET file = ? WHERE id = ?", (str(notes), absolute.id))
        db.execute("UPDATE images SET file = ? WHERE id = ?", ("images/link.png", linked.id))

    opened = Gallery(folder)
    assert [item.id for item in opened.items()] == [good.id]  # the three others are skipped
    for bad in (outside.id, absolute.id, linked.id):
        with pytest.raises(KeyError, match="outside its images folder"):
            opened.get(bad)
        with pytest.raises(KeyError):
            opened.delete(bad)
    exported = opened.export(None, tmp_path / "all.zip")
    with zipfile.ZipFile(exported) as archive:
        assert not any("notes" in name or "link" in name for name in archive.namelist())
        assert all(b"private" not in archive.read(name) for name in archive.namelist())
    assert notes.read_text() == "private"  # never read into an item, exported or deleted
    opened.close()


def test_opening_never_fails_while_other_processes_save_and_delete(tmp_path: Path) -> None:
    root = tmp_path / "gallery"
    Gallery(root).close()
    environment = {**os.environ, "PYTHONPATH": SRC}
    writer_code = textwrap.dedent(
        """
        import sys, time
        from ipyimagegen.api.types import GeneratedImage, GenerateRequest
        from ipyimagegen.engines.preview import PreviewEngine
        from ipyimagegen.gallery import Gallery
        gallery = Gallery(sys.argv[1])
        data = PreviewEngine().generate(prompt="tiny", model="dall-e-2", size="256x256").data[0].data
        print("ready", flush=True)
        end = time.monotonic() + float(sys.argv[2])
        index = 0
        while time.monotonic() < end:
            item = gallery.save(GeneratedImage(data=data, request=GenerateRequest(prompt=f"{index}", model="dall-e-2")))
            gallery.thumbnail(item.id, 64)
            if index % 2:
                gallery.delete(item.id)  # files removed while another process lists the folder
            index += 1
        """
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", writer_code, str(root), "4"],
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for _ in range(2)
    ]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    failures: list[BaseException] = []
    opens = 0
    try:
        while any(writer.poll() is None for writer in writers):
            try:
                opened = Gallery(root)
                assert opened.wait_tidy(timeout=30)  # the pass that lists the folder, run to its end
                if opened.tidy_error is not None:
                    failures.append(opened.tidy_error)
                opened.close()
            except Exception as exc:
                failures.append(exc)
            opens += 1
    finally:
        for writer in writers:
            writer.kill()
            writer.wait(timeout=30)
            assert writer.stdout is not None
            writer.stdout.close()
    assert opens > 20
    assert failures == []


def test_the_index_lists_searches_and_totals_without_the_files(tmp_path: Path) -> None:
    index = gallery_index.GalleryIndex(tmp_path / "index.sqlite")
    for number, (prompt, model, usd) in enumerate(
        [("a red fox", "dall-e-2", 0.02), ("a blue whale", "gpt-image-1", 0.5)]
    ):
        document = {"id": f"id{number}", "created": f"2026-01-0{number + 1}T00:00:00.000000+00:00",
                    "prompt": prompt, "model": model, "details": {"cost": {"usd": usd, "billed": True}}}  # fmt: skip
        index.add(document, f"images/id{number}.png", json.dumps(document))
    red = gallery_index.Filters(text="RED")
    assert [file for _, file in index.rows(red)] == ["images/id0.png"]
    assert [file for _, file in index.rows(gallery_index.Filters())] == ["images/id1.png", "images/id0.png"]
    assert index.count(gallery_index.Filters(since="2026-01-02T00:00:00+00:00")) == 1
    assert index.total_cost(gallery_index.Filters(), None, billed=True) == pytest.approx(0.52)
    assert index.models() == ["dall-e-2", "gpt-image-1"]
    index.remove(["id0"])
    assert "id0" not in index and index.count(red) == 0
    index.close()
