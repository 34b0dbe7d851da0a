"""A tiny, randomly initialised Stable Diffusion pipeline saved as a diffusers folder.

Everything is made in process (the tokenizer from a byte-level vocabulary written here), so
tests and benchmarks exercise the real loading and sampling code with no download. The images
it makes are noise, but they are deterministic noise of the right size.
"""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE_SIZE = 8  # latent side; with the 4-block VAE (scale factor 8) the native size is 64 px
MAX_TOKENS = 77


def _byte_characters() -> list[str]:
    """The 256 printable characters byte-level BPE uses for the 256 byte values (GPT-2's table)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    extra = 0
    characters = {}
    for byte in range(256):
        if byte in printable:
            characters[byte] = chr(byte)
        else:
            characters[byte] = chr(256 + extra)
            extra += 1
    return [characters[byte] for byte in range(256)]


def write_tokenizer_files(folder: Path) -> None:
    """A CLIP-style byte-level vocabulary (every byte, alone and word-final) and a few merges."""
    folder.mkdir(parents=True, exist_ok=True)
    characters = _byte_characters()
    tokens = [*characters, *(c + "</w>" for c in characters)]
    merges = ["t h", "th e</w>", "c a", "ca t</w>"]
    tokens += ["th", "the</w>", "ca", "cat</w>", "<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def build_tiny_pipeline(folder: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny text-to-image pipeline (UNet, VAE, CLIP text encoder, tokenizer) under ``folder``."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    vocab_folder = folder.parent / f"{folder.name}-vocab"
    write_tokenizer_files(vocab_folder)
    tokenizer = CLIPTokenizer.from_pretrained(vocab_folder, model_max_length=MAX_TOKENS)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=SAMPLE_SIZE,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 32, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=SAMPLE_SIZE * 8,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)  # type: ignore[attr-defined]  # a mixin method mypy cannot see
    return folder
