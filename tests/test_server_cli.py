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
from waiting import wait_for_health


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
        health = wait_for_health(f"http://127.0.0.1:{port}", process)
        assert health["auth"] == "open"
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
        wait_for_health(f"http://127.0.0.1:{port}", process)
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


def test_tokens_for_a_class_at_once_go_to_a_private_csv(capsys, state_dir, tmp_path):
    sheet = tmp_path / "class.csv"
    status, out, _ = run(
        capsys, "tokens", "create", "--count", "30", "--prefix", "group-", "--budget", "20",
        "--csv", str(sheet), "--state-dir", state_dir,
    )  # fmt: skip
    assert status == 0 and "group-01 to group-30" in out and str(sheet) in out and "igt-" not in out
    assert oct(sheet.stat().st_mode & 0o777) == "0o600"
    import csv

    with sheet.open(newline="") as rows:
        lines = list(csv.DictReader(rows))
    assert [line["name"] for line in lines] == [f"group-{n:02d}" for n in range(1, 31)]
    store = TokenStore.in_dir(state_dir)
    for line in lines:
        info = store.authenticate(line["token"])
        assert info.name == line["name"] and info.budget == 20 and line["budget_images"] == "20"
    # The same names again: refused before any is made; an existing file is never written over.
    status, _, err = run(
        capsys, "tokens", "create", "--count", "3", "--prefix", "group-", "--state-dir", state_dir
    )
    assert status == 2 and "group-01" in err
    status, _, err = run(
        capsys,
        "tokens",
        "create",
        "--count",
        "3",
        "--prefix",
        "other-",
        "--csv",
        str(sheet),
        "--state-dir",
        state_dir,
    )
    assert status == 2 and "exists already" in err
    assert len(TokenStore.in_dir(state_dir).tokens()) == 30


def test_tokens_for_a_class_printed_without_a_csv(capsys, state_dir):
    status, out, _ = run(capsys, "tokens", "create", "--count", "3", "-q", "--state-dir", state_dir)
    tokens = out.split()
    assert status == 0 and len(tokens) == 3 and all(t.startswith("igt-") for t in tokens)
    names = [info.name for info in TokenStore.in_dir(state_dir).tokens()]
    assert sorted(names) == ["participant-01", "participant-02", "participant-03"]
    with pytest.raises(SystemExit):
        main(["tokens", "create", "--count", "0", "--state-dir", state_dir])
    with pytest.raises(SystemExit):
        main(["tokens", "create", "--count", "2", "--name", "x", "--state-dir", state_dir])
    status, _, err = run(
        capsys, "tokens", "create", "--name", "solo", "--csv", "x.csv", "--state-dir", state_dir
    )
    assert status == 2 and "--count" in err


def test_tokens_expire_at_the_time_given(capsys, state_dir):
    status, out, _ = run(
        capsys, "tokens", "create", "--name", "eve", "--expires", "3h", "--state-dir", state_dir
    )
    assert status == 0 and "until" in out
    info = TokenStore.in_dir(state_dir).get("eve")
    assert info.expires == pytest.approx(time.time() + 3 * 3600, abs=60) and info.active
    status, out, _ = run(
        capsys, "tokens", "create", "--count", "2", "--prefix", "day2-", "--expires", "2099-01-01T09:00",
        "--state-dir", state_dir,
    )  # fmt: skip
    assert status == 0 and "2099-01-01 09:00" in out
    for bad in ("yesterday", "2001-01-01T00:00", "-3h"):
        with pytest.raises(SystemExit):
            main(["tokens", "create", "--name", "x", "--expires", bad, "--state-dir", state_dir])
        assert "--expires" in capsys.readouterr().err


def test_an_expired_token_is_refused_and_says_so(tmp_path):
    import openai

    from ipyimagegen.engines.preview import PreviewEngine
    from ipyimagegen.server import ServerThread, make_app

    store = TokenStore.in_dir(tmp_path)
    soon, _ = store.create("frank", expires=time.time() + 1.0)
    old_file_token, _ = store.create("grace")
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key=soon, max_retries=0)
        sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
        time.sleep(1.2)
        with pytest.raises(openai.AuthenticationError, match="expired at"):
            sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
        openai.OpenAI(base_url=server.base_url, api_key=old_file_token, max_retries=0).images.generate(
            model="dall-e-2", prompt="a fox", size="256x256"
        )
    info = store.get("frank")
    assert info.expired and not info.active and info.to_dict()["expires"] is not None
    assert "expired" in _status_of(info)


def _status_of(info) -> str:
    from ipyimagegen.cli import _status

    return _status(info)


def test_a_token_file_from_before_expiry_is_read_and_upgraded(tmp_path):
    import sqlite3

    path = tmp_path / "tokens.sqlite3"
    with sqlite3.connect(path) as db:  # the table as it was before tokens could expire
        db.execute(
            "CREATE TABLE tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, budget INTEGER,"
            " rate TEXT, admin INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, revoked REAL,"
            " requests INTEGER NOT NULL DEFAULT 0, images INTEGER NOT NULL DEFAULT 0,"
            " errors INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0, last_used REAL)"
        )
        db.execute("INSERT INTO tokens (id, name, hash, created) VALUES ('tok_1', 'old', 'abc', 1.0)")
    store = TokenStore(path)
    (info,) = store.tokens()
    assert info.name == "old" and info.expires is None and info.active
    store.create("new", expires=time.time() + 60)


@pytest.mark.parametrize(
    ("argv", "told"),
    [
        (["--replicas", "2"], "--replicas is for --engine ray"),
        (
            ["--engine", "diffusers", "--model", "m", "--gpus-per-replica", "1"],
            "--gpus-per-replica is for --engine ray",
        ),
        (["--engine", "ray", "--autoscale", "3:1"], "MIN:MAX replicas"),
        (["--engine", "ray", "--autoscale", "0:0"], "MIN:MAX replicas"),
        (["--engine", "ray", "--replicas", "2", "--autoscale", "1:4"], "not allowed with argument"),
        (["--engine", "ray", "--gpus-per-replica", "-1"], "number of GPUs or CPUs"),
        (["--engine", "ray", "--model", "/no/such/model"], "There is no model at /no/such/model"),
    ],
)
def test_ray_settings_are_checked_before_anything_starts(capsys, state_dir, argv, told) -> None:
    try:
        status, _, err = run(capsys, "serve", *argv, "--state-dir", state_dir)
    except SystemExit as stop:  # argparse refuses the value itself
        status, err = int(stop.code or 0), capsys.readouterr().err
    assert status != 0 and told in err
