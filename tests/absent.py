"""Tools the tests need and CI installs (Chromium, PostgreSQL, torch, Ray): where one is absent, a
test is skipped with the command that installs it; in CI (``$CI`` set) it fails instead."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def tool_missing(reason: str) -> NoReturn:
    """Skip the calling test (or test module) for ``reason``; fail it in CI, which installs every tool."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_modules(*names: str, install: str) -> ModuleType:
    """The last of ``names``, once all of them import; else :func:`tool_missing` with ``install``."""
    module = None
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            tool_missing(f"{exc.name} is missing: {install}")
    assert module is not None
    return module
