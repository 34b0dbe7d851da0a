"""The backend and gallery protocols are complete: every backend and gallery conforms, and no code
probes one with ``getattr``/``hasattr`` (a caller uses the protocol, or an ``isinstance`` check
against a smaller one)."""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

from absent import require_modules
from ipyimagegen.api.backend import Backend, BaseBackend, ClassWall, Proxying, WorkshopBudget
from ipyimagegen.api.client import AzureOpenAIClient, OpenAIClient
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.gallery import Gallery, GalleryReader, GalleryStore, GalleryWriter
from ipyimagegen.models import GENERATIONS
from ipyimagegen.server import ServerThread, make_app

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ipyimagegen"

PROBED = re.compile(r"(backend|gallery|engine|client|upstream)$", re.IGNORECASE)
"""What a backend or a gallery is called in the code (``backend``, ``self.gallery``, ``self.engine``)."""

STILL_PROBED: dict[str, set[str]] = {}
"""Probes left on purpose, by file (relative to the package) and the probed expression's source."""


def _probes(path: Path) -> list[tuple[int, str]]:
    """``getattr(x, "name")``, ``getattr(x, name, default)`` and ``hasattr(x, ...)`` calls whose ``x`` is
    named as a backend or a gallery is: ``(line, source of x)``. ``getattr(x, variable)`` with no
    default dispatches by name (a remote call) and is no probe."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args):
            continue
        kind, target = node.func.id, node.args[0]
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if kind not in ("getattr", "hasattr") or not PROBED.search(name):
            continue
        by_variable = kind == "getattr" and len(node.args) == 2 and not isinstance(node.args[1], ast.Constant)
        if not by_variable:
            found.append((node.lineno, ast.unparse(target)))
    return found


def test_nothing_probes_a_backend_or_a_gallery() -> None:
    found = {
        f"{path.relative_to(PACKAGE)}:{line}: {target}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, target in _probes(path)
        if target not in STILL_PROBED.get(str(path.relative_to(PACKAGE)), set())
    }
    assert not found, "use the Backend or gallery protocols instead of probing:\n" + "\n".join(sorted(found))


def test_the_probe_finder_finds_the_probes_it_is_for(tmp_path: Path) -> None:
    code = tmp_path / "probing.py"
    code.write_text(
        "def f(self, backend, gallery, engine, reader, name):\n"
        "    getattr(backend, 'spec_for', None)\n"
        "    hasattr(self.gallery, 'export')\n"
        "    getattr(gallery, name, None)\n"
        "    getattr(self.engine, 'local')\n"
        "    getattr(engine, name)(1)\n"  # a call by name: no probe
        "    getattr(reader, 'x', None)\n"  # not a backend or gallery's name
    )
    assert _probes(code) == [(2, "backend"), (3, "self.gallery"), (4, "gallery"), (5, "self.engine")]


# -- every backend is a whole Backend ------------------------------------------------------------


def test_the_backends_conform_to_the_protocols() -> None:
    preview = PreviewEngine()
    client = OpenAIClient(base_url="http://127.0.0.1:9/v1", api_key="unused")
    azure = AzureOpenAIClient(
        endpoint="https://example.openai.azure.com", deployment="gpt-image-1", api_key="k"
    )
    for backend in (preview, client, azure):
        assert isinstance(backend, Backend) and isinstance(backend, ClassWall)
        assert isinstance(backend, WorkshopBudget)
    assert isinstance(client, Proxying) and isinstance(azure, Proxying)
    assert not isinstance(preview, Proxying)  # an engine makes its own answers
    preview.close()  # nothing to let go of
    client.close()
    azure.close()


def test_the_keyword_methods_show_the_images_api_parameters() -> None:
    """What a notebook shows for ``backend.generate(``: the protocol's own signature, the same as the
    implementation's (a property returning ``Callable[..., ...]`` shows nothing)."""
    for method in ("generate", "edit", "create_variation", "vary"):
        declared = inspect.signature(getattr(Backend, method))
        assert declared == inspect.signature(getattr(BaseBackend, method)), method
    generate = inspect.signature(Backend.generate).parameters
    assert {"prompt", "model", "n", "size", "quality", "seed", "on_partial", "timeout"} <= set(generate)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for name, p in generate.items() if name != "self")


CONFORMANCE = """
from ipyimagegen.api.backend import Backend, ClassWall, Proxying, WorkshopBudget
from ipyimagegen.api.client import AzureOpenAIClient, OpenAIClient
from ipyimagegen.engines.diffusers_engine import DiffusersEngine
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.engines.ray_serve import RayBackend
from ipyimagegen.gallery import Gallery, GalleryStore


def conforms(
    preview: PreviewEngine,
    diffusers: DiffusersEngine,
    ray: RayBackend,
    client: OpenAIClient,
    azure: AzureOpenAIClient,
    gallery: Gallery,
) -> None:
    backends: list[Backend] = [preview, diffusers, ray, client, azure]
    walls: list[ClassWall] = [preview, diffusers, ray, client, azure]
    budgets: list[WorkshopBudget] = [preview, diffusers, ray, client, azure]
    proxies: list[Proxying] = [client, azure]
    store: GalleryStore = gallery
"""


def test_mypy_proves_every_backend_and_the_gallery_conform(tmp_path: Path) -> None:
    require_modules("mypy", install='pip install -e ".[test]"')
    checked = tmp_path / "conformance.py"
    checked.write_text(CONFORMANCE + "\n\nclass Lacking:\n    name = 'x'\n\n\nlacking: Backend = Lacking()\n")
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(checked)],
        cwd=PACKAGE.parents[1],
        env={**os.environ, "MYPYPATH": str(PACKAGE.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and '"Lacking", variable has type "Backend"' in errors[0], run.stdout


# -- galleries ---------------------------------------------------------------------------------


def test_a_gallery_is_a_store_and_a_saving_only_object_is_just_a_writer(tmp_path: Path) -> None:
    class SavesOnly:
        def save_response(self, response: object, parent_id: str | None = None) -> list[object]:
            return []

    with Gallery(tmp_path / "gallery") as gallery:
        assert isinstance(gallery, GalleryStore)
        assert isinstance(gallery, GalleryReader) and isinstance(gallery, GalleryWriter)
    writer = SavesOnly()
    assert isinstance(writer, GalleryWriter)
    assert not isinstance(writer, GalleryReader) and not isinstance(writer, GalleryStore)


# -- the workshop pages a server names come with its model list ---------------------------------


def test_a_workshop_servers_queue_is_read_from_its_model_list_and_forgotten_with_it() -> None:
    with ServerThread(make_app(PreviewEngine())) as server:
        client = OpenAIClient(base_url=server.base_url, api_key="unused")
        assert client.workshop.queue_url is None  # nothing asked yet: a call never waits for the list
        assert "dall-e-2" in client.models(GENERATIONS)
        assert client.workshop.queue_url == f"{server.base_url}/queue"
        assert client.workshop.wall_url is None and not client.shares_pictures  # no --class-wall
        client.refresh_models()
        assert client.workshop.queue_url is None  # forgotten with the list, named again when it is asked
        client.close()
