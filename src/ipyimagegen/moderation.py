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
    erotic*           any word that starts with "erotic"
    ! glue gun        an exception: an ordinary phrase in which the listed words are not flagged

Entries before any ``[category]`` belong to ``other``. An exception holds whatever the category:
only the words inside one of its occurrences are excused, so "a glue gun" passes and "a glue gun
and a machine gun" is flagged for the machine gun.

Matching is by whole words and ignores case, accents, punctuation and spacing: ``GUN``, ``g-u-n``
and ``g u n`` match ``gun``; ``gunther`` does not. Letters spelled one at a time are read as the
words they spell, inside a phrase too ("s e x scene"). The last word of an entry or exception
(of three letters or more, not a prefix) also matches its forms ending in -s, -es, -ed and -ing,
spelled as English spells them: ``bomb`` matches "bombs", "bombed" and "bombing", ``massacre``
"massacred" and "massacring", ``body`` "bodies"; other forms ("stabbed") are entries of their own.

Some evasions are seen through. Digits, ``@`` and ``$`` inside a word count as the letters they
stand for (``k1ll`` is ``kill``, ``m@ssacre`` is ``massacre``); at the start of a word ``@`` and
``$`` are punctuation (``@gun`` is ``gun``). A capital ``I`` inside an otherwise lower-case word is
also read as ``l`` (``kiII`` is both "kiii" and "kill"). Letters that look like Latin ones are
read as them (:data:`LOOKALIKES`: Cyrillic ``а е о р с у х``, Greek ``ο ρ υ``, Armenian ``ս``,
IPA ``ɡ`` and small capitals such as ``ᴋ``). The file's text is only ever compared, never run as
a pattern.

A custom list replaces the default one: a path or a list of lines in the same format
(:func:`word_list`). An empty list turns the check off. A file that cannot be read, or an entry
with nothing to match, is a :class:`~ipyimagegen.errors.ConfigurationError` when the list is
loaded, so a server refuses to start rather than run without the list it was given.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import accumulate, pairwise
from pathlib import Path
from typing import NamedTuple

from .errors import (
    CONTENT_POLICY_VIOLATION,
    FLAGGED_PART_HINTS,
    MODERATION_BLOCKED,
    ConfigurationError,
    ContentPolicyError,
)
from .models import GPT_IMAGE, family_of

MODERATIONS = ("auto", "low")
"""The strictness levels, as the API's ``moderation`` parameter names them."""

WORDS_VARIABLE = "IPYIMAGEGEN_MODERATION_WORDS"
"""The environment variable that names a word list file for :func:`~ipyimagegen.default_backend`."""

DEFAULT_FILE = "moderation_words.txt"
OTHER = "other"

PROMPT, IMAGE, OUTPUT = "prompt", "image", "output"
"""What was flagged: the prompt, an uploaded image, or an image the model made."""

LOOKALIKES = {
    "Cyrillic": ("аеорсухкіјѕһԁԛԝӏВНМТ", "aeopcyxkijshdqwlbhmt"),
    "Greek": ("αβεικνορτυχΗΜΝΥΖ", "abeikvoptuxhmnyz"),
    "Armenian": ("գցհոսօզՍՕ", "gghnuoquo"),
    "IPA and other Latin": ("ɑɡɩıȷǀ", "agiijl"),
    "small capitals": ("ᴀʙᴄᴅᴇɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ", "abcdeghijklmnoprstuvwyz"),
}
"""Letters that look like Latin ones, by script, and the Latin letters they are read as. Small
letters, and the capitals whose small letters look like no Latin one (Cyrillic ``Н``, Greek
``Ν``): other capitals are lower-cased first (Cyrillic ``С`` is ``с``, read as ``c``)."""

_LATIN_FOR = str.maketrans(
    "".join(lookalike for lookalike, _ in LOOKALIKES.values()),
    "".join(latin for _, latin in LOOKALIKES.values()),
)
_WORD = re.compile(r"[^\W_](?:[^\W_]|[@$])*")  # begins with a letter or digit: "@gun" is "gun"
_LETTERS_FOR = str.maketrans("013457@$", "oieastas")
_INNER_CAPITAL_I = re.compile(r"(?<![^\W_])[^\W_]+I[^\W_]*")  # a word with a capital I after its first letter
_SPELLED_OUT = 3  # this many single letters in a row ("g u n") are read as the word they spell
_CATEGORY = re.compile(r"^\[([^\[\]]+)\]$")


def words(text: str) -> list[str]:
    """The words of ``text`` as the list compares them: lower case, no accents, no punctuation."""
    return _split(_fold(text))


class _Folding(dict[int, "int | None"]):
    """:meth:`str.translate`'s table for :func:`_fold`, learnt a character at a time: combining marks
    and invisible format characters dropped, look-alike letters read as Latin ones."""

    def __missing__(self, code: int) -> int | None:
        char = chr(code)
        dropped = unicodedata.combining(char) or unicodedata.category(char) == "Cf"
        folded = None if dropped else _LATIN_FOR.get(code, code)
        if len(self) < 10_000:  # the characters prompts use; a flood of rare ones is not kept
            self[code] = folded
        return folded


_FOLDING = _Folding()


def _fold(text: str) -> str:
    """``text`` in lower case, without accents or invisible format characters, look-alike letters Latin."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKD", text).translate(_FOLDING).casefold().translate(_FOLDING)


def _split(folded: str) -> list[str]:
    """The words of folded text, digits and ``@``/``$`` among letters read as letters (k1ll, pr0n, m@ss)."""
    return [
        word
        if word.isalpha() or word.isdigit() or not any(c.isalpha() for c in word)
        else word.translate(_LETTERS_FOR)
        for word in _WORD.findall(folded)
    ]


def _l_for_capital_i(match: re.Match[str]) -> str:
    """A word whose letters after the first are lower case but for capital I's, with the I's as l's."""
    word = match.group()
    others = [c for c in word[1:] if c != "I" and c.isalpha()]
    if others and all(c.islower() for c in others):
        return word[0] + word[1:].replace("I", "l")
    return word


def _read(text: str) -> tuple[list[str], list[tuple[int, str]]]:
    """The words of ``text``, and the other readings of some of them: (index, word) for "kiII" as "kill"."""
    found = words(text)
    if "I" not in text:
        return found, []
    with_l = _INNER_CAPITAL_I.sub(_l_for_capital_i, text)
    if with_l == text:
        return found, []
    return found, [
        (k, other) for k, (word, other) in enumerate(zip(found, words(with_l), strict=True)) if other != word
    ]


def _inflections(word: str) -> tuple[str, ...]:
    """``word`` and its forms ending in -s, -es, -ed and -ing, spelled as English spells them."""
    if len(word) < 3 or not word.isalpha():
        return (word,)
    if word.endswith("e"):  # massacres, massacred, massacring
        return word, word + "s", word + "d", word[:-1] + "ing"
    if word.endswith("y") and word[-2] not in "aeiou":  # bodies, bodied, bodying
        return word, word[:-1] + "ies", word[:-1] + "ied", word + "ing"
    plural = word + "es" if word.endswith(("s", "x", "z", "ch", "sh")) else word + "s"
    return word, plural, word + "ed", word + "ing"


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


class _Form(NamedTuple):
    """One way a text may write an entry or an exception (``entry`` None): its words, the last one
    perhaps a prefix."""

    words: tuple[str, ...]
    prefix: bool
    entry: Entry | None


def _fits(words: Sequence[str], prefix: bool, text: Sequence[str], start: int) -> bool:
    """Whether the words of ``text`` from ``start`` on are ``words``, the last one a prefix if ``prefix``."""
    count = len(words)
    if not count:
        return True
    if start + count > len(text) or any(text[start + k] != words[k] for k in range(count - 1)):
        return False
    found = text[start + count - 1]
    return found.startswith(words[-1]) if prefix else found == words[-1]


def _forms(entry: Entry) -> Iterator[tuple[tuple[str, ...], bool]]:
    """The ways a text may write an entry (or an exception's phrase): its last word inflected, and a
    phrase's words run together ("self harm" is also "selfharm")."""
    *head, last = entry.words
    for word in (last,) if entry.prefix else _inflections(last):
        yield (*head, word), entry.prefix
        if head:
            yield ("".join(head) + word,), entry.prefix


@dataclass(frozen=True)
class Flag:
    """What the list found in a text: the entry's category and its words (for the host's eyes:
    a refusal names only the category)."""

    category: str
    entry: str


class WordList:
    """The entries of a moderation word list, and its exceptions, checked against prompts. No
    entries: nothing is flagged."""

    def __init__(
        self, entries: Iterable[Entry] = (), source: str = "", exceptions: Iterable[Sequence[str]] = ()
    ) -> None:
        self.entries = tuple(entries)
        self.exceptions = tuple(tuple(phrase) for phrase in exceptions)
        self.source = source
        forms = dict.fromkeys(
            [
                *(_Form(words, prefix, entry) for entry in self.entries for words, prefix in _forms(entry)),
                *(
                    _Form(words, False, None)
                    for phrase in self.exceptions
                    for words, _ in _forms(Entry(phrase))
                ),
            ]
        )
        # Indexes of the forms: one-word ones by their word or prefix ("erotic*"), phrases by each
        # pair of words in a row (with the place of the pair's first word), phrases that end in a
        # prefix by each of their words.
        self._words: dict[str, list[_Form]] = {}
        self._prefixes: dict[str, list[_Form]] = {}
        self._pairs: dict[tuple[str, str], list[tuple[int, _Form]]] = {}
        self._phrase_prefixes: dict[str, list[tuple[int, _Form]]] = {}
        for form in forms:
            if len(form.words) == 1:
                (self._prefixes if form.prefix else self._words).setdefault(form.words[0], []).append(form)
            elif form.prefix:
                for place, word in enumerate(form.words):
                    self._phrase_prefixes.setdefault(word, []).append((place, form))
            else:
                for place, pair in enumerate(pairwise(form.words)):
                    self._pairs.setdefault(pair, []).append((place, form))
        self._leads = {
            pair[0] for pair, places in self._pairs.items() if any(place == 0 for place, _ in places)
        }
        self._leads |= {form.words[0] for places in self._phrase_prefixes.values() for _, form in places}
        self._prefix_lengths = sorted({len(prefix) for prefix in self._prefixes})
        known = {word for form in forms for word in form.words}  # what letters spelled out may spell
        self._stems = {word[:end] for word in known for end in range(1, len(word) + 1)}
        self._known = known

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
        exceptions = []
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
            exception = text.startswith("!")
            auto_only = text.startswith("~")
            text = text.removeprefix("!" if exception else "~").strip()
            prefix = not exception and text.endswith("*")
            text = text.removesuffix("*").rstrip() if prefix else text
            found = words(text)
            if "*" in text or (exception and text.startswith("~")) or not found:
                raise ConfigurationError(
                    f"The moderation word list ({where}line {number}) has an entry it cannot use: "
                    f"{line.strip()!r}.",
                    hint="Write one word or phrase a line, with letters or digits; '~' before it, '*' at its "
                    "end, '!' before an ordinary phrase (an exception) and '[category]' lines are the only "
                    "marks (the default list, moderation_words.txt in the package, shows the format in its "
                    "header).",
                )
            if exception:
                exceptions.append(tuple(found))
            else:
                entries.append(Entry(tuple(found), prefix, category, auto_only))
        return cls(entries, source, exceptions)

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
        """Every entry ``text`` contains, at strictness ``moderation``: "auto" (the default) or "low",
        but for the words inside an exception's phrase."""
        level = _level(moderation)
        if not self.entries:
            return []
        found, others = _read(text)
        matches = self._matches(found)
        for start, end, word in [*((k, k + 1, other) for k, other in others), *self._spelled_out(found)]:
            matches += self._read_as(found, start, end, word)
        hits: list[tuple[int, int, Entry]] = []
        excused = [0] * (len(found) + 1)  # by first word: the furthest end of an exception there
        for start, end, entry in matches:
            if entry is None:
                excused[start] = max(excused[start], end)
            elif level == "auto" or not entry.auto_only:
                hits.append((start, end, entry))
        if not hits:
            return []
        reach = list(accumulate(excused, max))  # the furthest end of an exception begun at or before
        hits.sort(key=lambda hit: hit[:2])
        flags = (Flag(entry.category, str(entry)) for start, end, entry in hits if reach[start] < end)
        return list(dict.fromkeys(flags))

    def _matches(self, found: list[str]) -> list[tuple[int, int, Entry | None]]:
        """Every entry and exception (None) in the words ``found``: (start, end, entry)."""
        matches: list[tuple[int, int, Entry | None]] = []
        single, prefixes, lengths, leads = self._words, self._prefixes, self._prefix_lengths, self._leads
        for start, word in enumerate(found):
            if word in single:
                matches += [(start, start + 1, form.entry) for form in single[word]]
            for length in lengths:
                if len(word) < length:
                    break
                matches += [(start, start + 1, form.entry) for form in prefixes.get(word[:length], ())]
            if word in leads:
                places = [
                    *self._pairs.get((word, found[start + 1] if start + 1 < len(found) else ""), ()),
                    *self._phrase_prefixes.get(word, ()),
                ]
                matches += [
                    (start, start + len(form.words), form.entry)
                    for place, form in places
                    if place == 0 and _fits(form.words, form.prefix, found, start)
                ]
        return matches

    def _read_as(
        self, found: list[str], start: int, end: int, word: str
    ) -> list[tuple[int, int, Entry | None]]:
        """The entries and exceptions that use ``word`` read in place of ``found[start:end]``, with the
        words around it: (start, end, entry)."""
        places = [(0, form) for form in self._words.get(word, ())]
        for length in self._prefix_lengths:
            if len(word) < length:
                break
            places += ((0, form) for form in self._prefixes.get(word[:length], ()))
        if start > 0:
            places += ((place + 1, form) for place, form in self._pairs.get((found[start - 1], word), ()))
        if end < len(found):
            places += self._pairs.get((word, found[end]), ())
        places += self._phrase_prefixes.get(word, ())
        matches = []
        for place, form in places:
            first, tail = start - place, form.words[place + 1 :]
            if first < 0 or not _fits(form.words[:place], False, found, first):
                continue
            if tail and not _fits(tail, form.prefix, found, end):
                continue
            matches.append((first, end + len(tail), form.entry))
        return matches

    def _spelled_out(self, found: list[str]) -> Iterator[tuple[int, int, str]]:
        """Words spelled one letter at a time ("g u n", "g.u.n"): (start, end, word) for each run of
        single letters in a row that spells a word of the list."""
        count = len(found)
        start = 0
        while start < count:
            end = start
            while end < count and len(found[end]) == 1:
                end += 1
            if end - start >= _SPELLED_OUT:
                for first in range(start, end):
                    word = found[first]
                    for last in range(first + 1, end):
                        word += found[last]
                        if word not in self._stems:
                            break
                        if word in self._known:
                            yield first, last + 1, word
            start = end + 1

    def check_prompt(self, prompt: str, model: str, moderation: str | None = None) -> None:
        """Refuse ``prompt`` with the API's :class:`ContentPolicyError` for ``model`` if the list flags it.

        Only the GPT image models take ``moderation``: they are checked at "auto" unless it says
        "low". Models without the parameter (DALL-E, a local checkpoint) are checked at "low", as
        their users have no way to relax the list: words such as "gun" or "naked", which ordinary
        prompts use ("a cowboy with a gun", "naked branches in winter"), are refused by "auto" only.
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

_ADVICE = {  # the error tree's hints for what a caller sent, and one for what the model made
    **FLAGGED_PART_HINTS,
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
    "LOOKALIKES",
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
