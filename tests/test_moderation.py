"""The moderation word list: matching, strictness, custom and broken lists; the preview engine's refusals."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipyimagegen.api.errors import ConfigurationError, ContentPolicyError, describe_error
from ipyimagegen.api.types import CallHooks, GenerateRequest, Progress
from ipyimagegen.backends import default_backend
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.moderation import WORDS_VARIABLE, WordList, refusal, word_list, words

DEFAULT = WordList.default()


def png(size: tuple[int, int] = (256, 256), alpha: int = 255) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (30, 120, 200, alpha)).save(buffer, "PNG")
    return buffer.getvalue()


def write(tmp_path: Path, text: str, name: str = "words.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the default list -----------------------------------------------------------------------------


def test_the_default_list_covers_the_usual_categories() -> None:
    assert len(DEFAULT) >= 30
    assert {"violence", "weapons", "self-harm", "sexual"} <= set(DEFAULT.categories)
    assert any(entry.auto_only for entry in DEFAULT.entries)  # some entries "low" lets through
    assert any(not entry.auto_only for entry in DEFAULT.entries)


HARMLESS = [
    "a lighthouse in a storm",
    "a killer whale leaping at sunset",  # "kill" is a whole word only
    "a skilled painter in gunther's workshop",
    "a classic bombardier beetle on a leaf",
    "a white siamese cat at night under the moon",
    "1024x1024 photo, 4k, 3d render of a teapot",
]


@pytest.mark.parametrize("prompt", HARMLESS)
def test_harmless_prompts_pass(prompt: str) -> None:
    assert DEFAULT.find(prompt) == []
    assert DEFAULT.find(prompt, "low") == []


EVASIONS = [
    "a massacre in the square",
    "A MASSACRE in the square",
    "a MaSsAcRe in the square",
    "a massacre!!! in the square",
    "a m a s s a c r e in the square",
    "a m.a.s.s.a.c.r.e in the square",
    "a m-a-s-s-a-c-r-e",
    "a ma\u200bssacre (with a zero-width space)",
    "a m@ss@cre",
    "a m4ss4cre",
    "a mässacre",
    "the_massacre_scene",
]


@pytest.mark.parametrize("prompt", EVASIONS)
def test_case_punctuation_spacing_and_simple_evasions_are_seen_through(prompt: str) -> None:
    flags = DEFAULT.find(prompt)
    assert [flag.category for flag in flags] == ["violence"], flags


def test_phrases_match_their_words_in_a_row_whatever_lies_between() -> None:
    for prompt in ("a machine gun", "a Machine-Gun", "a machine   gun", "a machine\ngun", "a machinegun"):
        assert "machine gun" in {flag.entry for flag in DEFAULT.find(prompt, "low")}, prompt
    assert DEFAULT.find("a gun machine", "low") == []  # the words in another order
    assert DEFAULT.find("a sewing machine", "low") == []


def test_a_prefix_entry_matches_words_that_start_with_it() -> None:
    assert [flag.entry for flag in DEFAULT.find("pornographic pictures")] == ["porn*"]
    assert DEFAULT.find("a popcorn stand") == []  # inside a word is not the start of it


def test_low_relaxes_the_entries_marked_for_auto_only() -> None:
    assert [flag.category for flag in DEFAULT.find("a murder of crows")] == ["violence"]
    assert DEFAULT.find("a murder of crows", "low") == []
    assert DEFAULT.find("a massacre", "low") != []  # unmarked entries stay refused
    assert DEFAULT.find("a murder of crows", None) == DEFAULT.find("a murder of crows", "auto")


def test_every_category_flagged_is_named_once() -> None:
    flags = DEFAULT.find("a massacre with a pipe bomb, a massacre")
    assert {flag.entry for flag in flags} == {"massacre", "pipe bomb", "bomb"}  # each entry once
    with pytest.raises(ContentPolicyError) as caught:
        DEFAULT.check_prompt("a massacre with a pipe bomb, a massacre", "gpt-image-1")
    assert "safety_violations=[violence, weapons]." in caught.value.message


def test_a_long_prompt_of_single_letters_is_checked_quickly() -> None:
    prompt = " ".join("abcdefghijklmnopqrstuvwxyz"[k % 26] for k in range(16_000))  # 32,000 characters
    started = time.perf_counter()
    DEFAULT.find(prompt)
    assert time.perf_counter() - started < 2.0


def test_words_are_compared_in_one_normal_form() -> None:
    assert words("Café  DÉJÀ-vu, k1ll_3d!") == ["cafe", "deja", "vu", "kill", "ed"]


# --- custom lists ---------------------------------------------------------------------------------


def test_a_custom_file_replaces_the_default_list(tmp_path: Path) -> None:
    path = write(tmp_path, "# fruit only\n[fruit]\nbanana   # a comment after an entry\n~ green apple\n")
    custom = word_list(path)
    assert custom.categories == ("fruit",) and len(custom) == 2
    assert [flag.category for flag in custom.find("a Banana split")] == ["fruit"]
    assert custom.find("a massacre") == []  # the default list is not added
    assert custom.find("a green apple") != [] and custom.find("a green apple", "low") == []
    assert word_list(str(path)).find("banana") != []  # a path given as text


def test_a_list_of_lines_works_like_a_file() -> None:
    custom = word_list(["[pets]", "hamster", "~ goldfish", "", "# nothing here"])
    assert [flag.entry for flag in custom.find("a HAMSTER and a goldfish")] == ["hamster", "goldfish"]
    assert [flag.entry for flag in custom.find("a HAMSTER and a goldfish", "low")] == ["hamster"]
    assert word_list(custom) is custom
    assert word_list(None) is DEFAULT


def test_entries_before_any_category_are_other() -> None:
    assert [flag.category for flag in word_list(["dragon"]).find("a dragon")] == ["other"]


@pytest.mark.parametrize("text", ["", "\n\n", "# only comments\n\n   # and an indented one\n", "[empty]\n"])
def test_an_empty_list_turns_the_check_off(tmp_path: Path, text: str) -> None:
    empty = word_list(write(tmp_path, text))
    assert len(empty) == 0
    assert empty.find("a massacre with a machine gun") == []
    empty.check_prompt("a massacre with a machine gun", "gpt-image-1")  # no refusal
    assert word_list([]).find("a massacre") == []


def test_entries_are_compared_as_text_never_run_as_patterns() -> None:
    custom = word_list(["a.c", "(evil)+", "x|y", "[^]"])
    assert custom.find("abc") == []  # "." is no wildcard: "a.c" is the words "a c"
    assert custom.find("a c") != [] and custom.find("a-c") != []
    assert custom.find("evil") != [] and custom.find("evilevil") == []
    assert custom.find("x") == [] and custom.find("y") == [] and custom.find("x y") != []


@pytest.mark.parametrize("entry", ["*", "~", "~ *", "k*ll", "!!!", ".*"])
def test_an_entry_with_nothing_to_match_is_a_clear_error(tmp_path: Path, entry: str) -> None:
    path = write(tmp_path, f"# header\nfine\n{entry}\n")
    with pytest.raises(ConfigurationError) as caught:
        word_list(path)
    assert f"{path}, line 3" in caught.value.message and repr(entry) in caught.value.message
    assert "one word or phrase a line" in caught.value.hint


def test_a_file_that_cannot_be_read_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.txt"
    with pytest.raises(ConfigurationError) as caught:
        word_list(missing)
    assert str(missing) in caught.value.message and "No such file" in caught.value.message
    assert "an empty file turns moderation off" in caught.value.hint
    with pytest.raises(ConfigurationError, match="Could not read the moderation word list"):
        word_list(tmp_path)  # a folder
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigurationError, match="latin1.txt"):
        word_list(latin1)
    with pytest.raises(ConfigurationError, match="moderation_words must be"):
        word_list([b"bytes"])  # type: ignore[list-item]


# --- refusals as the API words them ---------------------------------------------------------------


def test_a_gpt_image_refusal_is_moderation_blocked() -> None:
    error = refusal("gpt-image-2.6-flare", "prompt", ["violence", "violence", "weapons"])
    assert (error.code, error.type, error.param) == (
        "moderation_blocked",
        "image_generation_user_error",
        "prompt",
    )
    assert error.message.startswith("Your request was rejected by the safety system")
    assert "safety_violations=[violence, weapons]" in error.message
    assert "prompt" in error.message and "Rephrase the prompt" in error.message
    assert error.body == {
        "error": {
            "message": error.message,
            "type": "image_generation_user_error",
            "param": "prompt",
            "code": "moderation_blocked",
            "moderation_details": {"moderation_stage": "input", "categories": ["violence", "weapons"]},
        }
    }


@pytest.mark.parametrize("model", ["dall-e-2", "dall-e-3", "my-own-model"])
def test_other_models_refuse_with_content_policy_violation(model: str) -> None:
    error = refusal(model, "prompt", ["violence"])
    assert (error.code, error.type, error.param) == (
        "content_policy_violation",
        "invalid_request_error",
        "prompt",
    )
    assert error.message.startswith(
        "Your request was rejected as a result of our safety system. Your prompt may contain text"
    )
    assert set(error.body["error"]) == {"message", "type", "param", "code"}


def test_refusals_say_which_part_was_flagged_and_what_to_do() -> None:
    image = refusal("gpt-image-1", "image")
    assert image.param == "image" and "input image" in image.message and "another image" in image.message
    assert image.body["error"]["moderation_details"]["moderation_stage"] == "input"
    output = refusal("dall-e-2", "output")
    assert output.param is None and "generated" in output.message and "another seed" in output.message
    assert (
        refusal("gpt-image-1", "output").body["error"]["moderation_details"]["moderation_stage"] == "output"
    )
    with pytest.raises(ValueError, match="part must be"):
        refusal("gpt-image-1", "mask")


def test_the_hint_follows_the_flagged_part() -> None:
    assert "Rephrase the prompt" in ContentPolicyError("Refused.", param="prompt").hint
    assert "another image" in ContentPolicyError("Refused.", param="image").hint
    assert "content policy" in ContentPolicyError("Refused.").hint  # an upstream's, part unknown
    assert ContentPolicyError("Refused.", param="prompt", hint="Mine.").hint == "Mine."
    told = describe_error(refusal("gpt-image-1", "prompt", ["violence"]))
    assert told.count("Rephrase the prompt") == 1  # the hint is not said twice


# --- the preview engine ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "code", "kind", "size"),
    [
        ("dall-e-2", "content_policy_violation", "invalid_request_error", "256x256"),
        ("dall-e-3", "content_policy_violation", "invalid_request_error", "1024x1024"),
        ("gpt-image-2.6-flare", "moderation_blocked", "image_generation_user_error", "1024x1024"),
    ],
)
def test_the_preview_engine_refuses_a_flagged_prompt_before_drawing(
    model: str, code: str, kind: str, size: str
) -> None:
    progress: list[Progress] = []
    hooks = CallHooks(on_progress=progress.append)
    request = GenerateRequest(prompt="a massacre in the town square", model=model, size=size)
    with pytest.raises(ContentPolicyError) as caught:
        PreviewEngine().run(request, hooks)
    assert (caught.value.code, caught.value.type, caught.value.param) == (code, kind, "prompt")
    assert "massacre" not in caught.value.message  # the list is never echoed
    assert progress == []  # refused before any image was made


def test_moderation_low_lets_a_relaxed_word_through_on_gpt_image_models() -> None:
    engine = PreviewEngine()
    prompt = "a toy gun on a wooden table"
    with pytest.raises(ContentPolicyError) as caught:
        engine.generate(prompt=prompt, model="gpt-image-2.6-flare", size="1024x1024", quality="low")
    assert caught.value.code == "moderation_blocked" and "safety_violations=[weapons]" in caught.value.message
    relaxed = engine.generate(
        prompt=prompt, model="gpt-image-2.6-flare", size="1024x1024", quality="low", moderation="low"
    )
    assert len(relaxed.data) == 1
    with pytest.raises(ContentPolicyError):  # "low" is not "off"
        engine.generate(
            prompt="a machine gun",
            model="gpt-image-2.6-flare",
            size="1024x1024",
            quality="low",
            moderation="low",
        )


def test_a_gpt_refusal_that_low_would_allow_says_so() -> None:
    engine = PreviewEngine()
    with pytest.raises(ContentPolicyError) as caught:
        engine.generate(prompt="a murder of crows on a grey sky", model="gpt-image-2.6-flare", quality="low")
    assert (
        'With moderation="low" (Moderation: low in the studio) this prompt is allowed.'
        in caught.value.message
    )
    with pytest.raises(ContentPolicyError) as strict:
        engine.generate(prompt="a massacre of crows", model="gpt-image-2.6-flare", quality="low")
    assert "moderation=" not in strict.value.message  # nothing relaxes what "low" refuses too


@pytest.mark.parametrize(
    "prompt",
    [
        "a glue gun on a craft table",
        "the naked eye view of the moon",
        "a bath bomb fizzing in water",
        "a pistol shrimp underwater",
        "Kill Bill movie poster style",
        "an overdose of colour",
    ],
)
def test_models_without_a_moderation_parameter_refuse_only_what_low_refuses(prompt: str) -> None:
    """DALL-E's users cannot relax the list, so the ambiguous words that only "auto" refuses pass."""
    engine = PreviewEngine()
    assert len(engine.generate(prompt=prompt, model="dall-e-2", size="256x256").data) == 1
    with pytest.raises(ContentPolicyError):
        engine.generate(prompt=prompt, model="gpt-image-2.6-flare", quality="low")


def test_a_dalle_refusal_names_the_category() -> None:
    with pytest.raises(ContentPolicyError) as caught:
        PreviewEngine().generate(prompt="a pipe bomb on a table", model="dall-e-2", size="256x256")
    assert caught.value.code == "content_policy_violation"
    assert "(flagged: weapons)" in caught.value.message and "bomb" not in caught.value.message


@pytest.mark.parametrize(
    ("model", "code", "side"),
    [("dall-e-2", "content_policy_violation", 256), ("gpt-image-1", "moderation_blocked", 1024)],
)
def test_the_preview_engine_refuses_a_flagged_edit(model: str, code: str, side: int) -> None:
    mask = np.zeros((side, side), dtype=bool)
    mask[side // 4 : side // 2, side // 4 : side // 2] = True
    size = f"{side}x{side}"
    with pytest.raises(ContentPolicyError) as caught:
        PreviewEngine().edit(
            image=png((side, side)), mask=mask, prompt="add a Pipe-Bomb", model=model, size=size
        )
    assert (caught.value.code, caught.value.param) == (code, "prompt")
    edited = PreviewEngine().edit(
        image=png((side, side)), mask=mask, prompt="add a pond", model=model, size=size
    )
    assert len(edited.data) == 1


def test_the_preview_engine_takes_a_custom_list_or_none(tmp_path: Path) -> None:
    custom = PreviewEngine(moderation_words=write(tmp_path, "[fruit]\nbanana\n"))
    with pytest.raises(ContentPolicyError, match=r"safety_violations=\[fruit\]"):
        custom.generate(prompt="a banana", model="gpt-image-1", size="1024x1024", quality="low")
    assert len(custom.generate(prompt="a massacre", model="dall-e-2", size="256x256").data) == 1
    unchecked = PreviewEngine(moderation_words=[])
    assert len(unchecked.generate(prompt="a massacre", model="dall-e-2", size="256x256").data) == 1
    with pytest.raises(ConfigurationError, match="nowhere.txt"):
        PreviewEngine(moderation_words=tmp_path / "nowhere.txt")


def test_default_backend_reads_the_word_list_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WORDS_VARIABLE, str(write(tmp_path, "banana\n")))
    backend = default_backend()
    assert isinstance(backend, PreviewEngine)
    with pytest.raises(ContentPolicyError):
        backend.generate(prompt="a banana", model="dall-e-2", size="256x256")
    assert len(backend.generate(prompt="a massacre", model="dall-e-2", size="256x256").data) == 1
    monkeypatch.setenv(WORDS_VARIABLE, str(tmp_path / "nowhere.txt"))
    with pytest.raises(ConfigurationError, match="nowhere.txt"):
        default_backend()
    monkeypatch.delenv(WORDS_VARIABLE)
    assert default_backend().moderation_words is DEFAULT  # type: ignore[attr-defined]
