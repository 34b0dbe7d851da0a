"""Estimated costs from the catalogue's prices: tokens for GPT image models, images for DALL-E."""

from __future__ import annotations

import pytest

from ipyimagegen.api.parallel import run_parallel
from ipyimagegen.api.types import GenerateRequest
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.pricing import estimate_cost, format_usd, sum_usage

USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"text_tokens": 20, "image_tokens": 100},
    "output_tokens": 4160,
    "total_tokens": 4280,
}


def test_token_prices_split_text_and_image_input() -> None:
    cost = estimate_cost("gpt-image-2.6-flare", usage=USAGE)
    assert cost is not None and cost.basis == "tokens" and cost.billed
    assert cost.usd == pytest.approx((20 * 5 + 100 * 8 + 4160 * 30) / 1e6)
    assert cost.label() == "≈ $0.126" and cost.to_dict()["estimate"] is True
    assert (
        estimate_cost("gpt-image-2-2026-04-21", usage=USAGE).usd == cost.usd
    )  # a snapshot: its model's prices


def test_dall_e_prices_per_image_by_quality_and_size() -> None:
    assert estimate_cost("dall-e-3", n=2, size="1792x1024", quality="hd").usd == pytest.approx(0.24)
    assert estimate_cost("dall-e-2", n=10, size="256x256").usd == pytest.approx(0.16)
    assert estimate_cost("someone-elses-model", n=1) is None


def test_offline_results_are_free_and_say_what_they_would_cost() -> None:
    made = PreviewEngine().generate(prompt="a white siamese cat", model="dall-e-2", size="256x256", n=2)
    assert made.cost is not None and not made.cost.billed and made.cost.usd == pytest.approx(0.032)
    assert made.cost.label() == "free (≈ $0.032 on OpenAI)"
    assert made[0].metadata["cost"]["usd"] == pytest.approx(0.016)


def test_parallel_parts_add_up_their_usage_and_cost() -> None:
    engine = PreviewEngine()
    whole = run_parallel(
        engine, GenerateRequest(prompt="a lighthouse", model="gpt-image-2", n=12, size="1024x1024")
    )
    single = engine.generate(prompt="a lighthouse", model="gpt-image-2", n=1, size="1024x1024")
    assert len(whole) == 12 and whole.usage["output_tokens"] == 12 * single.usage["output_tokens"]
    assert (
        whole.usage["input_tokens_details"]["text_tokens"]
        == 2 * single.usage["input_tokens_details"]["text_tokens"]
    )
    assert whole.cost.usd == pytest.approx(sum(image.metadata["cost"]["usd"] for image in whole))
    dalle3 = run_parallel(engine, GenerateRequest(prompt="a lighthouse", model="dall-e-3", n=3))
    assert dalle3.cost.usd == pytest.approx(0.12)


def test_sums_and_formats() -> None:
    assert sum_usage([USAGE, None, USAGE])["input_tokens_details"]["image_tokens"] == 200
    assert sum_usage([None]) is None
    assert [format_usd(v) for v in (0, 0.0042, 0.126, 12.5)] == ["$0", "$0.0042", "$0.126", "$12.50"]
