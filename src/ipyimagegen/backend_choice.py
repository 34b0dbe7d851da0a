"""Choosing the backend from the environment, and describing it in one line for the studio.

``default_backend()`` looks, in order, for:

1. ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL``: the OpenAI API, or a compatible (workshop) server;
2. ``AZURE_OPENAI_ENDPOINT``: an Azure OpenAI deployment;
3. ``IPYIMAGEGEN_MODEL``: a local diffusers model folder (the ``local`` extra);
4. none of them: the offline preview engine.

The local engines check prompts against the default moderation word list, or the file
``IPYIMAGEGEN_MODERATION_WORDS`` names (an empty file turns the check off).
"""

from __future__ import annotations

from .api.backend import Backend
from .api.config import env
from .engines.preview import PreviewEngine
from .errors import ConfigurationError
from .moderation import WORDS_VARIABLE

PREVIEW_DESCRIPTION = (
    "Offline preview engine: images are drawn locally, no model is called. "
    "To use OpenAI set OPENAI_API_KEY; for a workshop server set OPENAI_BASE_URL and a token."
)


def backend_kind() -> str:
    """Which backend the environment asks for: ``openai``, ``azure``, ``local`` or ``preview``."""
    if env("OPENAI_API_KEY") or env("OPENAI_BASE_URL"):
        return "openai"
    if env("AZURE_OPENAI_ENDPOINT"):
        return "azure"
    if env("IPYIMAGEGEN_MODEL"):
        return "local"
    return "preview"


def default_backend() -> Backend:
    """The backend the environment configures (see the module's docstring); the preview engine by default."""
    kind = backend_kind()
    if kind == "openai":
        from .api.client import OpenAIClient

        return OpenAIClient()
    if kind == "azure":
        from .api.client import AzureOpenAIClient

        return AzureOpenAIClient()
    if kind == "local":
        return _diffusers_engine(env("IPYIMAGEGEN_MODEL") or "")
    return PreviewEngine(moderation_words=env(WORDS_VARIABLE))


def _diffusers_engine(model: str) -> Backend:
    """The local engine; torch and diffusers are imported as it loads, so both steps are guarded."""
    try:
        from .engines.diffusers_engine import DiffusersEngine

        return DiffusersEngine(model, moderation_words=env(WORDS_VARIABLE))
    except ImportError as exc:
        missing = exc.name or str(exc)
        raise ConfigurationError(
            f"IPYIMAGEGEN_MODEL is set, but the local diffusers engine cannot run ({missing} is missing).",
            hint='Install it with: pip install "ipyimagegen[local]", or unset IPYIMAGEGEN_MODEL.',
        ) from None


def describe_backend(backend: Backend) -> str:
    """One line for the studio's status: what makes the images."""
    if isinstance(backend, PreviewEngine):
        return PREVIEW_DESCRIPTION
    return f"Using {backend.name}"
