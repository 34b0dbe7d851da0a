"""The instant backend behind the project's server, in a process of its own (started by the benchmarks).

``python -m bench.instant_server [--delay SECONDS]`` prints the API's base URL on one line,
then serves until its standard input closes (so it never outlives the benchmark that started it).
"""

from __future__ import annotations

import argparse
import sys

from ipyimagegen.server import ServerThread, make_app
from ipyimagegen.server.config import ServerConfig

from .fixtures import InstantBackend, photo_like_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each request takes")
    delay = parser.parse_args().delay
    for side in (256, 512, 1024):
        photo_like_png(side)  # made before the first request, not during it
    app = make_app(
        InstantBackend(delay_s=delay), ServerConfig(max_concurrency=64)
    )  # a model service serves many at once
    with ServerThread(app) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
