"""Shared pytest configuration: no test may reach the network or a user's real configuration."""

from __future__ import annotations

import pytest

_CONFIG_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
    "OPENAI_API_VERSION",
    "IPYIMAGEGEN_MODEL",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no real key or endpoint unless they set one."""
    for name in _CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
