"""The server's settings: one frozen ServerConfig, its defaults the command line's, and the app reading it."""

from __future__ import annotations

import dataclasses
import socket

import pytest
import requests

from ipyimagegen.cli import build_parser, serve_config
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import Rate, ServerConfig, ServerThread, make_app
from ipyimagegen.server.config import DEFAULTS, MB


def test_the_defaults_are_the_documented_limits() -> None:
    config = ServerConfig()
    assert (config.request_timeout, config.url_ttl, config.max_upload_bytes) == (300.0, 3600.0, 25 * MB)
    assert (config.max_pixels, config.pixels_at_once, config.max_concurrency) == (3840 * 2160, 64_000_000, 4)
    assert config.wall_rate == Rate(6, 60.0) and config.upstream_rate is None
    assert config.allowed_hosts == ("127.0.0.1", "localhost", "::1") and config.cors_origins == ()


def test_a_config_cannot_change_once_made() -> None:
    origins = ["http://notebook.example"]
    config = ServerConfig(cors_origins=origins)
    origins.append("http://evil.example")  # the caller's list changing later changes nothing
    assert config.cors_origins == ("http://notebook.example",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_concurrency = 100  # type: ignore[misc]


def test_a_rate_may_be_given_as_the_command_line_writes_it() -> None:
    config = ServerConfig(upstream_rate="300/min", wall_rate="2/hour")  # type: ignore[arg-type]
    assert config.upstream_rate == Rate(300, 60.0) and config.wall_rate == Rate(2, 3600.0)


@pytest.mark.parametrize(
    ("settings", "told"),
    [
        ({"max_concurrency": 0}, "max_concurrency must be above 0, got 0"),
        ({"request_timeout": -1.0}, "request_timeout must be above 0"),
        ({"url_ttl": -5.0}, "url_ttl is a number of seconds, 0 or more"),
        ({"upstream_rate": "lots"}, "A rate looks like '10/min'"),
    ],
)
def test_a_setting_out_of_range_says_what_it_takes(settings: dict[str, object], told: str) -> None:
    with pytest.raises(ValueError, match=told):
        ServerConfig(**settings)  # type: ignore[arg-type]


def test_a_wall_rate_of_none_is_refused() -> None:
    with pytest.raises(TypeError, match="wall_rate is a Rate"):
        ServerConfig(wall_rate=None)  # type: ignore[arg-type]


def test_serve_defaults_are_the_configs() -> None:
    args = build_parser().parse_args(["serve"])
    config = serve_config(args, PreviewEngine())
    assert config == dataclasses.replace(
        DEFAULTS, allowed_hosts=config.allowed_hosts, replica_name=f"{socket.gethostname()}:8000"
    )  # the server's name in a room: the same when it restarts on its port
    assert set(DEFAULTS.allowed_hosts) <= set(config.allowed_hosts)


def test_serve_builds_its_config_from_its_arguments() -> None:
    argv = ["serve", "--timeout", "12", "--url-ttl", "60", "--max-upload-mb", "2", "--concurrency", "3"]
    argv += [
        "--upstream-rate",
        "30/min",
        "--max-pixels",
        "1048576",
        "--megapixels-at-once",
        "8",
        "--any-model",
    ]
    argv += ["--cors-origin", "http://notebook.example", "--class-wall", "--wall-rate", "1/min"]
    config = serve_config(build_parser().parse_args(argv), PreviewEngine())
    assert config.request_timeout == 12 and config.url_ttl == 60 and config.max_upload_bytes == 2 * MB
    assert config.max_concurrency == 3 and config.upstream_rate == Rate(30, 60.0)
    assert config.max_pixels == 1_048_576 and config.pixels_at_once == 8_000_000 and config.any_model
    assert config.cors_origins == ("http://notebook.example",) and config.class_wall
    assert config.wall_rate == Rate(1, 60.0)


def test_the_app_reads_its_config() -> None:
    config = ServerConfig(max_concurrency=2, upstream_rate=Rate(90, 60.0), max_pixels=512 * 512)
    with ServerThread(make_app(PreviewEngine(), config)) as server:
        health = requests.get(server.url + "/health", timeout=10).json()
        too_big = requests.post(
            server.base_url + "/images/generations",
            json={"prompt": "a fox", "model": "dall-e-2", "size": "1024x1024"},
            timeout=10,
        )
        assert requests.get(server.url + "/health", timeout=10).status_code == 200
    assert health["queue"] == {"running": 0, "waiting": 0, "at_once": 2, "rate": "90/min", "shared": False}
    assert too_big.status_code == 400
    assert too_big.json() == {
        "error": {
            "message": "size 1024x1024 is 1,048,576 pixels; this server makes at most 262,144 pixels per image: "
            "ask for a smaller size.",
            "type": "invalid_request_error",
            "param": "size",
            "code": "invalid_value",
        }
    }
