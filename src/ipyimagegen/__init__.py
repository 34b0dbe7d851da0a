"""ipyimagegen: Jupyter widgets to explore text-to-image models through the OpenAI Images API."""

from .api import *  # noqa: F403
from .api import __all__ as _api_all
from .models import MODELS, ModelSpec, model_spec

__version__ = "0.1.0"

__all__ = [*_api_all, "MODELS", "ModelSpec", "model_spec", "__version__"]
