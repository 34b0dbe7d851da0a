"""The ``ipyimagegen`` command: tokens, and the safety checks of ``serve``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from ipyimagegen.cli import is_loopback, main
from ipyimagegen.server import TokenStore


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / "state")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_tokens_create_shows_the_token_once(capsys, state_dir):
    status, out, _ = run(
        capsys,
        "tokens",
        "create",
        "--name",
        "alice",
        "--budget",
        "50",
        "--rate",
        "10/min",
        "--state-dir",
        state_dir,
    )
    assert status == 0
    token = next(word for word in out.split() if word.startswith("igt-"))
    assert "budget 50 images" in out and "10 requests per minute" in out
    store = TokenStore.in_dir(state_dir)
    assert store.authenticate(token).name == "alice"

    status, out, _ = run(capsys, "tokens", "list", "--state-dir", state_dir)
    assert status == 0 and "alice" in out and token not in out
    status, out, _ = run(capsys, "tokens", "usage", "--state-dir", state_dir)
    assert status == 0 and "alice" in out and token not in out


def test_tokens_quiet_usage_json_and_revoke(capsys, state_dir):
    status, out, _ = run(capsys, "tokens", "create", "--name", "bob", "-q", "--state-dir", state_dir)
    token = out.strip()
    assert status == 0 and token.startswith("igt-")
    status, out, _ = run(capsys, "tokens", "usage", "--json", "--state-dir", state_dir)
    assert [(r["name"], r["requests"], r["active"]) for r in json.loads(out)] == [("bob", 0, True)]
    status, out, _ = run(capsys, "tokens", "revoke", "bob", "--state-dir", state_dir)
    assert status == 0 and "Revoked" in out
    assert not TokenStore.in_dir(state_dir).authenticate(token).active
    status, _, err = run(capsys, "tokens", "revoke", "bob", "--state-dir", state_dir)
    assert status == 2 and "No active token" in err


def test_tokens_create_refuses_duplicates_and_bad_rates(capsys, state_dir):
    run(capsys, "tokens", "create", "--name", "carol", "--state-dir", state_dir)
    status, _, err = run(capsys, "tokens", "create", "--name", "carol", "--state-dir", state_dir)
    assert status == 2 and "already an active token" in err
    with pytest.raises(SystemExit):
        main(["tokens", "create", "--name", "dan", "--rate", "lots", "--state-dir", state_dir])
    assert "10/min" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_serve_refuses_a_public_address_without_tokens(capsys, state_dir, host):
    status, _, err = run(capsys, "serve", "--host", host, "--state-dir", state_dir)
    assert status == 2
    assert "without participant tokens" in err and "tokens create" in err
    assert not os.path.exists(state_dir)  # refusing made nothing


def test_serve_refuses_inconsistent_engine_options(capsys, state_dir):
    status, _, err = run(capsys, "serve", "--engine", "diffusers", "--state-dir", state_dir)
    assert status == 2 and "--model" in err
    status, _, err = run(
        capsys,
        "serve",
        "--upstream",
        "http://127.0.0.1:9/v1",
        "--engine",
        "diffusers",
        "--state-dir",
        state_dir,
    )
    assert status == 2 and "--upstream" in err


def test_loopback_addresses():
    assert all(is_loopback(host) for host in ("127.0.0.1", "localhost", "::1", "127.0.0.5", "[::1]"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "10.0.0.1", "myhost"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_runs_and_prints_the_base_url(tmp_path):
    """``python -m ipyimagegen serve`` in a subprocess: the banner, then a working server."""
    port = free_port()
    env = {**os.environ, "IPYIMAGEGEN_SERVER_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ipyimagegen", "serve", "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        assert health.json()["auth"] == "open"
        answer = requests.post(
            base_url + "/images/generations",
            json={"model": "dall-e-2", "prompt": "a fox", "size": "256x256"},
            timeout=30,
        )
        assert answer.status_code == 200
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert f'base_url="{base_url}"' in output
    assert f"OPENAI_BASE_URL={base_url}" in output


def test_serve_takes_its_limits_from_the_command_line(tmp_path):
    port = free_port()
    env = {**os.environ, "IPYIMAGEGEN_SERVER_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "ipyimagegen", "serve", "--port", str(port), "--log-level", "warning"]
    command += ["--max-pixels", "1048576", "--megapixels-at-once", "8", "--any-model"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/v1/images/generations"
        anyone = requests.post(
            url, json={"model": "my-own-model", "prompt": "a fox", "size": "512x512"}, timeout=30
        )
        too_big = requests.post(
            url, json={"model": "gpt-image-2", "prompt": "a fox", "size": "1536x1024"}, timeout=30
        )
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert anyone.status_code == 200
    assert too_big.status_code == 400 and "at most 1,048,576 pixels" in too_big.json()["error"]["message"]


def test_serve_refuses_limits_that_are_not_positive(capsys, state_dir):
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--max-pixels", "0", "--state-dir", state_dir])
    assert exited.value.code == 2
    assert "argument --max-pixels: expected a whole number above 0, got '0'" in capsys.readouterr().err
