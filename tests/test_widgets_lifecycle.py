"""Closing a studio closes every widget it made; replaced widgets are closed as they go."""

from __future__ import annotations

from pathlib import Path

from ipywidgets.widgets.widget import _instances

from edit_helpers import picture
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.widgets.studio import Studio
from widget_helpers import WAIT_S


def _open_widgets() -> set[str]:
    return set(_instances)


def _run(tab) -> None:
    tab.controls.run_button.click()
    assert tab.runner.wait(WAIT_S)


def _full_session(s: Studio, folder: Path) -> None:
    for index in range(len(s.tabs.children)):
        s.tabs.selected_index = index
    generate = s.generate_tab
    generate.prompt_box.value = "a lighthouse at dusk"
    generate.params.n = 3
    _run(generate)
    tiles = s.grid.tiles
    s.grid.enlarge(tiles[0])
    s.grid.save(tiles[1], folder)
    s.grid.select(tiles[0])
    s.grid.select(tiles[1])
    s.grid.compare()
    s.edit_tab.use_image(picture(96, 64))
    s.edit_tab.painter.fill()
    s.edit_tab.prompt_box.value = "the same, in snow"
    _run(s.edit_tab)
    s.variations_tab.use_image(picture(64, 64))
    _run(s.variations_tab)
    s.select("History")
    s.history.refresh()
    s.grid.remove(s.grid.tiles[-1])


def test_closing_a_studio_after_a_full_session_leaves_no_widget_open(tmp_path: Path) -> None:
    before = _open_widgets()
    s = Studio(PreviewEngine(), gallery=tmp_path / "gallery")
    _full_session(s, tmp_path)
    made = _open_widgets() - before
    assert len(made) > 400  # every tab, tile, panel and the painter

    s.close()

    assert _open_widgets() - before == set()


def test_a_second_studio_works_after_the_first_is_closed(tmp_path: Path) -> None:
    first = Studio(PreviewEngine(), gallery=tmp_path / "one")
    first.edit_tab.use_image(picture(32, 32))
    first.close()
    second = Studio(PreviewEngine(), gallery=tmp_path / "two")
    second.edit_tab.use_image(picture(32, 32))  # the canvases' shared manager is still open
    second.edit_tab.painter.fill()
    assert second.edit_tab.painter.painted_fraction == 1.0
    second.close()


def test_panels_that_go_away_close_what_they_made(tmp_path: Path) -> None:
    s = Studio(PreviewEngine(), gallery=tmp_path / "gallery")
    s.select("History")
    settled = _open_widgets()
    generate = s.generate_tab
    generate.prompt_box.value = "a fox in the snow"
    generate.params.n = 2
    _run(generate)
    s.grid.enlarge(s.grid.tiles[0])
    s.grid.select(s.grid.tiles[0])
    s.grid.select(s.grid.tiles[1])
    s.grid.compare()
    s.history.refresh()

    s.grid.close_preview()
    s.grid.close_compare()
    s.grid.clear()
    s.history.gallery.delete(s.history.gallery.items()[0].id)
    s.history.gallery.delete(s.history.gallery.items()[0].id)
    s.history.refresh()

    assert _open_widgets() - settled == set()  # only what stays: the same tabs, the empty grid and history
    s.close()
