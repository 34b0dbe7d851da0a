"""The instructor's page in a real browser (headless Chromium): sign in with an admin token, see
the room live, top up, revoke, pause and resume; names shown as text."""

from __future__ import annotations

import openai
import pytest

from browser import browser_page, require_chromium
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, TokenStore, make_app

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
