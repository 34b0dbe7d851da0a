"""The engines on Ray Serve, on the CPU: a local Ray instance (started here, stopped after) with two
replicas of the preview engine and of the tiny diffusers pipeline. Calls spread over both
replicas, give the same images as in process, stream and cancel; a replica killed mid-call is
replaced and its caller told to retry (503), never left waiting; the workshop controls hold."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests

from absent import require_modules
from ipyimagegen.api.types import CallHooks, GenerateRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import CancelledError, EngineUnavailableError
from ipyimagegen.server import ServerThread, TokenStore, make_app
from tiny_pipeline import build_tiny_pipeline
from waiting import wait_for_health, wait_until

require_modules("ray", "ray.serve", install="pip install -e '.[ray]'")
import ray  # noqa: E402  (after the check)

from ipyimagegen.engines.ray_serve import (  # noqa: E402
    EngineChoice,
    RayDeployment,
    Scaling,
    deploy,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray instance for the module: logical CPUs enough for four replicas on two cores."""
    ray.init(num_cpus=4, object_store_memory=200 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def preview(local_ray: None) -> Iterator[RayDeployment]:
    with deploy(EngineChoice("preview"), Scaling(replicas=2, cpus=0.5), app_name="preview") as deployment:
        yield deployment


@pytest.fixture(scope="module")
def tiny(local_ray: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayDeployment]:
    folder = build_tiny_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")
    choice = EngineChoice("diffusers", str(folder), options={"steps": 2, "device": "cpu"})
    with deploy(choice, Scaling(replicas=2, cpus=1.0), app_name="tiny") as deployment:
        yield deployment


def _replicas_running(deployment: RayDeployment, count: int, timeout: float = 90.0) -> None:
    wait_until(
        lambda: deployment.replicas().get("RUNNING", 0) == count and len(deployment.replicas()) == 1,
        timeout=timeout,
        interval=0.25,
        message=lambda: f"{count} replicas to come back: {deployment.replicas()}",
    )


def _kill_replicas(app_name: str) -> list[str]:
    names = [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(f"SERVE_REPLICA::{app_name}#")
    ]
    for name in names:
        ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
    return names


def test_calls_spread_over_both_replicas_and_match_the_engine_in_process(preview: RayDeployment) -> None:
    backend = preview.backend
    assert "on Ray Serve (2 replicas)" in backend.name and backend.offline and backend.honours_seeds
    assert backend.models("generations") == PreviewEngine().models("generations")
    request = GenerateRequest(prompt="a lighthouse at dusk", model="dall-e-2", size="256x256", n=2, seed=7)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: backend.run(request), range(16)))
    assert {response.data[0].metadata["replica"] for response in responses} == set(_replica_ids("preview"))
    in_process = PreviewEngine().run(request)
    for response in responses:
        assert [image.data for image in response.data] == [image.data for image in in_process.data]


def _replica_ids(app_name: str) -> list[str]:
    return [
        actor["name"].rsplit("#", 1)[1]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(f"SERVE_REPLICA::{app_name}#")
    ]


def test_the_server_in_front_keeps_budgets_and_streams_partial_images(
    preview: RayDeployment, tmp_path
) -> None:
    store = TokenStore.in_dir(tmp_path)
    token, _ = store.create("alice", budget=3)
    with ServerThread(make_app(preview.backend, tokens=store)) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key=token, max_retries=0)
        made = sdk.images.generate(
            model="dall-e-2", prompt="a fox", size="256x256", n=2, extra_body={"seed": 3}
        )
        assert len(made.data) == 2
        stream = sdk.images.generate(
            model="gpt-image-2",
            prompt="a fox",
            size="1024x1024",
            stream=True,
            partial_images=2,
            quality="low",
        )
        kinds = [event.type for event in stream]
        assert kinds == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
        with pytest.raises(openai.BadRequestError) as flagged:  # the front moderates: a 400, no stream
            for _event in sdk.images.generate(
                model="gpt-image-2", prompt="a pipe bomb", size="1024x1024", stream=True, partial_images=1
            ):
                pass
        assert flagged.value.code == "moderation_blocked"
        with pytest.raises(openai.RateLimitError, match="budget"):
            sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
        assert store.get("alice").images == 3


def test_a_cancelled_call_stops_on_its_replica(tiny: RayDeployment) -> None:
    backend = tiny.backend
    cancel = threading.Event()
    steps: list[int] = []

    def on_progress(progress) -> None:
        steps.append(progress.done)
        if progress.done >= 3:
            cancel.set()

    request = GenerateRequest(
        prompt="noise", model=backend.default_model, size="64x64", extra={"steps": 1000}
    )
    started = time.monotonic()
    with pytest.raises(CancelledError):
        backend.run(request, CallHooks(on_progress=on_progress, cancel=cancel))
    assert time.monotonic() - started < 30 and 3 <= max(steps) < 1000
    quick = GenerateRequest(prompt="noise", model=backend.default_model, size="64x64", n=1, seed=1)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # both replicas free again
        answered = list(pool.map(lambda _: backend.run(quick), range(2)))
    assert all(len(response.data) == 1 for response in answered)


def test_the_tiny_model_on_two_replicas_gives_what_it_gives_in_process(tiny: RayDeployment, tmp_path) -> None:
    from ipyimagegen.engines.diffusers_engine import DiffusersEngine

    backend = tiny.backend
    folder = build_tiny_pipeline(tmp_path / "tiny-sd")
    request = GenerateRequest(prompt="a red kite", model=backend.default_model, size="64x64", n=2, seed=11)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: backend.run(request), range(8)))
    assert len({response.data[0].metadata["replica"] for response in responses}) == 2
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a replica of one CPU runs (other thread counts add up in another order)
    try:
        in_process = DiffusersEngine(folder, steps=2, device="cpu").run(request)
    finally:
        torch.set_num_threads(threads)
    assert [image.data for image in responses[0].data] == [image.data for image in in_process.data]


def test_a_replica_killed_mid_call_is_replaced_and_its_caller_told_to_retry(tiny: RayDeployment) -> None:
    backend = tiny.backend
    running = threading.Event()
    request = GenerateRequest(
        prompt="noise", model=backend.default_model, size="64x64", extra={"steps": 1000}
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(backend.run, request, CallHooks(on_progress=lambda _: running.set()))
        assert running.wait(60)
        killed = _kill_replicas("tiny")
        assert len(killed) == 2
        with pytest.raises(EngineUnavailableError) as failed:
            call.result(timeout=30)  # answered at once, never a hang
    assert failed.value.retry_after > 0
    _replicas_running(tiny, 2)
    assert set(_replica_ids("tiny")).isdisjoint(name.rsplit("#", 1)[1] for name in killed)
    again = backend.run(GenerateRequest(prompt="noise", model=backend.default_model, size="64x64", seed=2))
    assert len(again.data) == 1


def test_a_dead_replica_is_a_retryable_503_through_the_server(preview: RayDeployment) -> None:
    with ServerThread(make_app(preview.backend)) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        result: dict[str, object] = {}

        def call() -> None:  # ten 4K pictures: a few seconds on a replica
            try:
                result["made"] = sdk.images.generate(
                    model="gpt-image-2", prompt="a fox", size="3840x2160", n=10
                )
            except openai.APIStatusError as exc:
                result["error"] = exc

        caller = threading.Thread(target=call)
        caller.start()

        def running() -> bool:
            if requests.get(f"{server.url}/health", timeout=5).json()["queue"]["running"] != 0:
                return True
            assert caller.is_alive(), result
            return False

        wait_until(running, timeout=60, interval=0.05, message="the server to run the call")
        time.sleep(0.3)  # the call is on a replica now: nothing outside Ray tells when it got there
        _kill_replicas("preview")
        caller.join(30)
        assert not caller.is_alive() and "made" not in result
        error = result["error"]
        assert isinstance(error, openai.InternalServerError) and error.status_code == 503
        assert int(error.response.headers["retry-after"]) >= 1
        assert error.body["code"] == "engine_unavailable"
        _replicas_running(preview, 2)
        retried = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=2)
        assert len(retried.images.generate(model="dall-e-2", prompt="a fox", size="256x256").data) == 1


def test_ipyimagegen_serve_engine_ray_serves_and_stops_its_ray(tmp_path: Path) -> None:
    from browser import free_port

    port = free_port()
    env = {**os.environ, "RAY_ADDRESS": ""}
    command = [sys.executable, "-m", "ipyimagegen", "serve", "--engine", "ray", "--replicas", "2"]
    command += ["--cpus-per-replica", "0.25", "--port", str(port), "--state-dir", str(tmp_path)]
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        health = wait_for_health(
            f"http://127.0.0.1:{port}", process, timeout=120, interval=0.5, log=tmp_path / "serve.log"
        )
        assert "on Ray Serve (2 replicas)" in health["backend"]
        sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="local", max_retries=0)
        assert len(sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256", n=3).data) == 3
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        log.close()
    assert process.returncode == 0, (tmp_path / "serve.log").read_text()
    assert "Deploying the preview engine on Ray Serve" in (tmp_path / "serve.log").read_text()


def test_scaling_becomes_the_deployments_options() -> None:
    fixed = Scaling(replicas=3, gpus=0.5, cpus=2.0).options()
    assert fixed == {
        "ray_actor_options": {"num_cpus": 2.0, "num_gpus": 0.5},
        "max_ongoing_requests": 4,
        "num_replicas": 3,
    }
    autoscaled = Scaling(replicas=None, min_replicas=0, max_replicas=8).options()
    assert "num_replicas" not in autoscaled and autoscaled["autoscaling_config"] == {
        "min_replicas": 0,
        "initial_replicas": 1,
        "max_replicas": 8,
        "target_ongoing_requests": 1.0,
    }
    assert Scaling(replicas=None, min_replicas=2, max_replicas=8).most == 8


def test_an_engine_error_crosses_to_the_caller_as_itself() -> None:
    from ipyimagegen.engines.ray_serve import error_from_state, error_state
    from ipyimagegen.errors import ImagesError, ValidationError

    sent = ValidationError("size must be one of 256x256", param="size")
    made = error_from_state(error_state(sent))
    assert type(made) is ValidationError and made.message == sent.message and made.param == "size"
    unknown = error_from_state({"class": "os.system", "args": ("x",), "fields": {"message": "x"}})
    assert type(unknown) is ImagesError


def test_a_model_that_cannot_load_fails_the_deployment_soon(local_ray: None, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    started = time.monotonic()
    with pytest.raises(Exception, match="model_index.json|not a model|checkpoint") as failed:
        deploy(EngineChoice("diffusers", str(tmp_path / "empty")), Scaling(replicas=1), app_name="broken")
    assert time.monotonic() - started < 90, failed.value
