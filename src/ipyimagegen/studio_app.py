"""``ipyimagegen studio``: the studio as an app in the browser, through Voila, on the default backend.

It opens the packaged ``apps/studio.ipynb`` (nothing but the studio: no image is made until the user
clicks). The kernel runs in the folder the command was started from, where the gallery is kept
(``./ipyimagegen-gallery`` unless ``$IPYIMAGEGEN_GALLERY`` says otherwise).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

GALLERY_VARIABLE = "IPYIMAGEGEN_GALLERY"
DRAFT_VARIABLE = "IPYIMAGEGEN_DRAFT"  # as widgets.edit_draft reads it
DEFAULT_PORT = 8866


class StudioAppError(Exception):
    """Voila is missing, or cannot start: the message says what to do."""


def studio_notebook() -> Path:
    """The packaged notebook that shows the studio."""
    return Path(str(resources.files("ipyimagegen") / "apps" / "studio.ipynb"))


def voila_command(port: int = DEFAULT_PORT, open_browser: bool = True, host: str = "127.0.0.1") -> list[str]:
    """The command that serves the studio notebook with Voila."""
    if importlib.util.find_spec("voila") is None:
        raise StudioAppError(
            "Voila is not installed: `pip install voila`, or open JupyterLab and run `ipyimagegen.studio()`."
        )
    command = [sys.executable, "-m", "voila", str(studio_notebook()), f"--port={port}", f"--Voila.ip={host}"]
    if not open_browser:
        command.append("--no-browser")
    return command


def studio_environment(folder: Path) -> dict[str, str]:
    """The kernel's environment: the gallery in ``folder`` unless one is set already, and the
    studio app's own Edit draft."""
    environment = dict(os.environ)
    environment.setdefault(GALLERY_VARIABLE, str(folder / "ipyimagegen-gallery"))
    environment.setdefault(DRAFT_VARIABLE, "ipyimagegen studio")
    return environment


def add_studio(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "studio",
        help="open the studio in the browser (Voila), on the default backend",
        description="Open the studio in the browser through Voila. Nothing is made until you click; the "
        "gallery is kept in ./ipyimagegen-gallery (or $IPYIMAGEGEN_GALLERY).",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the port (default {DEFAULT_PORT})")
    parser.add_argument("--no-browser", action="store_true", help="print the address instead of opening it")
    parser.set_defaults(run=cmd_studio)


def cmd_studio(args: argparse.Namespace) -> int:
    command = voila_command(args.port, open_browser=not args.no_browser)
    print(f"ipyimagegen studio: http://127.0.0.1:{args.port}/ (Ctrl+C stops it)", flush=True)
    return subprocess.call(command, env=studio_environment(Path.cwd()))
