"""Generated multilingual text: pseudo-languages in five scripts, with Zipfian word use.

Every reference model that reads text draws it from here, so the tokenizers are
trained on, and the models see, the same kind of text: several scripts
(Latin, Cyrillic, Arabic, Devanagari, CJK), words built from each script's
syllables, and a frequency rank per word that tasks can use as "rarity".
Everything is a pure function of a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_CJK_FIRST = 0x4E00
# 600 consecutive Han code points: enough distinct "morphemes" for a lexicon
# of a few hundred one- and two-character words.
_CJK_COUNT = 600


@dataclass(frozen=True, kw_only=True)
class Script:
    """How words of one writing system are spelt and joined."""

    name: str
    consonants: str
    vowels: str
    word_separator: str
    sentence_end: str

    def __post_init__(self) -> None:
        """Reject a script with no letters to build syllables from."""
        if self.name != "cjk" and not (self.consonants and self.vowels):
            raise ValueError(
                f"script {self.name!r} needs consonants and vowels, "
                f"got {self.consonants!r} / {self.vowels!r}"
            )


SCRIPTS: dict[str, Script] = {
    "latin": Script(
        name="latin",
        consonants="bcdfghjklmnprstvwz",
        vowels="aeiouy",
        word_separator=" ",
        sentence_end=".",
    ),
    "cyrillic": Script(
        name="cyrillic",
        consonants="бвгджзклмнпрстфхцчш",
        vowels="аеиоуыэюя",
        word_separator=" ",
        sentence_end=".",
    ),
    "arabic": Script(
        name="arabic",
        consonants="بتثجحخدذرزسشصضطظعغفقكلمنه",
        vowels="اوي",
        word_separator=" ",
        sentence_end=".",
    ),
    # Consonant + dependent vowel sign (matra) gives a syllable, as in real Devanagari text.
    "devanagari": Script(
        name="devanagari",
        consonants="कखगघचछजझटठडढतथदधनपफबभमयरलवशसह",
        vowels="ािीुूेैोौ",
        word_separator=" ",
        sentence_end="।",
    ),
    # Han characters are syllables on their own; Chinese text has no spaces.
    "cjk": Script(name="cjk", consonants="", vowels="", word_separator="", sentence_end="。"),
}


@dataclass(frozen=True, kw_only=True)
class Language:
    """A pseudo-language: an mBART-style language code and the script it is written in."""

    code: str
    script: str

    def __post_init__(self) -> None:
        """Reject an unknown script."""
        if self.script not in SCRIPTS:
            raise ValueError(
                f"unknown script {self.script!r} for language {self.code!r}; "
                f"known: {sorted(SCRIPTS)}"
            )


# Four Latin-script languages (different syllable choices per language), and
# one language per other script: the codes are real mBART language codes.
LANGUAGES: tuple[Language, ...] = (
    Language(code="en_XX", script="latin"),
    Language(code="de_DE", script="latin"),
    Language(code="fr_XX", script="latin"),
    Language(code="es_XX", script="latin"),
    Language(code="ru_RU", script="cyrillic"),
    Language(code="ar_AR", script="arabic"),
    Language(code="hi_IN", script="devanagari"),
    Language(code="zh_CN", script="cjk"),
)


def language(code: str) -> Language:
    """Return the pseudo-language with this code."""
    for lang in LANGUAGES:
        if lang.code == code:
            return lang
    raise ValueError(f"unknown language code {code!r}; known: {[lang.code for lang in LANGUAGES]}")


@dataclass(frozen=True, kw_only=True)
class Lexicon:
    """The words of one pseudo-language, most frequent first."""

    language: Language
    words: tuple[str, ...]
    zipf_exponent: float = 1.0

    def __post_init__(self) -> None:
        """Reject an empty or repetitive word list."""
        if not self.words or len(set(self.words)) != len(self.words):
            raise ValueError(
                f"lexicon for {self.language.code!r} needs distinct words, "
                f"got {len(self.words)} words"
            )

    @property
    def script(self) -> Script:
        """The script the words are written in."""
        return SCRIPTS[self.language.script]

    def ranks(self, rng: np.random.Generator, n: int, *, rare_fraction: float = 0.0) -> np.ndarray:
        """Draw `n` word ranks.

        Each is Zipfian over the common half of the lexicon or, with probability
        `rare_fraction`, uniform over the rare half.
        """
        if not 0.0 <= rare_fraction <= 1.0:
            raise ValueError(f"rare_fraction must be in [0, 1], got {rare_fraction}")
        half = len(self.words) // 2
        weights = 1.0 / np.arange(1, half + 1) ** self.zipf_exponent
        common = rng.choice(half, size=n, p=weights / weights.sum())
        rare = rng.integers(half, len(self.words), size=n)
        return np.where(rng.random(n) < rare_fraction, rare, common)

    def sentence(self, words: Sequence[str]) -> str:
        """Join words into a sentence the way the script does."""
        return self.script.word_separator.join(words) + self.script.sentence_end

    def random_sentence(
        self, rng: np.random.Generator, n_words: int, *, rare_fraction: float = 0.0
    ) -> str:
        """A sentence of `n_words` words drawn with `ranks`."""
        return self.sentence(
            [self.words[r] for r in self.ranks(rng, n_words, rare_fraction=rare_fraction)]
        )


def _syllable(rng: np.random.Generator, script: Script, consonants: str) -> str:
    if script.name == "cjk":
        return chr(_CJK_FIRST + int(rng.integers(_CJK_COUNT)))
    return (
        consonants[int(rng.integers(len(consonants)))]
        + script.vowels[int(rng.integers(len(script.vowels)))]
    )


def make_lexicon(lang: Language, *, size: int, seed: int) -> Lexicon:
    """Build `size` distinct words for `lang`; the same seed gives the same words.

    Each language uses its own random two-thirds of its script's consonants, so
    Latin-script languages look different from one another. Words have one to
    three syllables (CJK: one or two characters); rarer words tend to be longer,
    as in natural languages.
    """
    if size < 2:
        raise ValueError(f"lexicon size must be at least 2, got {size}")
    script = SCRIPTS[lang.script]
    rng = np.random.default_rng([seed, *lang.code.encode()])
    consonants = script.consonants
    if consonants:
        keep = rng.permutation(len(consonants))[: max(3, 2 * len(consonants) // 3)]
        consonants = "".join(consonants[i] for i in sorted(keep))
    max_syllables = 2 if script.name == "cjk" else 3
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < size:
        # Longer words become likelier as the lexicon fills up (rank grows).
        longer = len(words) / size
        n_syll = (
            1
            + int(rng.random() < 0.3 + 0.5 * longer)
            + int(max_syllables > 2 and rng.random() < 0.4 * longer)
        )
        word = "".join(_syllable(rng, script, consonants) for _ in range(n_syll))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return Lexicon(language=lang, words=tuple(words))


def lexicons(*, size: int, seed: int, codes: Sequence[str] | None = None) -> tuple[Lexicon, ...]:
    """One lexicon per language (all of `LANGUAGES` unless `codes` names some)."""
    langs = LANGUAGES if codes is None else tuple(language(code) for code in codes)
    return tuple(make_lexicon(lang, size=size, seed=seed) for lang in langs)


def tokenizer_corpus(rng: np.random.Generator, lexicon_list: Sequence[Lexicon],
                     sentences_per_language: int) -> list[str]:
    """Sentences of 4–23 words, 30% rare, interleaved across languages, to train a tokenizer."""
    return [
        lex.random_sentence(rng, int(rng.integers(4, 24)), rare_fraction=0.3)
        for _ in range(sentences_per_language)
        for lex in lexicon_list
    ]
