"""Images made on a Ray Serve replica come back one by one, as the replica makes them: the caller's hooks
get each image between the call's progress reports, the response holds those same images, and a
session saves and tells each once. A local Ray instance (started here, stopped after) runs one replica of
the preview engine on the CPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from absent import require_modules
from ipyimagegen.api.types import CallHooks, GenerateRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.gallery import Gallery
from ipyimagegen.session import ImageSaved, JobEvent, ResultsReady, Session
from waiting import WAIT_S

require_modules("ray", "ray.serve", install="pip install -e '.[ray]'")
import ray  # noqa: E402  (after the check)

from ipyimagegen.engines.ray_serve import EngineChoice, RayDeployment, Scaling, deploy  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def preview() -> Iterator[RayDeployment]:
    ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, include_dashboard=False, log_to_driver=False)
    try:
        with deploy(
            EngineChoice("preview"), Scaling(replicas=1, cpus=0.5), app_name="progress"
        ) as deployment:
            yield deployment
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()


def test_each_image_comes_back_as_the_replica_makes_it(preview: RayDeployment) -> None:
    log: list[tuple[str, Any]] = []
    hooks = CallHooks(
        on_images=lambda first, images: log.append(("images", (first, images))),
        on_progress=lambda progress: log.append(("progress", progress.done)),
    )
    request = GenerateRequest(prompt="three kites", model="dall-e-2", size="256x256", n=3, seed=5)
    response = preview.backend.run(request, hooks)

    # the preview engine reports its progress after each image: the images come back in between
    kinds = [(kind, item[0] if kind == "images" else item) for kind, item in log]
    assert kinds == [
        ("images", 0),
        ("progress", 1),
        ("images", 1),
        ("progress", 2),
        ("images", 2),
        ("progress", 3),
    ]
    handed = [item[1][0] for kind, item in log if kind == "images"]
    assert [id(image) for image in response.data] == [id(image) for image in handed]  # the same objects
    in_process = PreviewEngine().run(request)
    assert [image.data for image in handed] == [image.data for image in in_process.data]
    for image in handed:
        assert image.request == response.request and image.request is not None
        assert image.metadata["replica"] and image.metadata["model"] == "dall-e-2"


def test_a_session_saves_and_tells_each_image_from_the_replica_once(
    preview: RayDeployment, tmp_path: Path
) -> None:
    heard: list[JobEvent] = []
    with Gallery(tmp_path / "gallery") as gallery:
        session = Session(preview.backend, gallery)
        session.subscribe(heard.append)
        session.submit(GenerateRequest(prompt="three kites", model="dall-e-2", size="256x256", n=3))
        assert session.wait(WAIT_S * 3)
        told = [event for event in heard if isinstance(event, ImageSaved)]
        (ready,) = [event for event in heard if isinstance(event, ResultsReady)]
        assert [event.index for event in told] == [0, 1, 2]
        assert heard.index(told[-1]) < heard.index(ready)
        assert len(gallery) == 3  # each saved once, as it came
        saved = [image.metadata["gallery_id"] for image in ready.response.data]
        assert saved == [event.image.metadata["gallery_id"] for event in told]
        assert {item.prompt for item in gallery.items()} == {"three kites"}
