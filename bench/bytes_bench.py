"""Bytes sent to the browser per result: the studio's grid against the naive way.

Method: every widget sends through a recording comm (see :mod:`bench.comms`): each message is
serialized by jupyter_client's Session into the frames a kernel sends (signature, header,
parent header, metadata, JSON content) and its binary buffers are added. The grid's figure is
everything sent from the Generate click until the grid is idle (placeholder tiles, thumbnails,
labels, buttons, progress and status, and the History tab's refresh — the History tab is open,
the costlier case: the studio saves to its gallery, here in a temporary folder), divided by the
number of images. The naive way is one
``ipywidgets.Image`` holding the full PNG. "Enlarge" on a tile must send the full image: that is
checked too (one click away).
"""

from __future__ import annotations

import tempfile

import ipywidgets as widgets

from .comms import measured, recording_comms
from .fixtures import InstantBackend, photo_like_png
from .report import RATIO, Figure, Goal, Options, say
from .studio_bench import SIZE, N, generate_once, new_studio

KB = 1024


def run(options: Options) -> list[Figure]:
    png = photo_like_png(1024)
    folder = tempfile.TemporaryDirectory(prefix="ipyimagegen-bench-bytes-")
    with folder, recording_comms() as recorder:
        backend = InstantBackend()
        studio = new_studio(backend, folder.name)
        studio.select("History")  # it refreshes after every result while it is open
        generate_once(studio, backend)  # warm-up: a grid with a result in it already
        with measured(recorder) as grid_traffic:
            generate_once(studio, backend)
        (traffic,) = grid_traffic
        with measured(recorder) as naive_traffic:
            naive = widgets.Image(value=photo_like_png(1024), format="png")
        (naive_sent,) = naive_traffic
        with measured(recorder) as enlarge_traffic:
            studio.grid.act(studio.grid.tiles[0], "enlarge")
        (enlarge_sent,) = enlarge_traffic
        naive.close()
        studio.close()
    per_result = traffic.total_bytes / N
    say(
        f"method: widget messages serialized as a kernel sends them (jupyter_client Session frames + buffers); "
        f"grid = all sent from click to idle for n={N} (History tab refresh included), / {N}; "
        "naive = one ipywidgets.Image of the full PNG"
    )
    say(
        f"grid and History refresh: {traffic.messages} messages, {traffic.total_bytes / KB:.1f} KB for {N} results "
        f"({traffic.buffer_bytes / KB:.1f} KB of it thumbnails, grid's and History's); "
        f"naive: {naive_sent.messages} message(s), "
        f"{naive_sent.total_bytes / KB:.0f} KB for a {len(png) / KB:.0f} KB PNG at {SIZE}"
    )
    return [
        Figure(
            f"grid KB per {SIZE} result vs full PNG Image",
            per_result / KB,
            "KB",
            Goal(0.1, on=RATIO, compare="<="),
            peer=naive_sent.total_bytes / KB,
        ),
        Figure(
            "Enlarge click sends the full image",
            enlarge_sent.total_bytes / KB,
            "KB",
            Goal(len(png) / KB, compare=">="),
        ),
    ]
