"""The moderation word list: matching, strictness, custom and broken lists; the preview engine's refusals."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipyimagegen.api.types import CallHooks, GenerateRequest, Progress
from ipyimagegen.backend_choice import default_backend
from ipyimagegen.engines.preview import PreviewEngine
from ipyimagegen.errors import ConfigurationError, ContentPolicyError, describe_error
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
    # photography
    "a long exposure of city traffic at night",
    "a macro shot of a dewdrop on a leaf, shot on a 100mm lens",
    "shooting portraits in golden hour with a shotgun microphone on the boom",
    "a camera on a tripod with a pistol grip head",
    "a seagull photobombing a wedding photo",
    "a tilt-shift photo of a model railway",
    # food
    "a naked cake with fresh berries",
    "a chocolate bombe with raspberries",
    "a flavour bomb of a taco with lime",
    "killer chocolate brownies on a tray",
    "an espresso shot and a croissant",
    "a corpse reviver cocktail at a speakeasy",
    # fashion
    "a bomber jacket in olive green",
    "a nude lipstick with a matte finish",
    "nude heels with a little black dress",
    "a GORE-TEX hiking jacket in the rain",
    "dressed to kill in a red gown",
    "heroin chic catwalk styling from the nineties",
    # animals
    "a naked mole rat colony underground",
    "a pistol shrimp snapping in a reef",
    "a murder of crows on a fence",
    "a riflebird displaying in the rainforest",
    "a nudibranch on coral",
    "three killer whales and a seal",
    # games
    "a Nerf gun battle in the garden",
    "a water gun fight at the beach",
    "a murder mystery party with candles",
    "a kill switch on an arcade machine",
    "pixel art of a platformer level",
    "a chess board in the middle of a game",
    # film
    "Top Gun style aviator sunglasses",
    "a Kill Bill inspired poster",
    "The Naked Gun movie night",
    "a Corpse Bride costume",
    "the Suicide Squad cast photo",
    "a poster for Guns N' Roses",
    "a film noir detective in the rain",
    # capitals, digits and other scripts
    "an iPhone on a desk",
    "McIntosh apples in a basket",
    "AIs in the lab, IKEA shelves and the Isle of Skye",
    "déjà vu at a café",
    "Красивый закат над морем",  # Russian: look-alike letters do not make a listed word
    "καλημέρα κόσμε",
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
    assert [flag.entry for flag in DEFAULT.find("erotica novels")] == ["erotic*"]
    assert [flag.entry for flag in DEFAULT.find("eroticism")] == ["erotic*"]
    assert DEFAULT.find("a popcorn stand") == []  # inside a word is not the start of it
    custom = word_list(["sweet*", "dark choc*"])
    assert [flag.entry for flag in custom.find("sweetness")] == ["sweet*"]
    assert [flag.entry for flag in custom.find("dark chocolate")] == ["dark choc*"]
    assert [flag.entry for flag in custom.find("darkchocolate")] == ["dark choc*"]
    assert custom.find("a dark chapel") == []


# --- the review's prompts -------------------------------------------------------------------------

ORDINARY = [
    # refused at "auto" by the words alone
    "a kill switch",
    "Top Gun poster",
    "a glue gun",
    "a toy gun",
    "a water pistol",
    "a pistol shrimp",
    "a bath bomb",
    "a bomb-proof shelter",
    "a naked mole rat",
    "a nude colour palette",
    "Al Gore portrait",
    "GORE-TEX jacket",
    "a corpse flower",
    "corpse reviver cocktail",
    "a dead body of water",
    "a shotgun wedding",
    "a rifle bird",
    "Kill Bill",
    "killing it on stage",
    "photobomb",
    "a photo-bomb",
    # refused at "low" too by the words alone
    "Pornic castle",
    "a torture museum",
    "the suicide squad",
    "heroin chic",
    "hang myself a picture",
    # the exceptions' own forms
    "three glue guns",
    "bath bombs in a jar",
    "kill switches on a panel",
    "Kill BiII",  # the capital I read as l makes the exception too
    "g l u e gun",
]


@pytest.mark.parametrize("prompt", ORDINARY)
def test_ordinary_prompts_pass_at_both_levels(prompt: str) -> None:
    assert DEFAULT.find(prompt) == []
    assert DEFAULT.find(prompt, "low") == []
    DEFAULT.check_prompt(prompt, "gpt-image-1")  # no refusal at "auto"


FLAGGED = [  # (prompt, the strictest level that still refuses it, its category)
    # inflections
    ("massacres", "low", "violence"),
    ("bombs", "auto", "weapons"),
    ("murders", "auto", "violence"),
    ("assault rifles", "low", "weapons"),
    ("grenades", "auto", "weapons"),
    ("massacred villagers", "low", "violence"),
    ("decapitating", "low", "violence"),
    ("dead bodies", "auto", "violence"),
    ("erotica", "low", "sexual"),
    # evasions
    ("@gun", "auto", "weapons"),
    ("$gun", "auto", "weapons"),
    ("kiII", "auto", "violence"),
    ("KiII them all", "auto", "violence"),
    ("\u0563\u057dn", "auto", "weapons"),  # Armenian gim and seh
    ("\u0261un", "auto", "weapons"),  # IPA script g
    ("\u1d0b\u026a\u029f\u029f", "auto", "violence"),  # small capitals
    ("a m\u0430ssacre", "low", "violence"),  # Cyrillic a
    ("\u041c\u0410SS\u0410CRE", "low", "violence"),  # Cyrillic capitals
    ("\u0405\u0415\u0425 \u0405\u0421\u0415\u039d\u0415", "low", "sexual"),  # Cyrillic and Greek capitals
    ("s e x scene", "low", "sexual"),
    ("s e x s c e n e", "low", "sexual"),
    ("m a c h i n e gun", "low", "weapons"),
    ("a machine g u n", "low", "weapons"),
    ("pipe b o m b s", "low", "weapons"),
    # an exception excuses only its own words
    ("a glue gun and a machine gun", "low", "weapons"),
    ("a glue gun and a gun", "auto", "weapons"),
    ("a gun and glue", "auto", "weapons"),
]


@pytest.mark.parametrize(("prompt", "level", "category"), FLAGGED)
def test_flagged_prompts_are_refused_at_the_right_level(prompt: str, level: str, category: str) -> None:
    flags = DEFAULT.find(prompt)
    assert category in {flag.category for flag in flags}, flags
    low = DEFAULT.find(prompt, "low")
    assert (low != []) == (level == "low"), low
    with pytest.raises(ContentPolicyError) as caught:
        DEFAULT.check_prompt(prompt, "gpt-image-1")
    assert category in caught.value.body["error"]["moderation_details"]["categories"]
    for flag in flags:
        assert flag.entry.rstrip("*") not in caught.value.message.lower()  # the list is never echoed
    if level == "low":
        with pytest.raises(ContentPolicyError):
            DEFAULT.check_prompt(prompt, "dall-e-3")
    else:
        DEFAULT.check_prompt(prompt, "dall-e-3")  # no refusal: DALL-E is checked at "low"
        DEFAULT.check_prompt(prompt, "gpt-image-1", "low")


# --- exceptions -----------------------------------------------------------------------------------


def test_an_exception_excuses_only_the_words_inside_its_phrase() -> None:
    custom = word_list(["[weapons]", "~ gun", "machine gun", "[other]", "! glue gun  # a craft tool"])
    assert custom.exceptions == (("glue", "gun"),) and len(custom) == 2
    assert custom.find("a glue gun") == [] and custom.find("a Glue-Gun") == []
    assert custom.find("three glue guns") == []  # the exception's last word is inflected too
    assert [flag.entry for flag in custom.find("a glue gun and a machine gun")] == ["machine gun", "gun"]
    assert [flag.entry for flag in custom.find("a glue gun, then a gun")] == ["gun"]
    assert [flag.entry for flag in custom.find("a gun with glue")] == ["gun"]  # another order
    assert custom.find("glue") == []
    assert word_list(["! glue gun"]).find("a gun") == []  # exceptions alone check nothing


def test_an_exception_must_hold_a_whole_entry() -> None:
    custom = word_list(["machine gun", "! gun show"])
    assert custom.find("a machine gun show") != []  # "machine" lies outside the exception
    assert word_list(["machine gun", "! machine gun show"]).find("a machine gun show") == []


def test_the_default_exceptions_are_data() -> None:
    assert ("glue", "gun") in DEFAULT.exceptions and ("heroin", "chic") in DEFAULT.exceptions
    without = WordList(DEFAULT.entries)  # the same entries without the file's exceptions
    assert without.find("a glue gun") != [] and without.find("heroin chic", "low") != []


# --- inflections and evasions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "forms", "others"),
    [
        ("bomb", ["bombs", "bombed", "bombing"], ["bombe", "bomber", "bombes", "abomb"]),
        ("massacre", ["massacres", "massacred", "massacring"], ["massacreed", "massacreing"]),
        ("box", ["boxes", "boxed", "boxing"], ["boxer"]),
        ("body", ["bodies", "bodied", "bodying"], ["bodys", "bod"]),
        ("dead body", ["dead bodies", "deadbodies"], ["deads body"]),
        ("ox", ["ox"], ["oxes", "oxen"]),  # words of two letters are not inflected
        ("late*", ["lateral", "latest"], ["plate"]),  # a prefix already matches every ending
    ],
)
def test_the_last_word_matches_its_inflected_forms(entry: str, forms: list[str], others: list[str]) -> None:
    custom = word_list([entry])
    for form in forms:
        assert custom.find(f"a {form} here") != [], form
    for other in others:
        assert custom.find(f"a {other} here") == [], other


def test_at_and_dollar_begin_no_word_but_count_as_letters_inside_one() -> None:
    assert words("@gun $ex #gun m@ss@cre gun$ k1ll") == ["gun", "ex", "gun", "massacre", "guns", "kill"]


def test_look_alike_letters_are_read_as_latin_ones() -> None:
    assert words("\u0261\u057dn \u0441\u043e\u0440\u0435 \u1d0b\u026a\u029f\u029f \u03bf\u03c1\u03b1") == [
        "gun",
        "cope",
        "kill",
        "opa",
    ]


@pytest.mark.parametrize(
    ("prompt", "flagged"),
    [
        ("kiII", True),
        ("KiII", True),
        ("kIll", True),  # capital I for i: the ordinary reading is already "kill"
        ("KIII", False),  # no lower-case letter: nothing says the I's are l's
        ("IiII", False),
        ("a kiIIer whale", False),
        ("iPhone kiIn", False),
    ],
)
def test_a_capital_i_inside_a_lower_case_word_is_also_read_as_l(prompt: str, flagged: bool) -> None:
    assert (DEFAULT.find(prompt) != []) == flagged


def test_low_relaxes_the_entries_marked_for_auto_only() -> None:
    assert [flag.category for flag in DEFAULT.find("a murder in the library")] == ["violence"]
    assert DEFAULT.find("a murder in the library", "low") == []
    assert DEFAULT.find("a massacre", "low") != []  # unmarked entries stay refused
    assert DEFAULT.find("a murder in the library", None) == DEFAULT.find("a murder in the library", "auto")


def test_every_category_flagged_is_named_once() -> None:
    flags = DEFAULT.find("a massacre with a pipe bomb, a massacre")
    assert {flag.entry for flag in flags} == {"massacre", "pipe bomb", "bomb"}  # each entry once
    with pytest.raises(ContentPolicyError) as caught:
        DEFAULT.check_prompt("a massacre with a pipe bomb, a massacre", "gpt-image-1")
    assert "safety_violations=[violence, weapons]." in caught.value.message


@pytest.mark.parametrize(
    "prompt",
    [
        " ".join("abcdefghijklmnopqrstuvwxyz"[k % 26] for k in range(16_000)),  # single letters
        " ".join("gunbomsexpi"[k % 11] for k in range(16_000)),  # letters that spell listed words
        ("a lighthouse in a storm with seagulls over the harbour " * 600)[:32_000],
        ("a glue gun and a bath bomb " * 1_300)[:32_000],  # matches and exceptions everywhere
        ("\u0261\u057dn \u0441\u0430\u0444\u0430\u0440\u0438 d\u00e9j\u00e0 vu " * 1_700)[:32_000],
    ],
)
def test_a_long_prompt_is_checked_whole(prompt: str) -> None:
    """The longest prompts the API takes are read to the end (the time it takes: python -m bench)."""
    assert len(prompt) >= 31_999
    categories = {flag.category for flag in DEFAULT.find(prompt + " and a massacre")}
    assert "violence" in categories  # the entry at the very end is found


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


@pytest.mark.parametrize(
    "entry", ["*", "~", "~ *", "k*ll", "!!!", ".*", "!", "! *", "! glue gun*", "! ~ gun"]
)
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
    prompt = "a cowboy with a gun on a wooden table"
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
        engine.generate(
            prompt="a murder in the library on a grey day", model="gpt-image-2.6-flare", quality="low"
        )
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
        "a cowboy with a gun in a saloon",
        "naked branches in winter",
        "a cartoon bomb with a fuse",
        "a pistol in a museum case",
        "a murder scene in a noir film",
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
