"""Refusals through ``ipyimagegen serve``, as the official ``openai`` client sees them: the local word
list on the engines, OpenAI's own refusals passed through unchanged in ``--upstream`` mode, and the
``--moderation-words`` option."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from PIL import Image

from fake_openai import OpenAIToday
from ipyimagegen.api.client import OpenAIClient
from ipyimagegen.cli import main
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, make_app
from waiting import wait_for_health

UPSTREAM_KEY = "sk-upstream-moderation-0123456789"


def png(size: tuple[int, int] = (256, 256)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (200, 100, 50, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def mask(size: tuple[int, int] = (256, 256)) -> bytes:
    picture = Image.new("RGBA", size, (0, 0, 0, 255))
    picture.paste((0, 0, 0, 0), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server():
    with ServerThread(make_app(PreviewEngine())) as running:
        yield running


@pytest.fixture(scope="module")
def sdk(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)


# --- the local word list, through the official client -----------------------------------------------


def test_a_flagged_dalle_prompt_is_a_400_content_policy_violation(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(model="dall-e-2", prompt="a MASSACRE at dawn", size="256x256")
    refused = caught.value
    assert refused.status_code == 400
    assert (refused.code, refused.type, refused.param) == (
        "content_policy_violation",
        "invalid_request_error",
        "prompt",
    )
    assert isinstance(refused.body, dict)
    assert set(refused.body) == {"message", "type", "param", "code"}
    assert refused.body["message"].startswith("Your request was rejected as a result of our safety system.")
    assert "massacre" not in refused.body["message"].lower()


def test_a_flagged_gpt_image_prompt_is_a_400_moderation_blocked(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(
            model="gpt-image-2.6-flare", prompt="a pipe bomb", size="1024x1024", quality="low"
        )
    refused = caught.value
    assert (refused.code, refused.type, refused.param) == (
        "moderation_blocked",
        "image_generation_user_error",
        "prompt",
    )
    assert isinstance(refused.body, dict)
    assert refused.body["message"].startswith("Your request was rejected by the safety system")
    assert "safety_violations=[weapons]" in refused.body["message"]
    assert refused.body["moderation_details"] == {"moderation_stage": "input", "categories": ["weapons"]}
    with pytest.raises(openai.BadRequestError) as streamed:  # a streamed call: a 400 before any event
        for _event in sdk.images.generate(
            model="gpt-image-2.6-flare", prompt="a pipe bomb", size="1024x1024", stream=True, partial_images=1
        ):
            pass
    assert (streamed.value.status_code, streamed.value.code) == (400, "moderation_blocked")


def test_moderation_low_relaxes_the_list_through_the_server(sdk: openai.OpenAI) -> None:
    prompt = "a knight holding a pistol"
    with pytest.raises(openai.BadRequestError):
        sdk.images.generate(model="gpt-image-2.6-flare", prompt=prompt, size="1024x1024", quality="low")
    result = sdk.images.generate(
        model="gpt-image-2.6-flare", prompt=prompt, size="1024x1024", quality="low", moderation="low"
    )
    assert len(result.data) == 1 and result.data[0].b64_json


def test_a_flagged_edit_prompt_is_refused_too(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.edit(
            model="dall-e-2",
            image=("a.png", png(), "image/png"),
            mask=("m.png", mask(), "image/png"),
            prompt="put a machine-gun on the table",
            size="256x256",
        )
    assert (caught.value.code, caught.value.param) == ("content_policy_violation", "prompt")
    edited = sdk.images.edit(
        model="dall-e-2",
        image=("a.png", png(), "image/png"),
        mask=("m.png", mask(), "image/png"),
        prompt="put a teapot on the table",
        size="256x256",
    )
    assert len(edited.data) == 1


def test_a_server_with_a_custom_list_refuses_by_that_list(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("[fruit]\nbanana\n", encoding="utf-8")
    with ServerThread(make_app(PreviewEngine(moderation_words=words))) as custom:
        sdk = openai.OpenAI(base_url=custom.base_url, api_key="local", max_retries=0)
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.images.generate(model="gpt-image-1", prompt="a banana", size="1024x1024", quality="low")
        assert (
            caught.value.code == "moderation_blocked" and "safety_violations=[fruit]" in caught.value.message
        )
        assert len(sdk.images.generate(model="dall-e-2", prompt="a massacre", size="256x256").data) == 1


# --- --upstream: OpenAI moderates, its refusals pass through -----------------------------------------

UPSTREAM_REFUSAL = {
    "error": {
        "message": "Your request was rejected by the safety system. If you believe this is an error, contact us "
        "at help.openai.com and include the request ID req_0123. safety_violations=[violence].",
        "type": "image_generation_user_error",
        "param": None,
        "code": "moderation_blocked",
        "moderation_details": {"moderation_stage": "input", "categories": ["violence"]},
    }
}


@dataclass
class ModeratingOpenAI(OpenAIToday):
    """OpenAI today, whose safety system refuses any prompt that mentions a dragon."""

    def refusal(self, params: dict[str, Any], endpoint: str) -> tuple[int, dict[str, Any]] | None:
        if "dragon" in str(params.get("prompt", "")):
            return 400, UPSTREAM_REFUSAL
        return super().refusal(params, endpoint)


@pytest.fixture(scope="module")
def proxy():
    with ModeratingOpenAI() as upstream:
        client = OpenAIClient(base_url=upstream.base_url, api_key=UPSTREAM_KEY, max_retries=0)
        with ServerThread(make_app(client, secrets=[UPSTREAM_KEY])) as running:
            running.upstream = upstream
            yield running


def test_an_upstream_refusal_reaches_the_sdk_unchanged(proxy) -> None:
    sdk = openai.OpenAI(base_url=proxy.base_url, api_key="participant", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(
            model="gpt-image-2.6-flare", prompt="a red dragon", size="1024x1024", quality="low"
        )
    refused = caught.value
    assert refused.status_code == 400
    assert (refused.code, refused.type, refused.param) == (
        "moderation_blocked",
        "image_generation_user_error",
        None,
    )
    assert refused.body == UPSTREAM_REFUSAL["error"]
    with pytest.raises(openai.BadRequestError) as streamed:  # refused before any stream starts
        sdk.images.generate(
            model="gpt-image-2.6-flare",
            prompt="a red dragon",
            size="1024x1024",
            stream=True,
            partial_images=1,
        )
    assert streamed.value.code == "moderation_blocked"


def test_the_local_list_is_not_applied_in_upstream_mode(proxy) -> None:
    sdk = openai.OpenAI(base_url=proxy.base_url, api_key="participant", max_retries=0)
    calls = len(proxy.upstream.calls)
    result = sdk.images.generate(
        model="gpt-image-2.6-flare", prompt="a massacre of toy soldiers", size="1024x1024", quality="low"
    )
    assert len(result.data) == 1
    assert len(proxy.upstream.calls) == calls + 1  # the upstream decided


# --- the command line -----------------------------------------------------------------------------


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_serve_help_documents_the_option(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--moderation-words FILE" in help_text and "an empty file turns the check off" in help_text


def test_serve_refuses_a_word_list_with_upstream(capsys, tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("banana\n", encoding="utf-8")
    status, _, err = run(
        capsys,
        "serve",
        "--upstream",
        "http://127.0.0.1:9/v1",
        "--moderation-words",
        str(words),
        "--state-dir",
        str(tmp_path / "state"),
    )
    assert status == 2 and "--moderation-words" in err and "upstream API moderates" in err


def test_serve_refuses_to_start_with_a_list_it_cannot_read(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.txt"
    status, _, err = run(
        capsys, "serve", "--moderation-words", str(missing), "--state-dir", str(tmp_path / "s")
    )
    assert status == 2 and f"Could not read the moderation word list {missing}" in err
    broken = tmp_path / "broken.txt"
    broken.write_text("fine\n*\n", encoding="utf-8")
    status, _, err = run(
        capsys, "serve", "--moderation-words", str(broken), "--state-dir", str(tmp_path / "s")
    )
    assert status == 2 and "line 2" in err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_refuses_by_the_file_given(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# the workshop's own list\n[fruit]\nbanana\n", encoding="utf-8")
    port = free_port()
    env = {**os.environ, "IPYIMAGEGEN_SERVER_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "ipyimagegen", "serve", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(
        [*command, "--moderation-words", str(words)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/v1/images/generations"
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process)
        refused = requests.post(
            url, json={"model": "dall-e-2", "prompt": "a banana", "size": "256x256"}, timeout=30
        )
        allowed = requests.post(
            url, json={"model": "dall-e-2", "prompt": "a massacre", "size": "256x256"}, timeout=30
        )
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "content_policy_violation"
    assert allowed.status_code == 200
