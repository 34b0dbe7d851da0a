"""SVG and GIF results from a server that is not to be trusted: a drawing built to crash, stall or
swallow the renderer's memory, or to read a local file into its picture, and a small GIF that
would decode to gigabytes, never stop the kernel or leak a file; where a picture is needed (Edit,
Variations, contact sheets) an SVG is drawn, or refused with a message that says what to do."""

from __future__ import annotations

import base64
import io
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from ipyimagegen import imaging, svg
from ipyimagegen.api.types import GeneratedImage
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import ImageInputError
from ipyimagegen.plots import contact_sheet
from ipyimagegen.pngtext import gif_frames
from ipyimagegen.thumbnails import thumbnail_of
from ipyimagegen.widgets.image_input import load_image

matplotlib.use("Agg")

MODEL = "gpt-image-2.6-flare"
SVG_OPEN = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
BLUE, RED = (30, 144, 255), (255, 0, 0)


def nested(depth: int) -> bytes:
    return (SVG_OPEN + "<g>" * depth + '<rect width="9" height="9"/>' + "</g>" * depth + "</svg>").encode()


def blurred_uses(levels: int, fan: int) -> bytes:
    """A few hundred bytes whose <use> of <use> repeat one blurred rectangle fan**levels times."""
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256"><defs>'
        '<filter id="b"><feGaussianBlur stdDeviation="40"/></filter>'
        '<rect id="l0" width="256" height="256" fill="red" fill-opacity="0.01" filter="url(#b)"/>'
    ]
    for k in range(1, levels + 1):
        parts.append(f'<g id="l{k}">' + f'<use href="#l{k - 1}"/>' * fan + "</g>")
    parts.append(f'</defs><use href="#l{levels}"/></svg>')
    return "".join(parts).encode()


def png_of(colour: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> bytes:
    return imaging.to_png(Image.new("RGB", size, colour))


def over_blue(picture: str) -> bytes:
    """A blue square with ``picture`` (an <image> element's attributes) drawn over all of it."""
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:s="http://www.w3.org/2000/svg" '
        'xmlns:other="urn:example:other" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">'
        f'<rect width="64" height="64" fill="#1e90ff"/><image width="64" height="64" {picture}/></svg>'
    ).encode()


def centre(data: bytes) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as picture:
        return tuple(picture.convert("RGB").getpixel((picture.width // 2, picture.height // 2)))


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return max(abs(a - b) for a, b in zip(pixel, colour, strict=True)) < 12


def run_isolated(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by another Python: a crash there (a regression) fails the test, not pytest."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def drawing() -> GeneratedImage:
    return PreviewEngine().generate(
        prompt="a lighthouse", model=MODEL, output_format="svg", size="1536x1024"
    )[0]


# --- crashes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [400, 1200])
def test_a_deeply_nested_svg_gets_a_card_and_the_kernel_lives(depth: int, tmp_path: Path) -> None:
    done = run_isolated(
        f"""
        from pathlib import Path
        from ipyimagegen import svg
        from ipyimagegen.api.types import GeneratedImage
        from ipyimagegen.gallery import Gallery
        from ipyimagegen.thumbnails import thumbnail_of
        data = {nested(depth)!r}
        try:
            svg.rasterise(data, 64)
        except svg.SvgError as exc:
            print("refused:", exc)
        image = GeneratedImage(data=data, mime_type="image/svg+xml")
        print("thumbnail:", thumbnail_of(image, 256)[1])
        with Gallery(Path({str(tmp_path)!r}) / "gallery") as gallery:
            item = gallery.save(image)
            print("saved:", item.path.suffix, gallery.thumbnail(item.id, 64)[1])
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"refused: This SVG nests its elements more than {svg.MAX_DEPTH} deep" in done.stdout
    assert "thumbnail: image/jpeg" in done.stdout and "saved: .svg image/jpeg" in done.stdout


def test_a_deep_svg_inside_a_data_url_is_never_drawn() -> None:
    inner = base64.b64encode(nested(400)).decode()
    done = run_isolated(
        f"""
        from ipyimagegen import svg
        outer = {SVG_OPEN!r} + '<image width="64" height="64" href="data:image/svg+xml;base64,{inner}"/></svg>'
        print("drawn:", svg.picture(outer.encode(), 64).size)
        print("markup:", "data:image/svg" in svg.drawable_markup(outer.encode()))
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "drawn: (64, 64)" in done.stdout and "markup: False" in done.stdout


def test_when_the_renderer_crashes_it_is_an_svg_error_in_a_living_kernel() -> None:
    # With the depth check out of the way, resvg itself overflows its stack: only its process ends.
    done = run_isolated(
        f"""
        from ipyimagegen import imaging, svg
        svg.MAX_DEPTH = 100_000
        data = {nested(400)!r}
        try:
            svg.rasterise(data, 64)
        except svg.SvgError as exc:
            print("refused:", exc)
        print("card:", svg.picture(data, 64).size, imaging.thumbnail(data, 64)[1])
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: The SVG renderer crashed on this drawing (SIGSEGV)" in done.stdout
    assert "card: (64, 64) image/jpeg" in done.stdout


# --- leaks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        's:href="{path}"',  # a prefix bound to the SVG namespace
        'other:href="{path}"',  # any namespace at all
        'xlink:href="file://{path}"',
        'href="  {path}"',
        'href="data:image/svg+xml;base64,{nested_svg}"',  # an embedded SVG that reads the file
    ],
)
def test_no_href_of_any_namespace_reads_a_local_file(reference: str, tmp_path: Path) -> None:
    private = tmp_path / "private.png"
    private.write_bytes(png_of(RED))
    inner = over_blue(f'href="{private}"').replace(b'"#1e90ff"', b'"none"')
    nested_svg = base64.b64encode(inner).decode()
    drawing = over_blue(reference.format(path=private, nested_svg=nested_svg))
    assert str(private) not in svg.drawable_markup(drawing)
    thumbnail, _mime = thumbnail_of(GeneratedImage(data=drawing, mime_type="image/svg+xml"), 64)
    assert near(centre(thumbnail), BLUE)
    sent, mime = imaging.raster_file(drawing)  # what Edit and Variations upload
    assert mime == "image/png" and near(centre(sent), BLUE)


def test_an_embedded_png_is_drawn(tmp_path: Path) -> None:
    # the same <image> with a picture inside the document: drawn, so the test above can fail
    embedded = base64.b64encode(png_of(RED)).decode()
    for reference in (
        f'href="data:image/png;base64,{embedded}"',
        f's:href="data:image/png;base64,{embedded}"',
    ):
        drawn, _mime = imaging.raster_file(over_blue(reference))
        assert near(centre(drawn), RED)


def test_style_sheets_lose_their_imports_and_outside_urls() -> None:
    drawing = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        b"<style>@import url(/etc/private.css); rect { fill: url(file:///etc/p.svg#x) }"
        b" circle { fill: url(#inside) }</style>"
        b'<rect width="9" height="9" style="fill: url(&quot;http://example.com/p.svg#x&quot;); stroke: red"/>'
        b'<circle r="4" fill="url(/private/paint.svg#p)" stroke="url( #inside )"/></svg>'
    )
    markup = svg.drawable_markup(drawing)
    for outside in ("@import", "/etc/", "example.com", "/private/"):
        assert outside not in markup
    assert markup.count("url(#inside)") == 1 and "url( #inside )" in markup and "stroke: red" in markup


# --- stalls ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("levels", "fan"), [(3, 10), (4, 10), (2, 100)])
def test_a_small_svg_that_multiplies_a_blur_is_refused_before_it_is_drawn(levels: int, fan: int) -> None:
    drawing = blurred_uses(levels, fan)
    assert len(drawing) < 4000
    with pytest.raises(svg.SvgError, match="counting what each <use> repeats"):
        svg.rasterise(drawing, 256)
    card = svg.picture(drawing, 256)
    assert card.size == (256, 256) and card.getpixel((128, 128))[:3] != (255, 255, 255)


def masks_of_masks(levels: int, fan: int) -> bytes:
    """Masks whose shapes are masked by the mask before, ``fan`` times at each level: each mask a
    picture drawn apart."""
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256"><defs>'
        '<mask id="m0"><rect width="256" height="256" fill="white"/></mask>'
    ]
    for k in range(1, levels + 1):
        shape = f'<rect width="256" height="256" fill="white" mask="url(#m{k - 1})"/>'
        parts.append(f'<mask id="m{k}">' + shape * fan + "</mask>")
    parts.append(f'</defs><rect width="256" height="256" fill="red" mask="url(#m{levels})"/></svg>')
    return "".join(parts).encode()


def test_masks_of_masks_are_refused_before_they_are_drawn() -> None:
    with pytest.raises(svg.SvgError, match="filtered, masked, clipped or translucent"):
        svg.rasterise(masks_of_masks(3, 10), 256)  # about ten seconds to draw


@pytest.mark.parametrize("selector", [".see-through", "rect", "*", "#r0"])
def test_translucent_copies_made_by_a_style_sheet_count_too(selector: str) -> None:
    drawing = blurred_uses(3, 10).replace(b' filter="url(#b)"', b' class="see-through"')
    drawing = drawing.replace(b"<defs>", f"<style>{selector} {{ opacity: 0.5 }}</style><defs>".encode())
    with pytest.raises(svg.SvgError, match="filtered, masked, clipped or translucent"):
        svg.rasterise(drawing.replace(b'id="l0"', b'id="r0"').replace(b"#l0", b"#r0"), 256)
    assert svg.rasterise(drawing.replace(b"opacity: 0.5", b"opacity: 1"), 64).size == (64, 64)


def test_an_ordinary_drawing_that_reuses_its_parts_is_drawn() -> None:
    # what <defs> hold counts where it is used (as many blurs as allowed), and a gradient is a paint
    # (7000 shapes filled with one): none of this is refused
    shapes = "".join(
        f'<rect x="{k % 60}" y="{k // 120}" width="4" height="4" fill="url(#sky)"/>' for k in range(7000)
    )
    icons = "".join(f'<use href="#icon" x="{k % 60}" y="{k % 60}"/>' for k in range(svg.MAX_LAYERS))
    drawing = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><defs>'
        '<linearGradient id="sky"><stop offset="0" stop-color="#1e90ff"/><stop offset="1" stop-color="#1e90ff"/>'
        '</linearGradient><filter id="soft"><feGaussianBlur stdDeviation="0.5"/></filter>'
        '<symbol id="icon">'
        + '<circle r="2" fill="red" filter="url(#soft)"/>'
        + "<rect width='1' height='1'/>" * 20
        + f"</symbol></defs>{shapes}{icons}</svg>"
    ).encode()
    assert near(tuple(svg.rasterise(drawing, 64).getpixel((62, 30)))[:3], BLUE)


def test_a_use_that_repeats_its_own_parent_is_refused() -> None:
    with pytest.raises(svg.SvgError, match="inside of again"):
        svg.rasterise(SVG_OPEN.encode() + b'<g id="a"><g><use href="#a"/></g></g></svg>')


def test_a_drawing_that_takes_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svg, "MAX_LAYERS", 10**9)  # past the checks, as a costlier trick might get
    monkeypatch.setattr(svg, "RASTER_TIMEOUT_S", 0.5)
    with pytest.raises(svg.SvgError, match=r"took more than 0\.5 s to draw"):
        svg.rasterise(blurred_uses(3, 10), 256)


def embedded_png_svg(side: int) -> bytes:
    """An SVG holding a PNG of ``side`` x ``side`` RGBA pixels (a few kB: its rows are all alike)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = b"\0" * (1 + side * 4)
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return over_blue(f'href="data:image/png;base64,{base64.b64encode(png).decode()}"')


@pytest.mark.skipif(sys.platform != "linux", reason="the address-space limit is enforced on Linux")
def test_a_drawing_that_needs_too_much_memory_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svg, "RASTER_MEMORY_BYTES", 100 << 20)
    assert near(tuple(svg.rasterise(embedded_png_svg(100), 64).getpixel((32, 32)))[:3], BLUE)
    with pytest.raises(svg.SvgError, match="needs more than 100 MB"):
        svg.rasterise(embedded_png_svg(6000), 64)  # 144 MB of pixels once decoded


def hand_made_gif(
    screen: tuple[int, int], frames: int, frame_box: tuple[int, int, int, int] = (0, 0, 1, 1)
) -> bytes:
    """A GIF of ``frames`` tiny frames on a large screen: a few bytes each, the screen's pixels each
    once decoded."""
    head = b"GIF89a" + struct.pack("<HH", *screen) + bytes([0x80, 0, 0]) + b"\0\0\0\xff\xff\xff"
    head += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + b"\x2c" + struct.pack("<HHHH", *frame_box)
    frame += b"\x00\x02\x02\x44\x01\x00"
    return head + frame * frames + b"\x3b"


def test_a_gif_that_would_decode_to_gigabytes_gets_a_still_thumbnail() -> None:
    bomb = hand_made_gif((7000, 7000), 64)  # 64 frames x 49 megapixels, in under 2 kB
    assert len(bomb) < 2000 and gif_frames(bomb) == (64, (7000, 7000))
    assert imaging.animated_thumbnail(bomb, 256) is None
    data, mime = thumbnail_of(GeneratedImage(data=bomb, mime_type="image/gif"), 256)
    assert mime == "image/jpeg" and Image.open(io.BytesIO(data)).size == (256, 256)


def test_the_gif_budget_counts_frames_times_the_canvas(monkeypatch: pytest.MonkeyPatch) -> None:
    gif = hand_made_gif((100, 100), 10)
    assert imaging.animated_thumbnail(gif, 64) is not None  # 100 000 pixels: it plays
    monkeypatch.setattr(imaging, "MAX_ANIMATED_THUMBNAIL_PIXELS", 99_999)
    assert imaging.animated_thumbnail(gif, 64) is None


def test_a_frame_past_the_screen_grows_the_canvas_counted() -> None:
    gif = hand_made_gif((1, 1), 4, frame_box=(60_000, 0, 5_000, 300))
    assert gif_frames(gif) == (4, (65_000, 300))
    assert imaging.animated_thumbnail(gif, 64) is None  # 4 x 19.5 megapixels


# --- where a picture is needed ---------------------------------------------------------------------


def test_an_svg_result_goes_to_edit_as_a_png_of_it(drawing: GeneratedImage) -> None:
    loaded = load_image(drawing)
    assert loaded.image.size == (1536, 1024) and loaded.data is not None
    assert loaded.source.mime_type == "image/png"
    drawn = np.asarray(svg.rasterise(drawing.data, 1536).convert("RGB"), np.int16)
    assert np.abs(np.asarray(loaded.image.convert("RGB"), np.int16) - drawn).max() <= 1


def test_a_contact_sheet_shows_svg_results_drawn(drawing: GeneratedImage) -> None:
    figure = contact_sheet([drawing, drawing])
    shown = np.asarray(figure.axes[0].images[0].get_array(), np.int16)
    expected = np.asarray(svg.rasterise(drawing.data, 512), np.int16)
    assert shown.shape == expected.shape and shown.shape[1] == 512
    assert abs(shown.shape[0] / shown.shape[1] - 1024 / 1536) < 0.01  # the drawing's 3:2, not a card's
    assert np.abs(shown - expected).max() <= 1


@pytest.mark.parametrize(
    ("drawing_bytes", "reason"),
    [(blurred_uses(3, 10), "filtered, masked"), (nested(200), "nests its elements")],
)
def test_an_svg_that_cannot_be_drawn_is_refused_where_a_picture_is_needed(
    drawing_bytes: bytes, reason: str
) -> None:
    result = GeneratedImage(data=drawing_bytes, mime_type="image/svg+xml")
    for attempt in (
        lambda: load_image(result),
        lambda: contact_sheet([result]),
        lambda: imaging.raster_file(result.data),
    ):
        with pytest.raises(ImageInputError, match=reason) as caught:
            attempt()
        assert "export it as PNG" in caught.value.hint
    assert thumbnail_of(result, 64)[1] == "image/jpeg"  # a thumbnail is the card


def test_without_a_renderer_edit_says_what_to_install(
    drawing: GeneratedImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(svg, "_rasteriser", lambda: None)
    with pytest.raises(ImageInputError) as caught:
        load_image(drawing)
    assert "resvg-py" in str(caught.value) and caught.value.hint == "pip install resvg-py"
