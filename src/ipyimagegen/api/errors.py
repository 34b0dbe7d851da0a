"""The error tree, as the API layer exports it (it lives at the bottom, in :mod:`ipyimagegen.errors`)."""

from ..errors import *  # noqa: F403
from ..errors import __all__ as __all__  # noqa: F401
