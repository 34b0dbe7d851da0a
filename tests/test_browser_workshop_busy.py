"""A busy workshop in a real browser (Voila + headless Chromium): the wait's message is read whole under
the buttons of the studio's narrow controls column, the buttons keep their size, and Cancel ends it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from browser import browser_page, require_chromium, voila, write_notebook

pytestmark = pytest.mark.browser

GENERATE_TAB = ".ipyimagegen-studio .ipyimagegen-generate-tab"
BUSY_TEXT = "The workshop is busy: about 4 min, 37 ahead of you. Trying again at"

CELL = textwrap.dedent(
    """
    import ipyimagegen as ig
    from ipyimagegen.api.queue_watch import wait_for_room
    from ipyimagegen.api.retry import wait_or_cancel
    from ipyimagegen.errors import WorkshopBusyError


    class BusyRoom(ig.PreviewEngine):
        # waits out a busy workshop's answer as the HTTP client does, then draws
        def _generate(self, request, hooks):
            busy = WorkshopBusyError("The workshop is busy.", ahead=37, wait_s=240.0, retry_after=120.0)
            wait_for_room(busy, 120.0, hooks, lambda seconds: wait_or_cancel(seconds, hooks.cancel))
            return super()._generate(request, hooks)


    s = ig.studio(BusyRoom(), draft_name="busy room")
    s
    """
)

LAYOUT_JS = """([progressSelector, tabSelector]) => {
    const progress = document.querySelector(progressSelector);
    const content = progress.querySelector('.widget-html-content') || progress;
    const column = document.querySelector(tabSelector).getBoundingClientRect();
    const box = progress.getBoundingClientRect();
    const cancel = document.querySelector(tabSelector + ' .ipyimagegen-cancel').getBoundingClientRect();
    return {
        inside: box.left >= column.left - 1 && box.right <= column.right + 1,
        box: [box.left, box.right],
        column: [column.left, column.right],
        whole: content.scrollWidth <= content.clientWidth + 1,
        cancelWidth: cancel.width,
    };
}"""


def test_the_busy_message_is_read_whole_in_the_narrow_column_and_cancel_ends_the_wait(
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    require_chromium()
    notebook = write_notebook(tmp_path / "busy.ipynb", CELL)
    with voila(notebook, tmp_path) as url, browser_page((1400, 900)) as (page, console):
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
        prompt = page.locator(f"{GENERATE_TAB} .ipyimagegen-prompt textarea")
        prompt.wait_for(state="visible", timeout=60_000)
        prompt.fill("a fox in a busy room")
        page.locator(f"{GENERATE_TAB} .ipyimagegen-generate").click()
        progress = page.locator(f"{GENERATE_TAB} .ipyimagegen-progress")
        expect(progress).to_contain_text(BUSY_TEXT, timeout=30_000)
        page.screenshot(path=str(tmp_path / "busy.png"))

        layout = page.evaluate(LAYOUT_JS, [f"{GENERATE_TAB} .ipyimagegen-progress", GENERATE_TAB])
        assert layout["inside"] and layout["whole"], layout
        assert layout["cancelWidth"] >= 95, layout  # the buttons keep their size beside a long message

        page.locator(f"{GENERATE_TAB} .ipyimagegen-cancel").click()
        expect(page.locator(f"{GENERATE_TAB} .ipyimagegen-status")).to_contain_text(
            "Cancelled.", timeout=10_000
        )
        expect(progress).to_be_hidden(timeout=10_000)
        assert console.relevant() == [], console.relevant()
