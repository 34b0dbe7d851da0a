"""Run a server in a background thread: for tests, notebooks and benchmarks.

>>> with ServerThread(make_app(PreviewEngine(), ServerConfig(max_concurrency=2))) as server:   # doctest: +SKIP
...     client = OpenAIClient(base_url=server.base_url, api_key="unused")
"""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from .connections import ConnectionLimits, server_config


class ServerThread:
    """uvicorn serving ``app`` on ``host`` (a free port unless ``port`` is given), in a daemon thread.

    ``url`` is the server's root (``http://127.0.0.1:PORT``); ``base_url`` is the API's
    (``.../v1``), the one to give a client. Stop it with :meth:`stop` or a ``with`` block.
    ``limits``: the read deadlines and connection limits (:mod:`~ipyimagegen.server.connections`;
    ``ipyimagegen serve``'s defaults when None).
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        access_log: bool = False,
        limits: ConnectionLimits | None = None,
    ) -> None:
        config = server_config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
            lifespan="auto",
            limits=limits,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = port

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start serving; returns once the port is open (RuntimeError if it does not open in ``timeout``)."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._server.run, name="ipyimagegen-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"The server did not start on {self.host}:{self.port or '(a free port)'}.")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"ServerThread({self.url!r}, {state})"
