"""The mental-health safety screen: reviewed phrases and a learned classifier.

Every message, on every channel, is normalised first (``bot.safety.text``:
Unicode, invisible characters, spacing, letter substitutions), then:

- phrases from ``data/safety/phrases.yml`` match on lowercase words, on
  normalised lemmas (every reflexive pronoun counts as "myself", so "he wants
  to kill himself" matches "kill myself") or on word beginnings; idioms under
  ``not_mental_health`` cancel a match that lies inside them ("I killed myself
  laughing"), and ``informational`` spans mark a question about the medicine
  ("does accutane cause suicidal thoughts?");
- the classifier (``bot.safety.classifier``) scores the message.

Three outcomes, most urgent first:

- ``CRISIS``: a crisis phrase that is not part of an informational question,
  or a high crisis score: 988 and 911 at once and an urgent handoff;
- ``POSSIBLE``: a possible risk (a passive wish, a question about overdose or
  lethality, an informational question about suicide, or a crisis score the
  classifier is unsure of): a direct, kind question and a handoff;
- ``CONCERN``: low mood, anxiety and the like: support and a staff follow-up.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from spacy.language import Language
from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc

from bot import settings
from bot.safety.text import (
    asked_in_a_question,
    counted_pills,
    harm_was_meant,
    laughed_off_wish,
    looks_spanish,
    normalise,
    reports_on_it,
    tells_about_oneself,
    variants,
)

if TYPE_CHECKING:
    from bot.safety.classifier import SafetyClassifier

logger = logging.getLogger(__name__)

PHRASES_FILE = settings.DATA_DIR / "safety" / "phrases.yml"
REFLEXIVES = frozenset(
    {
        "myself", "himself", "herself", "themselves", "themself", "yourself",
        "yourselves", "ourselves", "urself", "myslef", "meself", "oneself",
    }
)  # fmt: skip


# Verdicts kept for texts screened again (see SafetyScreen.screen).
RECENT_VERDICTS = 256

# "I'd rather die than get bangs": a preference, said of an everyday thing, is
# hyperbole. Said of going on living it is a wish to die, so the rest of the
# sentence must name none of these for the phrase to be cancelled.
_RATHER_DIE = (("rather", "die", "than"), ("rather", "be", "dead", "than"))
_GOING_ON = re.compile(
    r"\b(live|living|lives|alive|life|exist|existing|go on|going on|keep going|"
    r"keep on|continue|continuing|carry on|wake up|waking up|another day|"
    r"another week|another year|tomorrow|feel like this|feel this way|"
    r"feeling like this|feeling this way|like this|this way|anymore|any more|"
    r"be me|being me|be here|stay|deal with (this|it|everything)|face (another|"
    r"everyone|everything|them)|kill|hurt|end)\b"
)
_SENTENCE_END = frozenset({".", "!", "?", "\n", ";"})


# "I'm going to die of a chapstick overdose lol": too much of a balm or a
# drink is a joke about the balm. The span reaches back over "going to".
_HARMLESS_EXCESS = frozenset(
    {
        "chapstick", "balm", "lipbalm", "vaseline", "aquaphor", "lotion",
        "sunscreen", "spf", "moisturizer", "moisturiser", "cerave", "cetaphil",
        "carmex", "blistex", "vanicream", "eucerin", "coffee", "caffeine",
        "sugar", "candy", "chocolate", "water", "tea", "boba", "lip",
    }
)  # fmt: skip


def _harmless_overdoses(doc: Doc) -> list[tuple[int, int]]:
    """Spans of "(going to) die of a <balm> overdose" (hyperbole)."""
    spans = []
    for i, token in enumerate(doc):
        if token.lower_ not in ("die", "dying", "died", "dead") or i + 1 >= len(doc):
            continue
        if doc[i + 1].lower_ != "of":
            continue
        window = doc[i + 2 : i + 7]
        ends = [t.i for t in window if t.lower_.startswith("overdos")]
        if ends and any(t.lower_ in _HARMLESS_EXCESS for t in doc[i + 2 : ends[0]]):
            spans.append((max(i - 3, 0), ends[0] + 1))
    return spans


def _everyday_preferences(doc: Doc) -> list[tuple[int, int]]:
    """Spans of "rather die than <an everyday thing>" (hyperbole)."""
    spans = []
    lowered = [token.lower_ for token in doc]
    for start in range(len(doc)):
        for pattern in _RATHER_DIE:
            if tuple(lowered[start : start + len(pattern)]) != pattern:
                continue
            end = start + len(pattern)
            while end < len(doc) and doc[end].text not in _SENTENCE_END:
                end += 1
            rest = doc[start + len(pattern) : end].text.lower()
            if rest.strip() and not _GOING_ON.search(rest):
                spans.append((start, end))
    return spans


class Level(str, Enum):
    CRISIS = "crisis"
    POSSIBLE = "possible"
    CONCERN = "concern"


# Which handoff each outcome stores before the reply. A possible risk starts
# as a concern; the patient's answer to the safety question (or none) decides
# whether it becomes a crisis.
HANDOFF_LEVEL = {Level.CRISIS: "crisis", Level.POSSIBLE: "concern",
                 Level.CONCERN: "concern"}  # fmt: skip


@dataclass(frozen=True)
class ScreenResult:
    level: Level | None
    phrases: tuple[str, ...] = ()
    source: str | None = None  # "phrases", "classifier", both, or "model"
    informational: bool = False  # a question about the medicine, not a disclosure
    spanish: bool = False
    scores: dict[str, float] = field(default_factory=dict)
    idiom: bool = False  # a reviewed idiom matched: nothing learned overrules it

    @property
    def flagged(self) -> bool:
        return self.level is not None

    @property
    def handoff_level(self) -> str | None:
        return HANDOFF_LEVEL[self.level] if self.level else None

    def confirms_intent_model(self, thresholds) -> bool:
        """Whether the intent classifier's ``crisis`` may stand as a possible
        risk: no idiom, and (with the safety classifier) a crisis score."""
        if self.idiom or self.informational:
            return False
        if not self.scores or thresholds is None:
            return True
        return self.scores.get("crisis", 0.0) >= thresholds.confirm_intent_model

    def as_dict(self) -> dict[str, object]:
        """What the NLU component hands to the actions in the parse data."""
        return {
            "level": self.level.value if self.level else None,
            "source": self.source,
            "informational": self.informational,
            "spanish": self.spanish,
            "phrases": list(self.phrases),
            "scores": {k: round(v, 3) for k, v in self.scores.items()},
            "idiom": self.idiom,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ScreenResult:
        level = data.get("level")
        return cls(
            Level(level) if level else None,
            tuple(data.get("phrases") or ()),
            data.get("source"),
            bool(data.get("informational")),
            bool(data.get("spanish")),
            dict(data.get("scores") or {}),
            bool(data.get("idiom")),
        )


def _set_norms(doc: Doc) -> Doc:
    """NORM := lemma, with every reflexive pronoun as "myself"."""
    for token in doc:
        lemma = token.lemma_ or token.lower_
        token.norm_ = "myself" if token.lower_ in REFLEXIVES else lemma
    return doc


@dataclass(frozen=True)
class PhraseVerdict:
    level: Level | None
    phrases: tuple[str, ...]
    informational: bool  # crisis words only as part of a question about the drug
    idiom: bool  # a reviewed idiom matched ("I killed myself laughing")
    # a wish to die laughed off ("this hold music makes me want to die lol"):
    # only a sure classifier makes it a crisis, not one that merely agrees
    laughed_off: bool = False


@dataclass
class _Found:
    idiom: bool = False
    crisis: list[tuple[int, int, str]] = field(default_factory=list)
    possible: list[str] = field(default_factory=list)
    concern: list[str] = field(default_factory=list)
    informational: list[tuple[int, int]] = field(default_factory=list)


class SafetyScreen:
    """Screens a message: crisis, possible risk, concern, or nothing."""

    def __init__(
        self,
        nlp: Language,
        phrases: dict,
        classifier: SafetyClassifier | None = None,
    ) -> None:
        self.nlp = nlp
        self._recent_lock = threading.Lock()
        self._screening = threading.Lock()
        self.classifier = classifier  # also empties the recent verdicts
        self._words = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._lemmas = PhraseMatcher(nlp.vocab, attr="NORM")
        self._idioms = PhraseMatcher(nlp.vocab, attr="NORM")
        self._informational = PhraseMatcher(nlp.vocab, attr="NORM")
        self._prefixes = Matcher(nlp.vocab)
        for level in Level:
            lists = phrases.get(level.value) or {}
            self._add(self._words, level.value, lists.get("words") or [])
            self._add(self._lemmas, level.value, lists.get("lemmas") or [])
            prefixes = [
                re.escape(normalise(str(p))) for p in lists.get("prefixes") or []
            ]
            if prefixes:
                pattern = {"LOWER": {"REGEX": f"^(?:{'|'.join(prefixes)})"}}
                self._prefixes.add(level.value, [[pattern]])
        self._add(self._idioms, "idiom", phrases.get("not_mental_health") or [])
        self._add(
            self._informational, "informational", phrases.get("informational") or []
        )

    def _doc(self, text: str) -> Doc:
        return _set_norms(self.nlp(text))

    def _add(self, matcher: PhraseMatcher, label: str, phrases: list[str]) -> None:
        docs = [self._doc(normalise(str(phrase))) for phrase in phrases]
        if docs:
            matcher.add(label, docs)

    @classmethod
    def from_files(
        cls,
        phrases_path: Path = PHRASES_FILE,
        pipeline_path: Path = settings.SPACY_PIPELINE_DIR,
        classifier: SafetyClassifier | None = None,
    ) -> SafetyScreen:
        from bot.nlu.spacy_pipeline import load_pipeline

        phrases = yaml.safe_load(Path(phrases_path).read_text(encoding="utf-8"))
        return cls(load_pipeline(pipeline_path), phrases, classifier)

    def _find(self, text: str, with_idioms: bool = True) -> _Found:
        doc = self._doc(text)
        idioms = [(s, e) for _, s, e in self._idioms(doc)] if with_idioms else []
        if with_idioms:
            idioms += _everyday_preferences(doc) + _harmless_overdoses(doc)
        found = _Found(
            idiom=bool(idioms),
            informational=[(s, e) for _, s, e in self._informational(doc)],
        )
        for matcher in (self._words, self._lemmas, self._prefixes):
            for match_id, start, end in matcher(doc):
                if any(s <= start and end <= e for s, e in idioms):
                    continue
                level = Level(self.nlp.vocab.strings[match_id])
                span = doc[start:end].text
                if level is Level.CRISIS:
                    found.crisis.append((start, end, span))
                elif level is Level.POSSIBLE:
                    found.possible.append(span)
                else:
                    found.concern.append(span)
        return found

    def phrase_level(self, text: str) -> PhraseVerdict:
        """What the phrases alone say about a message."""
        disclosed, asked, possible, concern = [], [], [], []
        idiom = False
        # "burned myself with the curling iron on purpose": no idiom cancels a
        # harm the writer says was meant.
        with_idioms = not harm_was_meant(text)
        for variant in variants(text):
            found = self._find(variant, with_idioms)
            idiom = idiom or found.idiom
            for start, end, span in found.crisis:
                inside = any(s <= start and end <= e for s, e in found.informational)
                (asked if inside else disclosed).append(span)
            possible += found.possible
            concern += found.concern

        def verdict(level: Level | None, spans: list[str], info=False) -> PhraseVerdict:
            return PhraseVerdict(level, tuple(dict.fromkeys(spans)), info, idiom)

        if overdose := counted_pills(text):
            disclosed.append(overdose)

        if disclosed and laughed_off_wish(text, disclosed):
            # Hyperbole most of the time: the direct question, unless the
            # classifier is sure of a crisis on its own.
            spans = tuple(dict.fromkeys(disclosed))
            return PhraseVerdict(Level.POSSIBLE, spans, False, idiom, laughed_off=True)
        if disclosed:
            return verdict(Level.CRISIS, disclosed)
        if asked:
            asking = asked_in_a_question(text, asked) or reports_on_it(text)
            if tells_about_oneself(text) or not asking:
                return verdict(Level.CRISIS, asked)
            return verdict(Level.POSSIBLE, asked, info=True)
        if possible:
            return verdict(Level.POSSIBLE, possible)
        if concern:
            return verdict(Level.CONCERN, concern)
        return verdict(None, [])

    def _scores(self, text: str) -> dict[str, float]:
        if not self.classifier:
            return {}
        try:
            return self.classifier.scores(text)
        except Exception as error:
            # The phrases still screen this message: never fail the crisis path.
            # The error's type only: its text could quote the message.
            logger.error(
                "the safety classifier failed on a message (%s): phrases only",
                type(error).__name__,
            )
            return {}

    def screen(self, text: str | None) -> ScreenResult:
        """The verdict on ``text``. The same text is screened twice per
        message (by the channel, before Rasa, and by the NLU component): the
        last few verdicts are kept, so the second costs nothing."""
        with self._recent_lock:
            if text in self._recent:
                self._recent.move_to_end(text)
                return self._recent[text]
        # One message screened at a time: the channels screen in threads of
        # their own while Rasa's NLU screens on the event loop, and a spaCy
        # pipeline is not made to be run by two threads at once.
        with self._screening:
            with self._recent_lock:  # screened by the other thread meanwhile
                if text in self._recent:
                    return self._recent[text]
            result = self._screen(text)
        with self._recent_lock:
            self._recent[text] = result
            while len(self._recent) > RECENT_VERDICTS:
                self._recent.popitem(last=False)
        return result

    @property
    def classifier(self) -> SafetyClassifier | None:
        return self._classifier

    @classifier.setter
    def classifier(self, classifier: SafetyClassifier | None) -> None:
        self._classifier = classifier
        self._recent = OrderedDict()  # verdicts of another classifier

    def _screen(self, text: str | None) -> ScreenResult:
        if not text or not normalise(text):
            return ScreenResult(None)
        phrases = self.phrase_level(text)
        level, spans = phrases.level, phrases.phrases
        spanish = looks_spanish(text)
        scores = self._scores(text)

        def result(
            level: Level | None, source: str | None, informational: bool = False
        ) -> ScreenResult:
            matched = spans if source and "phrases" in source else ()
            return ScreenResult(
                level, matched, source, informational, spanish, scores, phrases.idiom
            )

        # The classifier does not overrule a reviewed idiom ("I killed myself
        # laughing") or an informational question's reading ...
        learned = bool(scores) and not phrases.idiom and not phrases.informational
        limits = self.classifier.thresholds if self.classifier else None
        crisis = scores.get("crisis", 0.0)
        if (
            scores
            and phrases.idiom
            and level is None
            and crisis >= limits.crisis_near
            and scores.get("neighbours", 0.0) >= limits.crisis_near_vote
        ):
            # ... except that an idiom somewhere in a message the classifier
            # and its nearest examples both read as a crisis cannot silence
            # it: "i tried to end it earlier tonight" holds the idiom "end it
            # early" (the course). Sure and among crisis examples: the crisis
            # reply; otherwise ask, with 988 and a handoff.
            sure = crisis >= limits.crisis_sure and scores["neighbours"] >= 0.9
            return result(Level.CRISIS if sure else Level.POSSIBLE, "classifier")
        if level is Level.CRISIS:
            asked = (
                learned
                and asked_in_a_question(text, spans)
                and not tells_about_oneself(text)
                and crisis < limits.concern_risk
                and scores.get("concern", 0.0) >= limits.informational
            )
            if asked:  # about the medicine, not the writer: facts and the question
                return result(Level.POSSIBLE, "phrases+classifier", informational=True)
            return result(level, "phrases")
        neighbours = scores.get("neighbours", 0.0)
        if learned and crisis >= limits.crisis:
            # The regression alone, fairly sure, with none of the examples
            # nearest in meaning a crisis: its confident false alarms look
            # like this ("about to strangle this printer"). Ask instead.
            vote = scores.get("neighbours", 1.0)
            supported = vote >= limits.crisis_support
            sure = crisis >= limits.crisis_sure and vote >= limits.crisis_sure_support
            if sure or supported:
                return result(Level.CRISIS, "classifier")
            return result(Level.POSSIBLE, "classifier")
        if (
            learned
            and crisis >= limits.crisis_near
            and neighbours >= limits.crisis_near_vote
        ):
            # Not quite sure, but the messages nearest in meaning are crises.
            return result(Level.CRISIS, "classifier")
        agrees = crisis >= limits.agree and not phrases.laughed_off
        if learned and level is Level.POSSIBLE and agrees:
            return result(Level.CRISIS, "phrases+classifier")
        # Near a crisis example in meaning: ask, whatever else was found.
        near = learned and neighbours >= limits.neighbours
        if (
            level is Level.CONCERN
            and learned
            and (crisis >= limits.concern_risk or near)
        ):
            return result(Level.POSSIBLE, "phrases+classifier")
        if level is not None:
            return result(level, "phrases", phrases.informational)
        if learned and (crisis >= limits.possible or near):
            return result(Level.POSSIBLE, "classifier")
        mood = crisis + scores.get("concern", 0.0)  # anything but ordinary
        if learned and (
            scores.get("concern", 0.0) >= limits.concern or mood >= limits.mood
        ):
            # As for a concern the phrases found: with a risk signal, ask.
            if crisis >= limits.concern_risk:
                return result(Level.POSSIBLE, "classifier")
            return result(Level.CONCERN, "classifier")
        return result(None, None)


def _default_classifier() -> SafetyClassifier | None:
    from bot.safety.classifier import default_classifier

    try:
        return default_classifier()
    except Exception:
        # The phrases still screen every message; never crash the crisis path.
        logger.exception("the safety classifier could not be loaded: phrases only")
        return None


@lru_cache(maxsize=1)
def default_screen() -> SafetyScreen:
    """The screen built from the project's phrase file, spaCy pipeline and
    classifier."""
    return SafetyScreen.from_files(classifier=_default_classifier())
