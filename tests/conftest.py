"""Shared pytest configuration: no test may reach the network or a user's real configuration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

_CONFIG_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
    "AZURE_OPENAI_AD_TOKEN",
    "OPENAI_API_VERSION",
    "IPYIMAGEGEN_MODEL",
    "IPYIMAGEGEN_MODERATION_WORDS",
    "IPYIMAGEGEN_DATABASE",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests see no real key or endpoint unless they set one, and a default gallery and token store of their own.

    A studio opened without a gallery argument saves to ``$IPYIMAGEGEN_GALLERY``: a fresh temporary
    folder per test (made only when a gallery is opened), never the repository.
    """
    for name in _CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IPYIMAGEGEN_GALLERY", str(tmp_path_factory.mktemp("default") / "ipyimagegen-gallery"))
    # a server started by a test keeps its tokens apart from the user's own (~/.local/share/ipyimagegen)
    monkeypatch.setenv("IPYIMAGEGEN_SERVER_DIR", str(tmp_path_factory.mktemp("server")))


@pytest.fixture(autouse=True)
def _stop_canvas_recorders() -> Iterator[None]:
    """ipycanvas's canvas manager is shared: a test's recorders stop listening when it ends."""
    yield
    from canvas_recorder import close_all

    close_all()
