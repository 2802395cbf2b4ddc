"""The mental-health safety screen: curated phrases, matched with spaCy.

Every message is tokenised by the project's spaCy pipeline (blank English +
lookup lemmatizer). Phrases from ``data/safety/phrases.yml`` match either on
lowercase words or on normalised lemmas (every reflexive pronoun counts as
"myself"), so "killing myself", "he wants to kill himself" and "Feeling
SUICIDAL" all match. Idioms listed under ``not_mental_health`` cancel a match
that lies inside them ("I killed myself laughing").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path

import yaml
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from bot import settings

PHRASES_FILE = settings.DATA_DIR / "safety" / "phrases.yml"
REFLEXIVES = frozenset(
    {
        "myself", "himself", "herself", "themselves", "themself", "yourself",
        "yourselves", "ourselves", "urself", "myslef", "meself", "oneself",
    }
)  # fmt: skip
# "self-harm" -> "self harm", "i'm" with a curly apostrophe -> "i'm".
_HYPHEN = re.compile(r"(?<=[a-z])[-_](?=[a-z])")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


class Level(str, Enum):
    CRISIS = "crisis"
    CONCERN = "concern"


@dataclass(frozen=True)
class ScreenResult:
    level: Level | None
    phrases: tuple[str, ...] = ()

    @property
    def flagged(self) -> bool:
        return self.level is not None


def normalise_text(text: str) -> str:
    return _HYPHEN.sub(" ", text.translate(_APOSTROPHES).lower())


def _set_norms(doc: Doc) -> Doc:
    """NORM := lemma, with every reflexive pronoun as "myself"."""
    for token in doc:
        lemma = token.lemma_ or token.lower_
        token.norm_ = "myself" if token.lower_ in REFLEXIVES else lemma
    return doc


class SafetyScreen:
    """Screens a message for crisis or concern phrases."""

    def __init__(self, nlp: Language, phrases: dict) -> None:
        self.nlp = nlp
        self._words = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._lemmas = PhraseMatcher(nlp.vocab, attr="NORM")
        self._idioms = PhraseMatcher(nlp.vocab, attr="NORM")
        self._prefixes = Matcher(nlp.vocab)
        for level in Level:
            lists = phrases.get(level.value) or {}
            self._add(self._words, level.value, lists.get("words") or [])
            self._add(self._lemmas, level.value, lists.get("lemmas") or [])
            prefixes = [re.escape(str(p).lower()) for p in lists.get("prefixes") or []]
            if prefixes:
                pattern = {"LOWER": {"REGEX": f"^(?:{'|'.join(prefixes)})"}}
                self._prefixes.add(level.value, [[pattern]])
        self._add(self._idioms, "idiom", phrases.get("not_mental_health") or [])

    def _doc(self, text: str) -> Doc:
        return _set_norms(self.nlp(normalise_text(text)))

    def _add(self, matcher: PhraseMatcher, label: str, phrases: list[str]) -> None:
        docs = [self._doc(str(phrase)) for phrase in phrases]
        if docs:
            matcher.add(label, docs)

    @classmethod
    def from_files(
        cls,
        phrases_path: Path = PHRASES_FILE,
        pipeline_path: Path = settings.SPACY_PIPELINE_DIR,
    ) -> SafetyScreen:
        from bot.spacy_pipeline import load_pipeline

        phrases = yaml.safe_load(Path(phrases_path).read_text(encoding="utf-8"))
        return cls(load_pipeline(pipeline_path), phrases)

    def screen(self, text: str | None) -> ScreenResult:
        if not text or not text.strip():
            return ScreenResult(None)
        doc = self._doc(text)
        idioms = [(start, end) for _, start, end in self._idioms(doc)]
        found: dict[Level, list[str]] = {Level.CRISIS: [], Level.CONCERN: []}
        for matcher in (self._words, self._lemmas, self._prefixes):
            for match_id, start, end in matcher(doc):
                if any(s <= start and end <= e for s, e in idioms):
                    continue
                level = Level(self.nlp.vocab.strings[match_id])
                found[level].append(doc[start:end].text)
        for level in Level:  # crisis first
            if found[level]:
                return ScreenResult(level, tuple(dict.fromkeys(found[level])))
        return ScreenResult(None)


@lru_cache(maxsize=1)
def default_screen() -> SafetyScreen:
    """The screen built from the project's phrase file and spaCy pipeline."""
    return SafetyScreen.from_files()
