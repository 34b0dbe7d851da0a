"""A page on another origin cannot make the server run a call; nor can a rebound host name."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from browser import browser_page, require_chromium
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, make_app
from ipyimagegen.server.config import ServerConfig

BODY = '{"prompt": "a cat", "model": "dall-e-2", "size": "256x256"}'


class CountingEngine(PreviewEngine):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _generate(self, request, hooks):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super()._generate(request, hooks)


@pytest.fixture
def served() -> Iterator[tuple[str, CountingEngine]]:
    engine = CountingEngine()
    with ServerThread(make_app(engine)) as server:
        yield server.base_url, engine


def test_a_json_route_takes_only_json(served: tuple[str, CountingEngine]) -> None:
    url, engine = served
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        answer = requests.post(
            f"{url}/images/generations", data=BODY, headers={"Content-Type": content_type}, timeout=10
        )
        assert answer.status_code == 415 and answer.json()["error"]["code"] == "unsupported_content_type"
    assert engine.calls == 0
    assert requests.post(
        f"{url}/images/generations", data=BODY, headers={"Content-Type": "application/json"}, timeout=10
    ).ok
    assert engine.calls == 1


def test_other_origins_and_unknown_hosts_are_refused(served: tuple[str, CountingEngine]) -> None:
    url, engine = served
    json_headers = {"Content-Type": "application/json"}
    other = requests.post(
        f"{url}/images/generations",
        data=BODY,
        headers={**json_headers, "Origin": "http://evil.example"},
        timeout=10,
    )
    rebound = requests.post(
        f"{url}/images/generations",
        data=BODY,
        headers={**json_headers, "Host": "evil.example:80"},
        timeout=10,
    )
    assert other.status_code == 403 and other.json()["error"]["code"] == "origin_not_allowed"
    assert rebound.status_code == 403 and rebound.json()["error"]["code"] == "host_not_allowed"
    assert "--allow-host" in rebound.json()["error"]["message"]
    assert requests.get(f"{url}/models", headers={"Host": "localhost"}, timeout=10).ok
    assert engine.calls == 0


def test_an_allowed_origin_may_call() -> None:
    engine = CountingEngine()
    app = make_app(engine, ServerConfig(cors_origins=["http://notebook.example"], allowed_hosts=["*"]))
    with ServerThread(app) as server:
        answer = requests.post(
            f"{server.base_url}/images/generations",
            data=BODY,
            headers={
                "Content-Type": "application/json",
                "Origin": "http://notebook.example",
                "Host": "any.name",
            },
            timeout=10,
        )
    assert answer.ok and answer.headers["access-control-allow-origin"] == "http://notebook.example"


def _page_server(html: str) -> tuple[ThreadingHTTPServer, str]:
    class Page(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            data = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.mark.browser
def test_a_page_on_another_origin_cannot_run_a_call(served: tuple[str, CountingEngine]) -> None:
    require_chromium()
    url, engine = served
    html = f"""<!doctype html><title>elsewhere</title><script>
    window.done = (async () => {{
      const tries = [
        fetch("{url}/images/generations", {{method: "POST", mode: "no-cors", body: '{BODY}',
                                              headers: {{"Content-Type": "text/plain"}}}}),
        fetch("{url}/images/generations", {{method: "POST", body: '{BODY}',
                                              headers: {{"Content-Type": "application/json"}}}}),
      ];
      return Promise.allSettled(tries).then(results => results.map(r => r.status));
    }})();
    </script>"""
    page_server, page_url = _page_server(html)
    try:
        with browser_page() as (page, _console):
            page.goto(page_url, wait_until="load", timeout=30_000)
            outcomes = page.evaluate("window.done")
            time.sleep(0.5)
    finally:
        page_server.shutdown()
    assert len(outcomes) == 2
    assert engine.calls == 0  # neither the "simple" no-cors POST nor the JSON one ran


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"prompt": "\\ud800 a cat", "model": "dall-e-2", "size": "256x256"}', "half of a character pair"),
        ('{"prompt": "a", "svg": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"prompt": "a", "model": "dall-e-2", "size": "00x00"}', "size must be one of"),
        ('{"prompt": "a", "model": "dall-e-2", "size": "00x100"}', "size must be one of"),
    ],
)
def test_bad_bodies_are_a_400_with_the_apis_error_json(
    served: tuple[str, CountingEngine], body: str, says: str
) -> None:
    url, engine = served
    answer = requests.post(
        f"{url}/images/generations", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["error"]["message"] and engine.calls == 0


def test_a_lone_surrogate_is_a_validation_error_in_python_too() -> None:
    from ipyimagegen.api import ValidationError

    with pytest.raises(ValidationError, match="half of a character pair") as caught:
        PreviewEngine().generate(prompt="a cat \ud800", model="dall-e-2", size="256x256")
    assert caught.value.param == "prompt"
