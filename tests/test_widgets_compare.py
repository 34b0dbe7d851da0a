"""Compare and downloads: the sheet across the panel's width, every picture captioned, Save PDF and
Save PNG handed to the browser, one download name for a picture everywhere, and what the Save
notice says in Voila or on Binder (a download) and elsewhere (the download and where the file is).

The page's side is :class:`widget_helpers.Page`: the files the grid hands to the browser."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from ipyimagegen.api.types import GenerateRequest, ImagesResponse, VariationRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.gallery import Gallery
from ipyimagegen.media import InputImage
from ipyimagegen.session import save_to_gallery
from ipyimagegen.widgets import download
from ipyimagegen.widgets.compare import MIN_COLUMN_PX, ComparePanel
from ipyimagegen.widgets.download import download_name, saved_notice, shows_paths, slug
from ipyimagegen.widgets.history import HistoryBrowser
from ipyimagegen.widgets.result_grid import ResultGrid
from widget_helpers import Page

PROMPT = "A red lighthouse on a cliff, at dusk!"
SLUG = "a-red-lighthouse-on-a-cliff-at-dusk"
GALLERY_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")
HOSTED = ("VOILA_BASE_URL", "VOILA_SERVER_URL", "VOILA_KERNEL_ID", "BINDER_LAUNCH_HOST", "BINDER_REPO_URL")


@pytest.fixture(scope="module")
def engine() -> PreviewEngine:
    return PreviewEngine()


@pytest.fixture(autouse=True)
def _not_hosted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel outside Voila and Binder, whatever the test run's environment."""
    for name in HOSTED:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gallery(tmp_path: Path) -> Iterator[Gallery]:
    with Gallery(tmp_path / "gallery") as opened:
        yield opened


def _made(engine: PreviewEngine, gallery: Gallery | None, request: GenerateRequest | VariationRequest,
          parent_id: str | None = None) -> ImagesResponse:  # fmt: skip
    response = engine.run(request)
    save_to_gallery(gallery, response, parent_id)  # as the studio does: each image learns its gallery id
    return response


def _grid_with_a_variation(
    engine: PreviewEngine, gallery: Gallery, save_dir: Path
) -> tuple[ResultGrid, Page]:
    """Two generations of PROMPT and a variation of the first, shown newest first."""
    grid = ResultGrid(save_dir=save_dir)
    grid.gallery = gallery
    page = Page(grid.view)
    generated = _made(
        engine, gallery, GenerateRequest(prompt=PROMPT, model="gpt-image-1.5", n=2, size="1024x1024")
    )
    grid.add_response(generated)
    source = generated.data[0]
    source_id = source.metadata["gallery_id"]
    request = VariationRequest(image=InputImage.from_bytes(source.data, source_id), size="512x512")
    grid.add_response(_made(engine, gallery, request, parent_id=source_id))
    return grid, page


# -- the sheet -------------------------------------------------------------------------------------


def test_the_sheet_shares_the_panels_width_in_columns_of_at_least_320_px_with_every_picture_captioned(
    engine: PreviewEngine, gallery: Gallery, tmp_path: Path
) -> None:
    grid, _page = _grid_with_a_variation(engine, gallery, tmp_path / "saved")
    for tile in grid.tiles:
        grid.select(tile)
    panel = grid.compare()
    assert panel is not None and grid.compare_slot.children == (panel,)
    columns = panel.sheet.layout.grid_template_columns
    assert columns == f"repeat(auto-fit, minmax(min({MIN_COLUMN_PX}px, 100%), 1fr))", columns
    cells = panel.sheet.children
    assert len(cells) == 3
    for cell in cells:
        picture, caption = cell.children
        assert picture.layout.width == "100%" and "ipyimagegen-compare-image" in picture._dom_classes
        assert "ipyimagegen-compare-caption" in caption._dom_classes
        data = bytes(picture.value)
        assert max(Image.open(io.BytesIO(data)).size) <= 768  # a display copy, not the full picture
        assert data not in [image.data for image in grid.images]
    captions = [cell.children[1].value for cell in cells]
    assert "variation of “A red lighthouse on a cliff, at dusk!”" in captions[0]
    assert "dall-e-2 · 512×512" in captions[0]
    for caption in captions[1:]:
        assert "A red lighthouse on a cliff, at dusk!" in caption and "gpt-image-1.5 · 1024×1024" in caption


def test_a_variation_without_a_gallery_is_captioned_with_the_file_it_was_made_from(
    engine: PreviewEngine,
) -> None:
    generated = engine.run(GenerateRequest(prompt="a kite", model="dall-e-2", size="256x256"))
    upload = InputImage.from_bytes(generated.data[0].data, "my-kite.png")
    variation = engine.run(VariationRequest(image=upload, size="256x256"))
    panel = ComparePanel([generated.data[0], variation.data[0]])
    assert [caption.title for caption in panel.captions] == ["a kite", "variation of my-kite.png"]
    assert [caption.details for caption in panel.captions] == ["dall-e-2 · 256×256"] * 2
    panel.dispose()


def test_save_pdf_and_save_png_write_the_sheet_and_hand_it_to_the_browser(
    engine: PreviewEngine, gallery: Gallery, tmp_path: Path
) -> None:
    grid, page = _grid_with_a_variation(engine, gallery, tmp_path / "saved")
    panel = grid.compare(grid.tiles)
    assert panel is not None
    assert panel.save_button.description == "Save PDF" and panel.save_png_button.description == "Save PNG"
    panel.save_button.click()
    pdf = panel.saved_path
    panel.save_png_button.click()
    png = panel.saved_path
    assert pdf is not None and png is not None and pdf.parent == png.parent == tmp_path / "saved"
    assert pdf.read_bytes().startswith(b"%PDF") and png.read_bytes().startswith(b"\x89PNG")
    assert page.files == [
        (pdf.name, "application/pdf", pdf.read_bytes()),
        (png.name, "image/png", png.read_bytes()),
    ]
    assert re.fullmatch(rf"{GALLERY_ID.pattern}-compare-3-images\.pdf", pdf.name) and pdf.stem == png.stem
    assert f"Downloaded <code>{png.name}</code>" in panel.notice.value and str(png) in panel.notice.value
    titles = [ax.get_title() for ax in panel.figure.axes if ax.images]  # the saved sheet's captions
    assert titles[0].startswith("variation of “A red lighthouse") and titles[0].endswith("dall-e-2 · 512×512")
    assert all(title.endswith("gpt-image-1.5 · 1024×1024") for title in titles[1:])


def test_a_sheet_saved_by_itself_says_where_it_is(engine: PreviewEngine, tmp_path: Path) -> None:
    images = engine.run(GenerateRequest(prompt="two pears", model="dall-e-2", size="256x256", n=2)).data
    panel = ComparePanel(images)  # no grid to hand the file to the browser
    path = panel.save_png(tmp_path)
    assert path is not None and panel.notice.value.count("Saved to") == 1 and str(path) in panel.notice.value
    assert "Downloaded" not in panel.notice.value
    with pytest.raises(ValueError, match="pdf, png"):
        panel.save("svg")


# -- download names ------------------------------------------------------------------------------


def test_a_picture_has_one_download_name_everywhere_its_gallery_id_and_prompt(
    engine: PreviewEngine, gallery: Gallery, tmp_path: Path
) -> None:
    grid, page = _grid_with_a_variation(engine, gallery, tmp_path / "saved")
    variation, first, _second = grid.tiles
    first_id = first.details.metadata["gallery_id"] if first.details is not None else ""
    expected = f"{first_id}-{SLUG}.png"
    assert GALLERY_ID.fullmatch(first_id)

    page.click(first, "enlarge")
    assert grid.view.viewer["filename"] == expected  # the viewer's Download
    page.click(first, "save")
    assert page.files[-1][0] == expected  # the tile's Save
    assert "Downloaded" in grid.notice_html
    page.click(variation, "enlarge")  # no prompt: the name still says what it is
    variation_id = variation.details.metadata["gallery_id"] if variation.details is not None else ""
    assert grid.view.viewer["filename"] == f"{variation_id}-image.png"

    history = HistoryBrowser(gallery)
    history_page = Page(history.view)
    history_page.click(history.tile(first_id), "enlarge")
    assert history.view.viewer["filename"] == expected  # History's Download
    history.close()
    grid.close()


def test_without_a_gallery_names_are_timestamped_and_unique_across_kernels(
    engine: PreviewEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = ResultGrid(save_dir=tmp_path)
    page = Page(grid.view)
    grid.add_response(engine.run(GenerateRequest(prompt=PROMPT, model="dall-e-2", size="256x256", n=2)))
    first, second = grid.tiles
    names = [tile.file_name(tile.image) for tile in grid.tiles if tile.image is not None]
    assert all(re.fullmatch(rf"{GALLERY_ID.pattern}-{SLUG}\.png", name) for name in names), names
    assert names[0] != names[1] and first.file_name(first.image) == names[0]  # one name per picture
    grid.download_zip()
    ((zip_name, mime, data),) = page.files
    assert zip_name.endswith(".zip") and mime == "application/zip"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted(["manifest.json", *(f"images/{name}" for name in names)])

    monkeypatch.setattr(download, "_KERNEL_TAG", "another-kernel")  # the same tile id in another session
    assert second.image is not None and second.file_name(second.image) != names[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A red lighthouse!", "a-red-lighthouse"),
        ("Café crème, naïve façade", "cafe-creme-naive-facade"),
        ("赤い灯台 at night", "赤い灯台-at-night"),
        ("snake_case and   spaces / slashes\\..", "snake-case-and-spaces-slashes"),
        ("", ""),
        ("?!", ""),
        ("a " * 30, "-".join(["a"] * 20)),
        ("x" * 50, "x" * 40),
        (
            "a very long prompt about a lighthouse standing on a cliff",
            "a-very-long-prompt-about-a-lighthouse",
        ),
    ],
)
def test_slug(text: str, expected: str) -> None:
    assert slug(text) == expected and len(slug(text)) <= 40


def test_download_name_zero_pads_a_numeric_id_and_keeps_only_safe_characters() -> None:
    assert download_name("a red lighthouse", "image/png", "42") == "0042-a-red-lighthouse.png"
    assert download_name("a red lighthouse", "image/jpeg", "12345") == "12345-a-red-lighthouse.jpg"
    assert (
        download_name("", "image/svg+xml", "20261206-155706-1a2b3c4d") == "20261206-155706-1a2b3c4d-image.svg"
    )
    assert download_name("x", "image/png", "../../etc/passwd") == "etc-passwd-x.png"  # never a path
    assert download_name("sheet", "application/pdf", "7") == "0007-sheet.pdf"


# -- the Save notice -----------------------------------------------------------------------------


@pytest.mark.parametrize("hosted", [*HOSTED, None])
def test_the_save_notice_shows_the_path_only_outside_voila_and_binder(
    engine: PreviewEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hosted: str | None
) -> None:
    if hosted is not None:
        monkeypatch.setenv(hosted, "https://mybinder.org/" if hosted.startswith("BINDER") else "/voila/")
    grid = ResultGrid(save_dir=tmp_path)
    page = Page(grid.view)
    grid.add_response(engine.run(GenerateRequest(prompt=PROMPT, model="dall-e-2", size="256x256")))
    path = grid.save(grid.tiles[0])
    assert path is not None and page.files[0][0] == path.name
    assert f"Downloaded <code>{path.name}</code>" in grid.notice_html
    assert (str(path) in grid.notice_html) is (hosted is None), grid.notice_html
    assert shows_paths() is (hosted is None)


def test_a_path_in_the_notebooks_folder_is_shown_relative_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    saved = tmp_path / "saved" / "0001-a.png"
    assert "(also saved to <code>saved/0001-a.png</code>)" in saved_notice(saved, environ={})
    assert saved_notice(saved, environ={"BINDER_REPO_URL": "https://github.com/x/y"}) == (
        "Downloaded <code>0001-a.png</code>."
    )


def test_a_contact_sheet_puts_each_subtitle_under_its_caption(engine: PreviewEngine) -> None:
    from ipyimagegen.plots import contact_sheet

    images = engine.run(GenerateRequest(prompt="two pears", model="dall-e-2", size="256x256", n=2)).data
    figure = contact_sheet(images, subtitles=["dall-e-2 · 256×256", ""])
    assert [ax.get_title() for ax in figure.axes if ax.images] == [
        "two pears\ndall-e-2 · 256×256",
        "two pears",
    ]
    with pytest.raises(ValueError, match="one subtitle per image"):
        contact_sheet(images, subtitles=["one"])
