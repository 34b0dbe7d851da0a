"""Content moderation you can teach with: a word list that refuses prompts as the Images API does.

The local engines (the preview and diffusers engines) have no safety model of their own, so they
check each prompt against a word list before any image is made. A flagged prompt is refused with
the :class:`~ipyimagegen.errors.ContentPolicyError` the API gives for that model:
``moderation_blocked`` (type ``image_generation_user_error``) for GPT image models,
``content_policy_violation`` (type ``invalid_request_error``) for DALL-E and other models. The
message says which part was flagged and what to do, and names the entry's category, never the
word that matched.

The list is a plain text file, one entry a line (``moderation_words.txt`` beside this module is
the default)::

    # a comment (a whole line, or the end of one)
    [violence]        the entries below belong to this category (safety_violations=[violence])
    massacre          refused at moderation "auto" (the default) and "low"
    machine gun       a phrase: its words in a row, whatever the spaces or punctuation between
    ~ gun             refused at "auto" only: moderation="low" lets it through
    porn*             any word that starts with "porn"

Entries before any ``[category]`` belong to ``other``. Matching is by whole words and ignores
case, accents, punctuation and spacing: ``GUN``, ``g-u-n`` and ``g u n`` match ``gun``;
``gunther`` does not. Digits and ``@``/``$`` inside a word count as the letters they stand for
(``k1ll`` is ``kill``). The file's text is only ever compared, never run as a pattern.

A custom list replaces the default one: a path or a list of lines in the same format
(:func:`word_list`). An empty list turns the check off. A file that cannot be read, or an entry
with nothing to match, is a :class:`~ipyimagegen.errors.ConfigurationError` when the list is
loaded, so a server refuses to start rather than run without the list it was given.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path

from .errors import CONTENT_POLICY_VIOLATION, MODERATION_BLOCKED, ConfigurationError, ContentPolicyError
from .models import GPT_IMAGE, family_of

MODERATIONS = ("auto", "low")
"""The strictness levels, as the API's ``moderation`` parameter names them."""

WORDS_VARIABLE = "IPYIMAGEGEN_MODERATION_WORDS"
"""The environment variable that names a word list file for :func:`~ipyimagegen.default_backend`."""

DEFAULT_FILE = "moderation_words.txt"
OTHER = "other"

PROMPT, IMAGE, OUTPUT = "prompt", "image", "output"
"""What was flagged: the prompt, an uploaded image, or an image the model made."""

_WORD = re.compile(r"(?:[^\W_]|[@$])+")
_LETTERS_FOR = str.maketrans("013457@$", "oieastas")
_SPELLED_OUT = 3  # this many single letters in a row ("g u n") are read as the word they spell
_CATEGORY = re.compile(r"^\[([^\[\]]+)\]$")


def words(text: str) -> list[str]:
    """The words of ``text`` as the list compares them: lower case, no accents, no punctuation."""
    text = unicodedata.normalize("NFKD", text).casefold()
    text = "".join(c for c in text if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")
    found = []
    for word in _WORD.findall(text):
        if not (word.isalpha() or word.isdigit()) and any(c.isalpha() for c in word):
            word = word.translate(_LETTERS_FOR)  # k1ll, pr0n, $ex
        found.append(word)
    return found


@dataclass(frozen=True)
class Entry:
    """One line of the list: its words, whether the last one is a prefix, its category, and
    whether only moderation "auto" refuses it."""

    words: tuple[str, ...]
    prefix: bool = False
    category: str = OTHER
    auto_only: bool = False

    def __str__(self) -> str:
        return " ".join(self.words) + ("*" if self.prefix else "")

    def matches_at(self, text: Sequence[str], start: int) -> bool:
        """Whether the words of ``text`` from ``start`` on begin with this entry."""
        count = len(self.words)
        if start + count > len(text):
            return False
        *whole, last = self.words
        if any(text[start + k] != word for k, word in enumerate(whole)):
            return False
        found = text[start + count - 1]
        return found.startswith(last) if self.prefix else found == last


@dataclass(frozen=True)
class Flag:
    """What the list found in a text: the entry's category and its words (for the host's eyes:
    a refusal names only the category)."""

    category: str
    entry: str


class WordList:
    """The entries of a moderation word list, checked against prompts. Empty: nothing is flagged."""

    def __init__(self, entries: Iterable[Entry] = (), source: str = "") -> None:
        self.entries = tuple(entries)
        self.source = source
        self._first: dict[str, list[Entry]] = {}  # by first word, for entries of whole words
        self._prefixes: list[Entry] = []  # one-word prefixes ("porn*"), compared with every word
        self._listed: dict[Entry, Entry] = {}  # each form compared -> the entry the list has
        for entry in self.entries:
            self._listed[entry] = entry
            if len(entry.words) > 1:  # "self harm" is also "selfharm"
                self._listed.setdefault(replace(entry, words=("".join(entry.words),)), entry)
        for form in self._listed:
            if form.prefix and len(form.words) == 1:
                self._prefixes.append(form)
            else:
                self._first.setdefault(form.words[0], []).append(form)
        self._longest = max((len("".join(entry.words)) for entry in self.entries), default=0)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"<WordList of {len(self.entries)} entries{where}>"

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories of the entries, in the list's order."""
        return tuple(dict.fromkeys(entry.category for entry in self.entries))

    # -- reading -------------------------------------------------------------------------------

    @classmethod
    def parse(cls, lines: Iterable[str], source: str = "") -> WordList:
        """A list from lines in the file's format (see the module's docstring)."""
        entries = []
        category = OTHER
        where = f"{source}, " if source else ""
        for number, line in enumerate(lines, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            header = _CATEGORY.match(text)
            if header:
                category = " ".join(header.group(1).split()).lower()
                continue
            auto_only = text.startswith("~")
            text = text.removeprefix("~").strip()
            prefix = text.endswith("*")
            text = text.removesuffix("*").rstrip()
            found = words(text)
            if "*" in text or not found:
                raise ConfigurationError(
                    f"The moderation word list ({where}line {number}) has an entry it cannot use: "
                    f"{line.strip()!r}.",
                    hint="Write one word or phrase a line, with letters or digits; '~' before it, '*' at its "
                    "end and '[category]' lines are the only marks (the default list, moderation_words.txt "
                    "in the package, shows the format in its header).",
                )
            entries.append(Entry(tuple(found), prefix, category, auto_only))
        return cls(entries, source)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> WordList:
        """The list in a UTF-8 text file; a file that cannot be read is a :class:`ConfigurationError`."""
        try:
            text = Path(path).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigurationError(
                f"Could not read the moderation word list {os.fspath(path)}: {reason}.",
                hint="Give a readable UTF-8 text file, one word or phrase a line (an empty file turns "
                "moderation off).",
            ) from None
        return cls.parse(text.splitlines(), os.fspath(path))

    @classmethod
    def default(cls) -> WordList:
        """The list shipped with the package (read once)."""
        return _default_list()

    # -- checking ------------------------------------------------------------------------------

    def find(self, text: str, moderation: str | None = None) -> list[Flag]:
        """Every entry ``text`` contains, at strictness ``moderation``: "auto" (the default) or "low"."""
        level = _level(moderation)
        if not self.entries:
            return []
        found = words(text)
        flags: dict[Flag, None] = {}

        def note(form: Entry) -> None:
            if level == "auto" or not form.auto_only:
                flags[Flag(form.category, str(self._listed[form]))] = None

        for start, word in enumerate(found):
            for entry in self._first.get(word, ()):
                if entry.matches_at(found, start):
                    note(entry)
            for entry in self._prefixes:
                if word.startswith(entry.words[0]):
                    note(entry)
        for spelled in _spelled_out(found, self._longest):
            for entry in [*self._first.get(spelled, ()), *self._prefixes]:
                if entry.matches_at([spelled], 0):
                    note(entry)
        return list(flags)

    def check_prompt(self, prompt: str, model: str, moderation: str | None = None) -> None:
        """Refuse ``prompt`` with the API's :class:`ContentPolicyError` for ``model`` if the list flags it.

        Only the GPT image models take ``moderation``: they are checked at "auto" unless it says
        "low". Models without the parameter (DALL-E, a local checkpoint) are checked at "low", as
        their users have no way to relax the list: words such as "gun" or "naked", which ordinary
        prompts use ("a glue gun", "the naked eye"), are refused by "auto" only.
        """
        if family_of(model) != GPT_IMAGE:
            moderation = "low"
        flags = self.find(prompt, moderation)
        if flags:
            relaxed = _level(moderation) == "auto" and not self.find(prompt, "low")
            raise refusal(model, PROMPT, [flag.category for flag in flags], relaxed_allows=relaxed)


def _level(moderation: str | None) -> str:
    """Strictness "low" relaxes the list; anything else ("auto", None, an unknown value) is "auto"."""
    return "low" if moderation == "low" else "auto"


def _spelled_out(found: Sequence[str], longest: int) -> Iterable[str]:
    """Words spelled one letter at a time ("g u n", "g.u.n"): every run of letters in a row, joined."""
    run: list[str] = []
    for word in [*found, ""]:
        if len(word) == 1:
            run.append(word)
            continue
        if len(run) >= _SPELLED_OUT:
            for start in range(len(run)):
                for end in range(start + 2, min(len(run), start + longest) + 1):
                    yield "".join(run[start:end])
        run = []


WordSource = WordList | str | os.PathLike[str] | Iterable[str] | None
"""What ``moderation_words=`` takes: see :func:`word_list`."""


@cache
def _default_list() -> WordList:
    text = resources.files(__package__).joinpath(DEFAULT_FILE).read_text(encoding="utf-8")
    return WordList.parse(text.splitlines(), DEFAULT_FILE)


def word_list(source: WordSource = None) -> WordList:
    """The list to check prompts against: the default one (None), a file (a path), lines in the
    file's format (a list of strings; an empty list turns the check off), or a :class:`WordList`."""
    if source is None:
        return WordList.default()
    if isinstance(source, WordList):
        return source
    if isinstance(source, (str, os.PathLike)):
        return WordList.read(source)
    lines = list(source)
    if not all(isinstance(line, str) for line in lines):
        raise ConfigurationError(
            "moderation_words must be a file path, a list of words or phrases, or None for the default list."
        )
    return WordList.parse(lines)


# -- refusals as the API words them ----------------------------------------------------------------

_ADVICE = {
    PROMPT: "Rephrase the prompt and try again.",
    IMAGE: "Use another image and try again.",
    OUTPUT: "Try again with another seed, or rephrase the prompt.",
}

_DALL_E_PART = {
    PROMPT: "Your prompt may contain text that is not allowed by our safety system.",
    IMAGE: "Your input image may contain content that is not allowed by our safety system.",
    OUTPUT: "The image generated from your prompt may contain content that is not allowed by our safety "
    "system.",
}

_GPT_IMAGE_PART = {
    PROMPT: "the prompt was flagged",
    IMAGE: "the input image was flagged",
    OUTPUT: "the generated image was flagged",
}


def refusal(
    model: str, part: str = PROMPT, categories: Sequence[str] = (), *, relaxed_allows: bool = False
) -> ContentPolicyError:
    """The error the Images API answers for a flagged ``part`` (prompt, image or output) with ``model``.

    GPT image models: ``moderation_blocked``, type ``image_generation_user_error``, with
    ``moderation_details`` (stage and categories) in the body. Other models: DALL-E's
    ``content_policy_violation``, type ``invalid_request_error``. ``param`` names the part the
    caller sent (``prompt`` or ``image``; None for an output). ``relaxed_allows``: the prompt would
    pass at ``moderation="low"``, and the message says so.
    """
    if part not in _ADVICE:
        raise ValueError(f"part must be one of {', '.join(_ADVICE)}, got {part!r}.")
    categories = list(dict.fromkeys(categories))
    param = None if part == OUTPUT else part
    if family_of(model) == GPT_IMAGE:
        violations = f" safety_violations=[{', '.join(categories)}]." if categories else ""
        relax = ' With moderation="low" (Moderation: low in the studio) this prompt is allowed.'
        message = (
            f"Your request was rejected by the safety system: {_GPT_IMAGE_PART[part]}.{violations} "
            f"{_ADVICE[part]}{relax if relaxed_allows else ''}"
        )
        code, kind = MODERATION_BLOCKED, "image_generation_user_error"
        details = {
            "moderation_details": {
                "moderation_stage": "output" if part == OUTPUT else "input",
                "categories": categories,
            }
        }
    else:
        flagged = f" (flagged: {', '.join(categories)})" if categories else ""
        message = (
            f"Your request was rejected as a result of our safety system. {_DALL_E_PART[part][:-1]}{flagged}. "
            f"{_ADVICE[part]}"
        )
        code, kind = CONTENT_POLICY_VIOLATION, "invalid_request_error"
        details = {}
    body = {"error": {"message": message, "type": kind, "param": param, "code": code, **details}}
    return ContentPolicyError(message, code=code, param=param, type=kind, body=body, hint=_ADVICE[part])


__all__ = [
    "IMAGE",
    "MODERATIONS",
    "OUTPUT",
    "PROMPT",
    "WORDS_VARIABLE",
    "Entry",
    "Flag",
    "WordList",
    "WordSource",
    "refusal",
    "word_list",
    "words",
]
