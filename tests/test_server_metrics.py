"""``GET /metrics``: the server's counters in Prometheus' text format, read as Prometheus reads them."""

from __future__ import annotations

import openai
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.server import ServerThread, TokenStore, make_app


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_an_open_server_counts_requests_images_rejections_and_engine_time() -> None:
    with ServerThread(make_app(PreviewEngine())) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        sdk.images.generate(model="dall-e-2", prompt="a fox", n=3, size="256x256")
        with pytest.raises(openai.BadRequestError):
            sdk.images.generate(model="dall-e-2", prompt="a fox", n=3, size="300x300")
        with pytest.raises(openai.NotFoundError):
            sdk.images.generate(model="no-such-model", prompt="a fox")
        answer = requests.get(server.url + "/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = _samples(answer.text)
    assert _value(samples, "ipyimagegen_requests_total", route="generations", status="200") == 1
    assert _value(samples, "ipyimagegen_requests_total", route="generations", status="400") == 1
    assert _value(samples, "ipyimagegen_images_total", endpoint="generations") == 3
    assert _value(samples, "ipyimagegen_rejected_total", reason="model_not_found") == 1
    assert sum(v for (name, _), v in samples.items() if name == "ipyimagegen_rejected_total") == 2
    assert _value(samples, "ipyimagegen_upstream_seconds_count", endpoint="generations") == 1
    assert _value(samples, "ipyimagegen_queue_wait_seconds_count") == 1
    assert (
        _value(samples, "ipyimagegen_queue_running") == 0
        and _value(samples, "ipyimagegen_queue_waiting") == 0
    )


class BrokenEngine(PreviewEngine):
    def _generate(self, request, hooks):
        raise RuntimeError("the engine broke")


def test_engine_failures_are_upstream_errors_not_rejections() -> None:
    with ServerThread(make_app(BrokenEngine())) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
        samples = _samples(requests.get(server.url + "/metrics", timeout=10).text)
    assert sum(v for (name, _), v in samples.items() if name == "ipyimagegen_upstream_errors_total") == 1
    assert sum(v for (name, _), v in samples.items() if name == "ipyimagegen_rejected_total") == 0
    assert _value(samples, "ipyimagegen_images_total", endpoint="generations") == 0


def test_with_tokens_only_an_admin_token_reads_the_metrics_and_no_participant_is_named(tmp_path) -> None:
    store = TokenStore.in_dir(tmp_path)
    participant, _ = store.create("alice-in-room-4", budget=1)
    admin, _ = store.create("host", admin=True)
    with ServerThread(make_app(PreviewEngine(), tokens=store)) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key=participant, max_retries=0)
        sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
        with pytest.raises(openai.RateLimitError):  # the budget of 1 is spent
            sdk.images.generate(model="dall-e-2", prompt="a fox", size="256x256")
        url = server.url + "/metrics"
        assert requests.get(url, timeout=10).status_code == 401
        refused = requests.get(url, headers={"Authorization": f"Bearer {participant}"}, timeout=10)
        assert refused.status_code == 403 and "admin token" in refused.json()["error"]["message"]
        answer = requests.get(url, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert answer.status_code == 200
    samples = _samples(answer.text)
    assert _value(samples, "ipyimagegen_rejected_total", reason="insufficient_quota") == 1
    assert _value(samples, "ipyimagegen_rejected_total", reason="invalid_api_key") == 1
    assert _value(samples, "ipyimagegen_rejected_total", reason="admin_only") == 1
    assert "alice" not in answer.text and participant not in answer.text and admin not in answer.text


def test_two_servers_in_one_process_count_apart() -> None:
    with ServerThread(make_app(PreviewEngine())) as first, ServerThread(make_app(PreviewEngine())) as second:
        openai.OpenAI(base_url=first.base_url, api_key="x", max_retries=0).images.generate(
            model="dall-e-2", prompt="a fox", size="256x256"
        )
        counted = _samples(requests.get(second.url + "/metrics", timeout=10).text)
    assert _value(counted, "ipyimagegen_images_total", endpoint="generations") == 0
