"""Draw one SVG document with resvg, in a process of its own.

:func:`ipyimagegen.svg.rasterise` runs this file as ``python -I svg_raster.py`` (isolated: neither
this folder nor the working directory is on the import path) so that a drawing that makes resvg
crash, stall or swallow memory ends this process, never the caller's. It reads one JSON request
on stdin (``svg``: the markup, already stripped of outside references; ``width`` and ``height``: the
box the picture is fitted into; ``resources_dir``: an empty folder; ``memory_bytes``: the address
space allowed; ``search_path``: where resvg-py is installed), and writes the PNG on stdout, or a
reason on stderr with a non-zero exit status (:data:`EXIT_REFUSED`, :data:`EXIT_NO_RENDERER`,
:data:`EXIT_MEMORY`; a crash ends it by a signal).

It imports nothing of ipyimagegen, so that it starts in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

EXIT_REFUSED = 2
"""resvg refused the document (it says why on stderr)."""
EXIT_NO_RENDERER = 3
"""resvg-py is not installed."""
EXIT_MEMORY = 4
"""Drawing needed more memory than allowed."""


def limit_memory(memory_bytes: int) -> None:
    """Cap this process's address space (where the platform has ``resource``: not on Windows)."""
    try:
        import resource
    except ImportError:
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        memory_bytes = min(memory_bytes, hard)
    with contextlib.suppress(ValueError, OSError):  # not enforced everywhere (macOS): the timeout still is
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, hard))


def draw(request: dict[str, Any]) -> bytes:
    """The PNG bytes resvg draws for ``request`` (raises ValueError when resvg refuses it)."""
    import resvg_py

    return bytes(
        resvg_py.svg_to_bytes(
            svg_string=request["svg"],
            width=int(request["width"]),
            height=int(request["height"]),
            resources_dir=request["resources_dir"],
        )
    )


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    limit_memory(int(request["memory_bytes"]))
    if request.get("search_path"):
        sys.path.append(request["search_path"])  # after the standard library: nothing is shadowed
    try:
        png = draw(request)
    except ImportError:
        return EXIT_NO_RENDERER
    except MemoryError:
        return EXIT_MEMORY
    except (ValueError, RuntimeError) as exc:
        sys.stderr.write(str(exc)[:500])
        return EXIT_REFUSED
    sys.stdout.buffer.write(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
