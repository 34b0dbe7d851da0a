"""The local-model tests need the ``local`` extra (torch, diffusers): skipped without it, failed in CI."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def require_torch() -> ModuleType:
    """``torch``, once torch and diffusers import; else skip the calling test module (fail it in CI).

    CI installs the extra, so there a missing torch is a broken install, not a reason to skip.
    """
    try:
        importlib.import_module("diffusers")
        return importlib.import_module("torch")
    except ImportError as exc:
        reason = f"the local extra is not installed ({exc.name} is missing): pip install -e '.[local]'"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason, allow_module_level=True)
