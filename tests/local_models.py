"""The local-model tests need the ``local`` extra (torch, diffusers): skipped without it, failed in CI."""

from __future__ import annotations

from types import ModuleType

from absent import require_modules


def require_torch() -> ModuleType:
    """``torch``, once torch and diffusers import; else skip the calling test module (fail it in CI)."""
    return require_modules("diffusers", "torch", install="pip install -e '.[local]'")
