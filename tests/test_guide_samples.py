"""OpenAI's Images guide, its samples copied as written, against ``ipyimagegen serve``.

Each sample under ``tests/guide_samples/`` runs as its own program in the client it was written for:
the guide of 2022-23 on openai 0.28 (``python_v0/``) and openai-node 3.3.0 (``node_v3/``), the guide
on today's SDKs (``python_today/``, ``node_today/``) and LiteLLM (``litellm/``). The samples differ
from the guide's text only by the configuration the guide asks for (key and base URL, from the
environment), input file names from the environment, and a JSON line printed where the guide uses
its result. A check reads what the sample printed as its reader would: the URL downloads a PNG of
the size asked for, an edit keeps the pixels its mask protects, a mistake gets a 400 with the API's
error JSON saying what to do. Variants are the reader's own changes to a sample (``n=2``, another
size, a mistake), made on the sample's text.

All runs start together, once per module (Python samples of one client share one interpreter, as
LiteLLM takes seconds to import); each test then reads its run's output.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from absent import tool_missing
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, TokenStore, make_app
from ipyimagegen.server.config import ServerConfig

SAMPLES = Path(__file__).parent / "guide_samples"
REPO = Path(__file__).parent.parent
MAX_UPLOAD = 4 * 1024 * 1024  # DALL-E 2's limit on an uploaded file
RUN_TIMEOUT_S = 120.0
INSTALL = "bash .ci/run installs it"


# -- the clients -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """A client the samples of one folder are written for, and how to run them."""

    folder: str
    language: str  # "python" or "node"
    interpreter: Path | None = None  # Python clients
    needs: str = ""  # what to install when the client is absent
    packages: tuple[str, ...] = ("openai",)  # Node clients: the npm packages the samples need

    @property
    def path(self) -> Path:
        return SAMPLES / self.folder

    def missing(self) -> str | None:
        """Why this client cannot run here, or None."""
        if self.language == "python":
            assert self.interpreter is not None
            return None if self.interpreter.exists() else f"{self.needs} is missing: {INSTALL}"
        if shutil.which("node") is None:
            return f"Node.js is missing: {INSTALL}"
        installed = [self.path / "node_modules" / name / "package.json" for name in self.packages]
        if not all(path.exists() for path in installed):
            return f"{self.needs} is missing (npm ci in tests/guide_samples/{self.folder}): {INSTALL}"
        return None


CLIENTS = {
    "python_v0": Client("python_v0", "python", REPO / ".venv-openai028" / "bin" / "python", "openai 0.28.1"),
    "node_v3": Client("node_v3", "node", needs="openai-node 3.3.0", packages=("openai", "typescript")),
    "python_today": Client("python_today", "python", Path(sys.executable), "openai"),
    "node_today": Client("node_today", "node", needs="openai-node 6"),
    "litellm": Client("litellm", "python", REPO / ".venv-litellm" / "bin" / "python", "LiteLLM"),
}
OLD = ("python_v0", "node_v3")  # the guide of 2022-23: its calls name no model


# -- what runs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One sample run: ``edits`` are the reader's changes to its text, ``inputs`` its files by variable."""

    client: str
    sample: str
    inputs: tuple[tuple[str, str], ...] = ()
    edits: tuple[tuple[str, str], ...] = ()
    server: str = "open"

    def source(self) -> str:
        text = (CLIENTS[self.client].path / self.sample).read_text()
        for old, new in self.edits:
            assert text.count(old) == 1, f"{self.sample} should hold {old!r} once"
            text = text.replace(old, new)
        return text


SAMPLE = {  # the main sample of each kind, by client
    "generate": {
        "python_v0": "generate.py",
        "node_v3": "generate.js",
        "python_today": "generate.py",
        "node_today": "generate.mjs",
        "litellm": "generate.py",
    },
    "edit": {
        "python_v0": "edit.py",
        "node_v3": "edit_prompt_first.js",
        "python_today": "edit.py",
        "node_today": "edit.mjs",
        "litellm": "edit.py",
    },
    "variation": {
        "python_v0": "variation.py",
        "node_v3": "variation.js",
        "python_today": "variation.py",
        "node_today": "variation.mjs",
        "litellm": "variation.py",
    },
    "error_handling": {  # the guide's error sample (a variation); today's SDKs: the variation sample
        "python_v0": "error_handling.py",
        "node_v3": "error_handling.js",
        "python_today": "variation.py",
        "node_today": "variation.mjs",
        "litellm": "variation.py",
    },
}
PHOTO = (("IMAGE", "photo.png"),)
PHOTO_AND_MASK = (("IMAGE", "photo.png"), ("MASK", "mask.png"))


def _count_edit(client: str, count: int) -> tuple[str, str]:
    """The sample's ``n=1`` made ``n=count``, in its own spelling."""
    if client in ("node_v3", "node_today"):
        return ("n: 1,", f"n: {count},")
    return ("n=1,", f"n={count},")


def _size_edit(size: str) -> tuple[str, str]:
    return ('"1024x1024"', f'"{size}"')


def _no_model_edits(client: str) -> tuple[tuple[str, str], ...]:
    """Today's generation sample with its model (and dall-e-3's quality) taken out."""
    if client == "python_today":
        return (('    model="dall-e-3",\n', ""), ('    quality="standard",\n', ""))
    if client == "node_today":
        return (('    model: "dall-e-3",\n', ""),)
    return ()


def _no_size_edits(client: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The variation sample without its size: the sample and the edits."""
    return {
        "python_v0": ("variation.py", (('n=1,\n    size="1024x1024"', "n=1"),)),
        "node_v3": ("variation.js", (('1,\n      "1024x1024"', "1"),)),
        "python_today": ("variation.py", (('n=1,\n    size="1024x1024"', "n=1"),)),
        "node_today": ("variation_no_size.mjs", ()),
        "litellm": ("variation.py", (('        size="1024x1024",\n', ""),)),
    }[client]


IN_MEMORY = [
    ("python_v0", "variation_in_memory.py"),
    ("python_v0", "variation_resized.py"),
    ("node_v3", "variation_in_memory.js"),
    ("node_v3", "variation_typescript.ts"),
    ("python_today", "variation_in_memory.py"),
    ("node_today", "variation_to_file.mjs"),
]
SMALL_SIZES = ("512x512", "256x256")


@dataclass(frozen=True)
class Mistake:
    """A guide sample with a reader's mistake, and the 400 it should get."""

    name: str
    kind: str  # which sample (a key of SAMPLE)
    param: str
    hint: str  # what the message must say, as a regular expression (how to put it right)
    inputs: tuple[tuple[str, str], ...] = PHOTO
    count: int | None = None  # n
    size: str | None = None
    by_model: bool = True  # the rule is the model's, so the message names the model (and why that one)


MISTAKES = [
    Mistake("n=11", "generate", "n", r"\b10\b", count=11),
    Mistake("size 300x300", "generate", "size", r"1024x1024", size="300x300"),
    Mistake("JPEG edit", "edit", "image", r"PNG", inputs=(("IMAGE", "photo.jpg"), ("MASK", "mask.png"))),
    Mistake("JPEG variation", "error_handling", "image", r"PNG", inputs=(("IMAGE", "photo.jpg"),)),
    Mistake("non-square PNG", "error_handling", "image", r"square", inputs=(("IMAGE", "wide.png"),)),
    Mistake(
        "mask of another size",
        "edit",
        "mask",
        r"1024x1024|same size|same dimensions",
        inputs=(("IMAGE", "photo.png"), ("MASK", "mask_512.png")),
        by_model=False,
    ),
    Mistake("file over 4 MB", "error_handling", "image", r"4 ?MB", inputs=(("IMAGE", "noisy.png"),)),
]


def mistake_run(client: str, mistake: Mistake) -> Run:
    kind = mistake.kind
    if mistake.count is not None and client not in OLD:
        # today's generation sample is dall-e-3, which makes one image; LiteLLM sends no n for a variation
        kind = "edit" if client == "litellm" else "error_handling"
    edits: list[tuple[str, str]] = []
    if mistake.count is not None:
        edits.append(_count_edit(client, mistake.count))
    if mistake.size is not None:
        edits.append(_size_edit(mistake.size))
    inputs = PHOTO_AND_MASK if kind == "edit" and mistake.inputs == PHOTO else mistake.inputs
    return Run(client, SAMPLE[kind][client], inputs, tuple(edits))


def planned_runs() -> dict[str, Run]:
    """Every run of the module, by id."""
    runs: dict[str, Run] = {}
    for client in CLIENTS:
        for kind in ("generate", "edit", "variation"):
            runs[f"{client}:{kind}"] = Run(client, SAMPLE[kind][client], PHOTO_AND_MASK)
        sample, edits = _no_size_edits(client)
        runs[f"{client}:variation no size"] = Run(client, sample, PHOTO, edits)
        if client != "litellm":  # LiteLLM needs a model name
            for size in SMALL_SIZES:
                edits = (*_no_model_edits(client), _count_edit(client, 2), _size_edit(size))
                runs[f"{client}:generate n=2 {size}"] = Run(client, SAMPLE["generate"][client], (), edits)
        for mistake in MISTAKES:
            runs[f"{client}:mistake {mistake.name}"] = mistake_run(client, mistake)
    for client, sample in IN_MEMORY:
        runs[f"{client}:{sample}"] = Run(client, sample, PHOTO)
    runs["node_v3:edit as the guide orders it"] = Run("node_v3", "edit.js", PHOTO_AND_MASK)
    for client in OLD:  # with a participant token, and with a wrong one
        small = (_count_edit(client, 2), _size_edit("256x256"))
        runs[f"{client}:generate with a token"] = Run(client, SAMPLE["generate"][client], (), small, "tokens")
        runs[f"{client}:generate with a wrong token"] = Run(
            client, SAMPLE["generate"][client], (), (), "wrong"
        )
    return runs


RUNS = planned_runs()


# -- the pictures the samples open -------------------------------------------------------------------


def photo_like(width: int = 1024, height: int = 1024) -> Image.Image:
    """A photo-like RGB picture: a sky gradient, a sun, textured hills, fine grain (always the same)."""
    y, x = np.mgrid[0:height, 0:width].astype(float)
    sky = np.stack([70 + 110 * y / height, 130 + 70 * y / height, 235 - 90 * y / height], axis=-1)
    hills = height * 0.62 + 45 * np.sin(x / 95) + 22 * np.sin(x / 31 + 1.0)
    ground = np.stack(
        [70 + 35 * np.sin(x / 17) * np.cos(y / 23), 115 + 50 * y / height, 45 + 20 * np.sin(y / 11)], axis=-1
    )
    pixels = np.where((y > hills)[..., None], ground, sky)
    pixels[(x - 0.76 * width) ** 2 + (y - 0.22 * height) ** 2 < (0.085 * width) ** 2] = (255, 228, 130)
    pixels += np.random.default_rng(7).integers(-2, 3, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def edit_mask(size: int = 1024) -> Image.Image:
    """Opaque everywhere but a transparent rectangle: the area to remake."""
    mask = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (size * 5 // 16, size // 4, size * 11 // 16, size * 5 // 8))
    return mask


def write_inputs(folder: Path) -> dict[str, Path]:
    """The files the samples open, by name; the photo and mask are square PNGs under 4 MB."""
    photo = photo_like()
    photo.save(folder / "photo.png")
    edit_mask().save(folder / "mask.png")
    edit_mask(512).save(folder / "mask_512.png")
    photo.save(folder / "photo.jpg", quality=90)
    photo.crop((0, 0, 1024, 768)).save(folder / "wide.png")
    noise = np.random.default_rng(1).integers(0, 256, size=(1200, 1200, 3), dtype=np.uint8)
    Image.fromarray(noise, "RGB").save(folder / "noisy.png")
    files = {path.name: path for path in folder.iterdir()}
    assert files["photo.png"].stat().st_size < MAX_UPLOAD < files["noisy.png"].stat().st_size
    return files


# -- running the samples -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a run printed (its JSON lines), or why it did not run or did not finish."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None  # a traceback, stderr, or the exit status
    missing: str | None = None  # the client is not installed

    def line(self) -> dict[str, Any]:
        """The one JSON line the run printed (the test fails with the run's problem otherwise)."""
        if self.missing:
            tool_missing(self.missing)
        assert self.problem is None and len(self.lines) == 1, f"the sample did not print one line: {self}"
        return self.lines[0]


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _environment(base_url: str, key: str, client: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "AZURE_OPENAI_", "LITELLM_"))
    }
    env.update(OPENAI_API_KEY=key, OPENAI_BASE_URL=base_url, NO_PROXY="127.0.0.1,localhost")
    if client == "python_v0":
        env["OPENAI_API_BASE"] = base_url
    if client == "litellm":
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no download of LiteLLM's price list
    return env


def _run(command: list[str], source: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` with ``source`` on its stdin; past the time limit, a failed run that says so."""
    try:
        return subprocess.run(
            command, input=source, capture_output=True, text=True, env=env, cwd=cwd, timeout=RUN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, -1, "", f"no answer within {RUN_TIMEOUT_S:g} s")


def _python_batch(client: Client, jobs: list[dict[str, Any]], env: dict[str, str]) -> dict[str, Outcome]:
    """Python samples of one client in one interpreter (tests/guide_samples/batch.py)."""
    assert client.interpreter is not None
    command = [str(client.interpreter), str(SAMPLES / "batch.py")]
    done = _run(command, json.dumps(jobs), env, client.path)
    found = {}
    for line in _json_lines(done.stdout):
        found[line["id"]] = Outcome(_json_lines(line["stdout"]), line["error"])
    problem = f"the batch exited with {done.returncode}: {done.stderr[-3000:]}"
    return {job["id"]: found.get(job["id"], Outcome(problem=problem)) for job in jobs}


def _node(client: Client, sample: str, source: str, env: dict[str, str]) -> Outcome:
    """One Node sample, its text on stdin, run in its folder (where its node_modules are); a TypeScript
    sample through TypeScript's compiler (``run_typescript.js``)."""
    if sample.endswith(".ts"):
        command = ["node", "run_typescript.js"]
    else:
        command = ["node", *(["--input-type=module"] if client.folder == "node_today" else []), "-"]
    done = _run(command, source, env, client.path)
    problem = None if done.returncode == 0 else f"exit {done.returncode}: {done.stderr[-3000:]}"
    return Outcome(_json_lines(done.stdout), problem)


def run_all(
    runs: dict[str, Run], servers: dict[str, tuple[str, str]], files: dict[str, Path]
) -> dict[str, Outcome]:
    """Every run, at once: one process per Python client and server, one per Node sample."""
    outcomes: dict[str, Outcome] = {}
    batches: dict[tuple[str, str], list[dict[str, Any]]] = {}
    node_runs: list[tuple[str, Run]] = []
    for run_id, run in runs.items():
        client = CLIENTS[run.client]
        why = client.missing()
        if why:
            outcomes[run_id] = Outcome(missing=why)
        elif client.language == "python":
            env = {name: str(files[value]) for name, value in run.inputs}
            job = {"id": run_id, "filename": run.sample, "source": run.source(), "env": env}
            batches.setdefault((run.client, run.server), []).append(job)
        else:
            node_runs.append((run_id, run))

    with ThreadPoolExecutor(max_workers=6) as pool:
        batch_futures = []
        for (name, server), jobs in batches.items():
            env = _environment(*servers[server], name)
            batch_futures.append(pool.submit(_python_batch, CLIENTS[name], jobs, env))
        node_futures = {}
        for run_id, run in node_runs:
            env = _environment(*servers[run.server], run.client)
            env.update({name: str(files[value]) for name, value in run.inputs})
            node_futures[run_id] = pool.submit(_node, CLIENTS[run.client], run.sample, run.source(), env)
        for future in batch_futures:
            outcomes.update(future.result())
        for run_id, node_future in node_futures.items():
            outcomes[run_id] = node_future.result()
    return outcomes


@dataclass
class Guide:
    """The servers, the input files and every run's outcome."""

    base_url: str
    files: dict[str, Path]
    outcomes: dict[str, Outcome]

    def __getitem__(self, run_id: str) -> Outcome:
        return self.outcomes[run_id]


@pytest.fixture(scope="module")
def guide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guide]:
    folder = tmp_path_factory.mktemp("guide-inputs")
    files = write_inputs(folder)
    store = TokenStore(folder / "tokens.sqlite")
    token, _ = store.create("guide-reader", budget=100)
    with (
        ServerThread(make_app(PreviewEngine())) as open_server,
        ServerThread(make_app(PreviewEngine(), tokens=store)) as token_server,
    ):
        servers = {
            "open": (open_server.base_url, "sk-guide-sample"),
            "tokens": (token_server.base_url, token),
            "wrong": (token_server.base_url, "not-a-participant-token"),
        }
        yield Guide(open_server.base_url, files, run_all(RUNS, servers, files))


# -- reading what the samples printed ----------------------------------------------------------------


def download_png(url: str | None) -> tuple[Image.Image, requests.Response]:
    """The PNG a result URL serves (the test fails if it does not serve one)."""
    assert isinstance(url, str) and url.startswith("http://127.0.0.1:"), f"no URL of the server's: {url!r}"
    assert "/v1/files/" in url, url
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200, f"{url} answered {answer.status_code}: {answer.text[:300]}"
    assert answer.content.startswith(b"\x89PNG\r\n\x1a\n"), f"{url} is not a PNG"
    picture = Image.open(io.BytesIO(answer.content))
    picture.load()
    return picture, answer


def urls_of(line: dict[str, Any]) -> list[str]:
    assert "urls" in line, f"the sample got no images: {line}"
    assert line.get("image_url") == line["urls"][0]
    return line["urls"]


@dataclass(frozen=True)
class ApiError:
    """An error answer as a client shows it."""

    status: int
    type: str | None
    param: str | None
    code: str | None
    message: str
    request_id: str | None


def error_of(client: str, line: dict[str, Any]) -> ApiError:
    """The error a sample printed, read through its client's own fields."""
    if client == "python_v0":  # e.http_status, e.error
        assert line.get("class") == "InvalidRequestError" or line["http_status"] != 400, line
        error = line["error"]
        return ApiError(
            line["http_status"], error["type"], error["param"], error["code"], error["message"], None
        )
    if client == "node_v3":  # error.response.status, error.response.data
        assert "status" in line, f"no error response: {line}"
        error = line["data"]["error"]
        return ApiError(
            line["status"],
            error["type"],
            error["param"],
            error["code"],
            error["message"],
            line.get("request_id"),
        )
    if client == "node_today":  # err.status, err.error, err.requestID
        assert line.get("class") == "BadRequestError" or line["status"] != 400, line
        error = line["error"]
        return ApiError(
            line["status"],
            error["type"],
            error["param"],
            error["code"],
            error["message"],
            line.get("request_id"),
        )
    assert "status_code" in line, f"no error: {line}"
    if client == "litellm":  # LiteLLM's exceptions keep the status and the message, not the error's fields
        return ApiError(line["status_code"], None, None, None, line["message"], None)
    assert line["class"] == "BadRequestError" or line["status_code"] != 400, line  # today's SDK
    return ApiError(
        line["status_code"],
        line["type"],
        line["param"],
        line["code"],
        line["message"],
        line.get("request_id"),
    )


def client_ids(*clients: str) -> list[str]:
    return list(clients or CLIENTS)


# -- generations -------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", client_ids())
def test_a_generation_sample_prints_a_url_that_downloads_a_png_of_the_asked_size(
    guide: Guide, client: str
) -> None:
    urls = urls_of(guide[f"{client}:generate"].line())
    assert len(urls) == 1
    picture, _ = download_png(urls[0])
    assert picture.size == (1024, 1024)


@pytest.mark.parametrize("size", SMALL_SIZES)
@pytest.mark.parametrize("client", client_ids("python_v0", "node_v3", "python_today", "node_today"))
def test_two_small_images_with_no_model_named_come_back_as_urls(guide: Guide, client: str, size: str) -> None:
    urls = urls_of(guide[f"{client}:generate n=2 {size}"].line())
    assert len(urls) == 2 and urls[0] != urls[1]
    side = int(size.split("x")[0])
    for url in urls:
        picture, _ = download_png(url)
        assert picture.size == (side, side)


# -- edits -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", client_ids())
def test_an_edit_with_a_mask_keeps_every_pixel_the_mask_protects(guide: Guide, client: str) -> None:
    urls = urls_of(guide[f"{client}:edit"].line())
    assert len(urls) == 1
    edited, _ = download_png(urls[0])
    assert edited.size == (1024, 1024)
    before = np.asarray(Image.open(guide.files["photo.png"]).convert("RGB"))
    after = np.asarray(edited.convert("RGB"))
    kept = np.asarray(Image.open(guide.files["mask.png"]))[..., 3] == 255
    assert np.array_equal(after[kept], before[kept]), "pixels outside the mask's transparent area changed"
    assert not np.array_equal(after[~kept], before[~kept]), "the masked area was not remade"


def test_the_guides_node_edit_in_its_own_argument_order_is_told_the_order_of_the_sdk_it_runs_on(
    guide: Guide,
) -> None:
    """The guide's Node edit passes (image, mask, prompt); openai-node 3.2 and later take (image, prompt,
    mask), so the mask file arrives as the prompt and the prompt text as the mask."""
    error = error_of("node_v3", guide["node_v3:edit as the guide orders it"].line())
    assert (error.status, error.type) == (400, "invalid_request_error")
    assert error.param in ("prompt", "mask")
    assert "prompt" in error.message and "mask" in error.message, error.message


# -- variations --------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", client_ids())
def test_a_variation_is_a_png_of_the_asked_size(guide: Guide, client: str) -> None:
    urls = urls_of(guide[f"{client}:variation"].line())
    picture, _ = download_png(urls[0])
    assert len(urls) == 1 and picture.size == (1024, 1024)


@pytest.mark.parametrize("client", client_ids())
def test_a_variation_with_no_size_is_1024x1024(guide: Guide, client: str) -> None:
    urls = urls_of(guide[f"{client}:variation no size"].line())
    picture, _ = download_png(urls[0])
    assert picture.size == (1024, 1024)


@pytest.mark.parametrize(("client", "sample"), IN_MEMORY)
def test_the_in_memory_samples_send_their_bytes_as_a_png(guide: Guide, client: str, sample: str) -> None:
    urls = urls_of(guide[f"{client}:{sample}"].line())
    picture, _ = download_png(urls[0])
    assert picture.size == (1024, 1024)


# -- mistakes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mistake", MISTAKES, ids=[mistake.name for mistake in MISTAKES])
@pytest.mark.parametrize("client", client_ids())
def test_a_mistake_is_a_400_naming_the_parameter_and_what_to_do(
    guide: Guide, client: str, mistake: Mistake
) -> None:
    error = error_of(client, guide[f"{client}:mistake {mistake.name}"].line())
    if client == "litellm":  # LiteLLM keeps the server's message inside its own
        assert error.status == 400 and re.search(rf"\b{mistake.param}\b", error.message), error
    else:
        assert (error.status, error.type, error.param) == (400, "invalid_request_error", mistake.param), error
    assert re.search(mistake.hint, error.message), f"{error.message!r} does not say {mistake.hint!r}"
    if not mistake.by_model:
        return
    run = mistake_run(client, mistake)
    named = re.search(r'model[=:] ?"(?:openai/)?([a-z0-9.-]+)"', run.source())
    model = named.group(1) if named else "dall-e-2"  # a call with no model is DALL-E 2's in the guide
    assert model in error.message, f"the message does not name {model}: {error.message!r}"
    if not named:
        assert re.search(r"no model", error.message, re.IGNORECASE), f"no 'why {model}': {error.message!r}"


# -- participant tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize("client", client_ids(*OLD))
def test_the_samples_run_with_a_participant_token_as_the_key(guide: Guide, client: str) -> None:
    urls = urls_of(guide[f"{client}:generate with a token"].line())
    assert len(urls) == 2
    for url in urls:
        picture, _ = download_png(url)
        assert picture.size == (256, 256)
    error = error_of(client, guide[f"{client}:generate with a wrong token"].line())
    assert error.status == 401 and error.code == "invalid_api_key"
    assert "token" in error.message


# -- request ids and expiry --------------------------------------------------------------------------


@pytest.mark.parametrize("client", client_ids("node_v3", "python_today", "node_today"))
def test_the_sdks_read_a_distinct_request_id_from_every_answer(guide: Guide, client: str) -> None:
    """openai-node 3 from the answer's headers, today's SDKs as ``_request_id`` and the error's request id
    (every sample of these clients prints the one its answer carried)."""
    ids: list[str] = []
    for run_id, outcome in guide.outcomes.items():
        if not run_id.startswith(f"{client}:"):
            continue
        if outcome.missing:
            tool_missing(outcome.missing)
        for line in outcome.lines:
            request_id = line.get("request_id")
            assert isinstance(request_id, str) and request_id, f"{run_id} read no request id: {line}"
            ids.append(request_id)
    assert len(ids) >= 10 and len(set(ids)) == len(ids), ids


def test_every_answer_carries_its_own_x_request_id(guide: Guide) -> None:
    api = guide.base_url
    photo = guide.files["photo.png"].read_bytes()
    mask = guide.files["mask.png"].read_bytes()
    made = requests.post(
        f"{api}/images/generations", json={"prompt": "a white siamese cat", "size": "256x256"}, timeout=30
    )
    answers = [
        made,
        requests.post(f"{api}/images/generations", json={"prompt": "a cat", "n": 11}, timeout=30),
        requests.post(
            f"{api}/images/edits",
            files={"image": ("photo.png", photo), "mask": ("mask.png", mask)},
            data={"prompt": "a flamingo", "size": "256x256"},
            timeout=30,
        ),
        requests.post(f"{api}/images/variations", files={"image": ("photo.png", photo)}, timeout=30),
        requests.get(f"{api}/files/never-made.png", timeout=30),
    ]
    assert [answer.status_code for answer in answers] == [200, 400, 200, 200, 404]
    answers.append(requests.get(made.json()["data"][0]["url"], timeout=30))
    answers.append(requests.get(f"{api}/models", timeout=30))
    ids = [answer.headers.get("x-request-id") for answer in answers]
    assert all(ids) and len(set(ids)) == len(ids), ids


def test_a_result_url_lasts_an_hour_and_then_is_a_404_with_the_apis_error_json(guide: Guide) -> None:
    urls = urls_of(guide["python_today:variation"].line())
    _, served = download_png(urls[0])
    max_age = re.search(r"max-age=(\d+)", served.headers.get("Cache-Control", ""))
    assert max_age and 3500 <= int(max_age.group(1)) <= 3600, served.headers
    with ServerThread(make_app(PreviewEngine(), ServerConfig(url_ttl=0.5))) as short:
        made = requests.post(
            f"{short.base_url}/images/generations",
            json={"prompt": "a white siamese cat", "size": "256x256"},
            timeout=30,
        )
        url = made.json()["data"][0].get("url")
        download_png(url)
        time.sleep(0.7)
        gone = requests.get(url, timeout=30)
    assert gone.status_code == 404 and gone.headers.get("x-request-id")
    error = gone.json()["error"]
    assert error["type"] == "invalid_request_error" and "expired" in error["message"]


def test_dall_e_answers_a_url_unless_b64_json_is_asked(guide: Guide) -> None:
    api = f"{guide.base_url}/images/generations"
    asked = {"prompt": "a white siamese cat", "model": "dall-e-3", "response_format": "b64_json"}
    inline = requests.post(api, json=asked, timeout=30)
    linked = requests.post(api, json={"prompt": "a white siamese cat", "model": "dall-e-2"}, timeout=30)
    assert inline.status_code == linked.status_code == 200, (inline.text[:300], linked.text[:300])
    assert "b64_json" in inline.json()["data"][0] and "url" not in inline.json()["data"][0]
    picture, _ = download_png(linked.json()["data"][0]["url"])
    assert picture.size == (1024, 1024)
