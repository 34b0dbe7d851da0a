"""The server's settings, in one frozen :class:`ServerConfig`: each default is written here and nowhere else.

``ipyimagegen serve`` builds one from its arguments (its defaults read from here); a program gives
one to :func:`~ipyimagegen.server.app.make_app`. The participant tokens and the secrets to keep out
of every answer are not settings: ``make_app`` takes them beside the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .tokens import Rate

MB = 1024 * 1024
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
"""The ``Host`` names a server answers to by default: loopback only."""


@dataclass(frozen=True)
class ServerConfig:
    """How a server serves: its limits, its queue and who may reach it.

    ``max_upload_bytes``: the largest request body. ``request_timeout``: seconds one call may take
    (then 504), waiting for its turn included. ``url_ttl``: seconds a ``response_format=url`` image
    stays available. ``max_concurrency``: calls the backend runs at once (others wait their turn,
    by participant). ``upstream_rate``: images started per period (a :class:`Rate`, or text such as
    ``"300/min"``), shared out by participant in turn (:mod:`~ipyimagegen.server.fair_queue`; None: no limit).
    ``max_pixels``: the most pixels of one requested image (3840x2160, the largest any live OpenAI
    model makes). ``pixels_at_once``: what the engine may work on at once, inputs and outputs of all
    calls together (more waits its turn; one larger call runs alone). ``any_model``: take any model
    name (else a model the backend does not serve is a 404). ``cors_origins``: browser origins
    allowed to call (a page on any other origin is refused). ``allowed_hosts``: the names the
    ``Host`` header may carry (``"*"`` for any, when the server listens on every address).
    ``class_wall``: let participants share pictures that the host's page shows
    (:mod:`~ipyimagegen.server.wall`; needs participant tokens). ``wall_rate``: pictures one
    participant may share per period (admin tokens: no limit). ``max_queue_wait``: the longest a call
    may wait for its turn; a call that would wait longer is answered at once, 429 ``workshop_busy``
    with its place and when to come back. ``replica_name``: this server's name in a room of servers
    sharing a database (the same across restarts, so a restarted server gives back what its last run
    reserved; None: one of its own, this host and process).
    """

    max_upload_bytes: int = 25 * MB
    request_timeout: float = 300.0
    url_ttl: float = 3600.0
    max_concurrency: int = 4
    upstream_rate: Rate | None = None
    max_pixels: int = 8_294_400
    pixels_at_once: int = 64_000_000
    any_model: bool = False
    cors_origins: Sequence[str] = ()
    allowed_hosts: Sequence[str] = LOOPBACK_NAMES
    class_wall: bool = False
    wall_rate: Rate = Rate(6, 60.0)
    max_queue_wait: float = 240.0
    replica_name: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_upload_bytes",
            "request_timeout",
            "max_concurrency",
            "max_pixels",
            "pixels_at_once",
            "max_queue_wait",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0, got {getattr(self, name)!r}")
        if self.url_ttl < 0:
            raise ValueError(f"url_ttl is a number of seconds, 0 or more, got {self.url_ttl!r}")
        for name in ("upstream_rate", "wall_rate"):
            value = getattr(self, name)
            if isinstance(value, str):  # "300/min", as the command line takes it
                object.__setattr__(self, name, Rate.parse(value))
            elif not isinstance(value, Rate | None) or (name == "wall_rate" and value is None):
                raise TypeError(f"{name} is a Rate such as Rate(300, 60.0) or '300/min', got {value!r}")
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))  # frozen: no list to change later
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))


DEFAULTS = ServerConfig()
"""Every setting at its default (``ipyimagegen serve``'s help reads them from here)."""
