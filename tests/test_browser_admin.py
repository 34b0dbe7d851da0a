"""The instructor's page in a real browser (headless Chromium): sign in with an admin token, see
the room live, top up, revoke, pause and resume; names shown as text."""

from __future__ import annotations

import openai
import pytest

from browser import browser_page, require_chromium
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server.config import ServerConfig
from ipyimagegen.server.wall import WALL_SIDE

pytestmark = pytest.mark.browser


def _call(server: ServerThread, token: str, n: int = 1) -> str:
    sdk = openai.OpenAI(base_url=server.base_url, api_key=token, max_retries=0)
    try:
        sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256", n=n)
    except openai.AuthenticationError:
        return "unauthorised"
    except openai.InternalServerError as exc:
        return "paused" if "paused" in str(exc) else "failed"
    except openai.RateLimitError:
        return "refused"
    return "made"


def test_the_host_sees_the_room_tops_up_revokes_and_pauses(tmp_path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    store = TokenStore.in_dir(tmp_path)
    host, _ = store.create("host", admin=True)
    alice, _ = store.create("alice", budget=5)
    bob, _ = store.create("bob", budget_usd=1.0)
    store.create("<img src=x onerror=alert(1)>")
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as server, browser_page() as (page, console):
        assert _call(server, alice, n=2) == "made" and _call(server, bob) == "made"
        page.goto(server.url + "/admin", wait_until="domcontentloaded")
        page.locator("#admin-token").fill(alice)  # a participant's token is not enough
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#problem")).to_contain_text("admin token")
        page.locator("#admin-token").fill(host)
        page.get_by_role("button", name="Sign in").click()
        table = page.locator("#participants-table")
        expect(table.locator("tr")).to_have_count(3)
        expect(page.locator("#images")).to_have_text("3")
        alice_row = table.locator("tr", has=page.locator("td.name", has_text="alice"))
        expect(alice_row.locator("td").nth(2)).to_have_text("2")
        expect(alice_row.locator("td.budget")).to_have_text("5 images")
        assert page.locator("#participants-table img").count() == 0  # the odd name is text
        expect(table).to_contain_text("<img src=x onerror=alert(1)>")
        assert page.evaluate("Object.keys(localStorage).length") == 0

        # Top up alice by 10 images.
        alice_row.get_by_role("spinbutton", name="Images to add for alice").fill("10")
        alice_row.get_by_role("button", name="Top up").click()
        expect(alice_row.locator("td.budget")).to_have_text("15 images")

        # Revoke bob (asked first): his next call is refused.
        page.once("dialog", lambda dialog: dialog.accept())
        bob_row = table.locator("tr", has=page.locator("td.name", has_text="bob"))
        bob_row.get_by_role("button", name="Revoke").click()
        expect(bob_row.locator("td.status")).to_have_text("revoked")
        assert _call(server, bob) == "unauthorised"

        # Pause every call, then resume.
        page.get_by_role("button", name="Pause all calls").click()
        expect(page.locator("#paused-note")).to_be_visible()
        assert _call(server, alice) == "paused"
        page.get_by_role("button", name="Resume all calls").click()
        expect(page.locator("#paused-note")).to_be_hidden()
        assert _call(server, alice) == "made"
        expect(page.locator("#images")).to_have_text("4", timeout=10_000)  # the room live, refreshed
        assert console.relevant() == [], console.relevant()


def test_a_participant_shares_from_the_studio_and_the_host_shows_it_on_the_wall(tmp_path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    from browser import voila, write_notebook

    store = TokenStore.in_dir(tmp_path / "server")
    host, _ = store.create("host", admin=True)
    alice, _ = store.create("alice")
    with ServerThread(make_app(PreviewEngine(), ServerConfig(class_wall=True), tokens=store)) as server:
        cell = (
            "from ipyimagegen import OpenAIClient\n"
            "from ipyimagegen.widgets import studio\n"
            f"s = studio(OpenAIClient(base_url={server.base_url!r}, api_key={alice!r}))\n"
            "s.generate_tab.params.n = 1\n"
            "s"
        )
        notebook = write_notebook(tmp_path / "participant.ipynb", cell)
        with voila(notebook, tmp_path) as url, browser_page() as (page, console):
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            prompt = page.locator(".ipyimagegen-generate-tab .ipyimagegen-prompt textarea")
            prompt.wait_for(state="visible", timeout=60_000)
            prompt.fill("<b>a lighthouse</b> at dusk")
            page.locator(".ipyimagegen-generate-tab .ipyimagegen-generate").click()
            page.locator(".ipyimagegen-enlarge").first.click(timeout=30_000)
            share = page.get_by_role("button", name="Share with the class")
            share.click()
            expect(page.get_by_text("Shared with the class")).to_be_visible(timeout=15_000)
            expect(share).to_be_disabled()  # once per opening: no double posts
            expect(page.locator(".ipyimagegen-lightbox")).to_be_visible()  # the viewer stays open
            page.screenshot(path=str(tmp_path / "studio-shared.png"))
            assert console.relevant() == [], console.relevant()

            wall_page = page  # the host's page, in the same browser
            wall_page.goto(server.url + "/admin", wait_until="domcontentloaded")
            wall_page.locator("#admin-token").fill(host)
            wall_page.get_by_role("button", name="Sign in").click()
            card = wall_page.locator("#wall figure.post")
            expect(card).to_have_count(1)
            expect(card.locator(".who")).to_have_text("alice")
            expect(card.locator(".prompt")).to_have_text("<b>a lighthouse</b> at dusk")  # text, not HTML
            assert wall_page.locator("#wall b").count() == 0
            wall_page.wait_for_function(
                "document.querySelector('#wall img').complete && document.querySelector('#wall img').naturalWidth > 0"
            )
            shown = wall_page.evaluate(
                "[document.querySelector('#wall img').naturalWidth, document.querySelector('#wall img').getAttribute('width')]"
            )
            assert shown[0] == int(shown[1]) <= WALL_SIDE  # the server's own copy, as it says
            wall_page.get_by_role("button", name="Show full screen").click()
            expect(wall_page.get_by_role("button", name="Leave full screen")).to_be_visible()
            wall_page.screenshot(path=str(tmp_path / "class-wall-full-screen.png"))
            wall_page.get_by_role("button", name="Leave full screen").click()
            wall_page.once("dialog", lambda dialog: dialog.accept())
            wall_page.get_by_role("button", name="Take down alice's picture").click()
            expect(card).to_have_count(0)
            expect(wall_page.locator("#wall-empty")).to_be_visible()
            wall_page.screenshot(path=str(tmp_path / "class-wall-empty.png"), full_page=True)


def test_a_narrow_window_reaches_every_column_and_counts_one_participant(tmp_path) -> None:
    require_chromium()
    from playwright.sync_api import expect

    store = TokenStore.in_dir(tmp_path)
    host, _ = store.create("host", admin=True)
    alice, _ = store.create("alice", budget=5)
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as server, browser_page() as (page, console):
        assert _call(server, alice) == "made"
        page.set_viewport_size({"width": 900, "height": 800})
        page.goto(server.url + "/admin", wait_until="domcontentloaded")
        page.locator("#admin-token").fill(host)
        page.get_by_role("button", name="Sign in").click()
        table = page.locator("#participants-table")
        expect(table.locator("tr")).to_have_count(1)  # the host's own token is not a participant
        expect(page.locator("#participants-word")).to_have_text(
            "participant"
        )  # 1 participant, not "1 participants"
        revoke = table.locator("tr", has=page.locator("td.name", has_text="alice")).get_by_role(
            "button", name="Revoke"
        )
        revoke.scroll_into_view_if_needed()
        box = revoke.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 900, box
        assert console.relevant() == [], console.relevant()
