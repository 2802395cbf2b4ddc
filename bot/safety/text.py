"""Text normalisation for the safety screen: however a message is spelled or
spaced, the screen sees the same words.

A crisis phrase must match whether it is typed with a double space, a tab, a
non-breaking space, a zero-width character, full-width letters, accents, digits
for letters ("su1c1de"), stretched letters ("dieeee") or letters spaced out
("k i l l myself", "i w a n t  t o  d i e"). ``variants`` returns the few
spellings of a message that the phrase matcher and the classifier look at; a
phrase found in any of them counts.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Format characters (Unicode category Cf: zero-width space, joiners, the BOM,
# soft hyphen, bidi marks) and other invisibles are removed outright.
_INVISIBLE_EXTRA = {"\u034f", "\u115f", "\u1160", "\u3164", "\uffa0"}
_APOSTROPHES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'", "´": "'"}
)
# "self-harm", "self_harm", "s/h" between letters -> a space.
_JOINERS = re.compile(r"(?<=[^\W\d_])[-_/.](?=[^\W\d_])")
# Letters each followed by a dot, "K.I.L.L. MYSELF": the last dot goes too.
_DOTTED_LETTERS = re.compile(r"\b(?:[^\W\d_]\.){2,}")
# Digits and symbols people use for letters, folded only inside a word that
# has letters on both sides of them ("k1ll", "su1c1de", "d!e", or "$uicide"),
# never in "40mg" or "2x".
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
     "$": "s", "!": "i", "|": "l"}
)  # fmt: skip
_LEET_WORD = re.compile(r"\S*[a-z]\S*")
_HAS_LEET = re.compile(r"[a-z][013457@$!|]+[a-z]|^[$@][a-z]")
_STRETCHED = re.compile(r"([a-z])\1{2,}")
# Three or more single letters separated by spaces: "k i l l", "s u i c i d e".
_SPACED_LETTERS = re.compile(r"\b(?:[a-z] ){2,}[a-z]\b")
_WHITESPACE = re.compile(r"\s+")
# Words spelled out letter by letter, with wider gaps between the words:
# "i w a n t  t o  d i e". Collapsing the spaces first would lose the words.
_WIDE_GAP = re.compile(r"\s{2,}")
_SPELLED_WORD = re.compile(r"(?:[a-z] )+[a-z]")


def _strip_invisible(text: str) -> str:
    return "".join(
        " " if char in "\t\n\r\v\f" else char
        for char in text
        if unicodedata.category(char) != "Cf" and char not in _INVISIBLE_EXTRA
    )


def _fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _plain(text: str) -> str:
    """NFKC, no invisibles, straight apostrophes, no accents, lowercase; the
    spacing as typed."""
    text = unicodedata.normalize("NFKC", text or "")
    return _fold_accents(_strip_invisible(text).translate(_APOSTROPHES)).lower()


# Texting shorthand for a word the phrases spell out: "better off w/o me".
_WITHOUT = re.compile(r"(?<!\w)w/o(?!\w)")


@lru_cache(maxsize=256)  # one message is normalised by several checks
def normalise(text: str) -> str:
    """Lowercase, NFKC, no invisibles or accents, one space between words,
    "w/o" spelled out."""
    text = _WITHOUT.sub("without", _plain(text))
    text = _DOTTED_LETTERS.sub(lambda m: m.group(0).replace(".", " "), text)
    text = _JOINERS.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()


def _fold_leet(text: str) -> str:
    def fold(match: re.Match[str]) -> str:
        word = match.group(0)
        return word.translate(_LEET) if _HAS_LEET.search(word) else word

    return _LEET_WORD.sub(fold, text)


def _join_spaced_letters(text: str) -> str:
    return _SPACED_LETTERS.sub(lambda m: m.group(0).replace(" ", ""), text)


def _unspell_words(text: str, lone_i: bool = False) -> str:
    """ "k i l l  m y s e l f" -> "kill myself"; other text as normalised.
    With ``lone_i``, a spelled-out run's first "i" stands alone: the writer of
    "i w a n t  t o  d i e" most likely left one space after "i"."""
    if not _WIDE_GAP.search(text or ""):
        return normalise(text)
    words = _WIDE_GAP.split(_plain(text).strip())
    if len(words) < 2 or not any(_SPELLED_WORD.fullmatch(w) for w in words):
        return normalise(text)

    def join(word: str) -> str:
        if not _SPELLED_WORD.fullmatch(word):
            return word
        if lone_i and word.startswith("i ") and len(word) > 3:
            return "i " + word[2:].replace(" ", "")
        return word.replace(" ", "")

    return normalise(" ".join(join(w) for w in words))


def _folded(text: str, lone_i: bool = False) -> str:
    return _join_spaced_letters(_fold_leet(_unspell_words(text, lone_i)))


def canonical(text: str) -> str:
    """One spelling of a message, for the classifier: the most folded variant
    that keeps doubled letters ("killlll" -> "kill", not "kil")."""
    return _STRETCHED.sub(r"\1\1", _folded(text))


def variants(text: str) -> list[str]:
    """The normalised text first, then its other spellings, without repeats."""
    folded = _folded(text)
    candidates = [
        normalise(text),
        folded,
        canonical(text),
        _STRETCHED.sub(r"\1", folded),  # "dieeee" -> "die"
        _folded(text, lone_i=True),
    ]
    return list(dict.fromkeys(c for c in candidates if c))


_QUESTION = re.compile(
    r"\?|^(can|could|does|do|did|is|are|will|would|should|what|how|why|when|which"
    r"|who|any|has|have|was|were)\b|\b(is it true|i heard|i read|wondering|wonder if"
    r"|curious|is (?:that|this) (?:real|true|a thing|right|normal))\b"
)
# Reading, hearing or writing about something is not telling us about oneself.
_REPORTED = re.compile(
    r"\bi(?:'ve| have)? (?:read|heard|saw|seen|was told)\b"
    r"|\bi(?:'m| am|m)? (?:writing|researching|studying|reading)\b"
    r"|\bfor (?:my|a) (?:\w+ )?(?:class|course|report|paper|project|essay)\b"
)
_FIRST_PERSON = re.compile(r"\b(i|i'm|im|i've|ive|i'd|id|i'll|my|myself|mine|me)\b")
_ASKING_ABOUT_ME = re.compile(
    r"\b(make|makes|made|cause|causes|give|gives|get|turn|turns) me\b|\bshould i\b"
    r"|\bdo i need\b|\bcan i\b|\bwill i\b|\bi(?:'m| am|m)? (?:a bit |kind of |kinda "
    r"|so |really |just )?(?:worried|nervous|scared|afraid|concerned|curious"
    r"|wondering)\b|\bi (?:want|wanted|need) to know\b|\bi was wondering\b"
    r"|\bmy (?:\w+ )?(?:mom|dad|mother|father|parents|doctor|derm|friend|friends"
    r"|teacher|professor|coach|nurse|pharmacist|aunt|uncle|sister|brother|cousin"
    r"|grandma|grandpa|grandmother|grandfather|counselor|counsellor|roommate)"
    r" (?:said|says|told|read|heard|is worried|are worried)\b"
    # what a leaflet says is not the writer's own ("why does my pharmacy
    # handout talk about suicide?")
    r"|\bmy (?:\w+ )?(?:handout|leaflet|pamphlet|label|guide|paperwork|packet"
    r"|insert|booklet|form|forms|brochure|printout|sheet) (?:says|said|talks?"
    r"|talked|mentions?|mentioned|warns?|warned|lists?|listed|has|had)\b"
)


def is_question(text: str) -> bool:
    return bool(_QUESTION.search(normalise(text)))


def reports_on_it(text: str) -> bool:
    """The writer reads, hears or writes about it ("I read...", "for my
    class..."): an informational span then needs no question mark."""
    return bool(_REPORTED.search(normalise(text)))


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def asked_in_a_question(text: str, spans: tuple[str, ...] | list[str]) -> bool:
    """Whether every one of ``spans`` stands in a sentence that is a question:
    "suicidal thoughts. should i stop taking it?" tells, then asks."""
    sentences = [s.strip() for s in _SENTENCE.findall(normalise(text))]
    for span in spans:
        holding = [s for s in sentences if normalise(span) in s]
        if not holding or not all(_QUESTION.search(s) for s in holding):
            return False
    return True


# Urges that are back or again are someone's own, with or without a pronoun:
# "selfharm urges are back since starting tane, is that a side effect?"
_URGES_RETURNED = re.compile(
    r"\burges? (?:are|is|have|has|came|come|coming|keep coming|creeping)"
    r" (?:\w+ )?back\b"
    r"|\burges? (?:again|returned|are returning)\b"
)


def tells_about_oneself(text: str) -> bool:
    """Whether the writer speaks of themself, beyond asking what a medicine may
    do to them ("does it make me..." and "I read that..." do not count)."""
    if _URGES_RETURNED.search(normalise(text)):
        return True
    text = _ASKING_ABOUT_ME.sub(" ", _REPORTED.sub(" ", normalise(text)))
    return bool(_FIRST_PERSON.search(text))


_SPANISH = frozenset(
    {
        "que", "quiero", "mi", "estoy", "ya", "yo", "tengo", "para",
        "por", "pero", "con", "muy", "esta", "esto", "eso", "vida", "morir",
        "nada", "todo", "todos", "siento", "hacer", "puedo", "soy", "hija",
        "hijo", "mama", "ayuda", "porque", "cuando", "donde", "como", "mas",
        "tambien", "hoy", "noche", "el", "la", "los", "las", "de", "del", "es",
    }
)  # fmt: skip
_ENGLISH = frozenset(
    {
        "i", "the", "to", "and", "is", "it", "my", "you", "of", "a", "in",
        "that", "have", "on", "for", "this", "with", "be", "am", "what", "how",
        "can", "do", "does", "want", "im", "so", "just", "about",
    }
)  # fmt: skip


def looks_spanish(text: str) -> bool:
    """A rough guess, enough to offer 988's Spanish line: more Spanish function
    words than English ones, and at least two."""
    words = re.findall(r"[a-z]+", normalise(text))
    spanish = sum(w in _SPANISH for w in words)
    english = sum(w in _ENGLISH for w in words)
    return spanish >= 2 and spanish > english


# Answers to the direct safety question. Anything unsure ("maybe", "idk",
# "sometimes", "no but...") counts as yes: the care team would rather call.
_YES = re.compile(
    r"^(yes|y|yeah|yea|ya|yah|yep|yup|ye|yess+|si|sip|claro|i am|i do|i have|true"
    r"|maybe|kind of|kinda|sort of|sorta|sometimes|a little|a bit|idk|i don't know"
    r"|i dont know|not sure|i'm not sure|im not sure|i guess|probably|honestly"
    r"|tal vez|a veces|no se|no lo se)\b"
)
_NO = re.compile(
    r"^(no|n|nope|nah|naw|no way|not at all|never|not really|i'm not|im not"
    r"|i am not|no i'm not|no im not|no i am not|no thanks|no thank you|i'm ok"
    r"|im ok|i'm okay|i'm fine|im fine|i'm safe|im safe|para nada|estoy bien)"
    r"[\s.!,]*(i'm|im|i am)?[\s.!,]*(not|fine|ok|okay|safe|good)?[\s.!,]*$"
)


def answer_to_question(text: str) -> str | None:
    """ "yes", "no", or None (not an answer) for a reply to the safety question."""
    text = normalise(text).strip(" .!?,")
    if not text:
        return None
    if _YES.match(text):
        return "yes"
    if _NO.match(text) and " but " not in f" {text} ":
        return "no"
    return None


# Words that make a harm deliberate, in English and Spanish (accents folded).
_ON_PURPOSE = re.compile(
    r"\b(on purpose|deliberately|intentionally|purposely|purposefully"
    r"|a proposito|adrede)\b"
)


# Ten or more pills already taken ("took like 30 ibuprofen", "swallowed 20 of
# my pills"): an overdose, whatever the words around it. Fewer ("took 2
# advil") and doses ("took 40 mg") are ordinary.
_COUNTED_PILLS = re.compile(
    r"\b(?:took|taken|swallowed|ate|downed|popped|tome|tomo)\s+"
    r"(?:like |about |around |maybe |over |almost |at least |como |unas |unos )?"
    r"(\d{2,3})\s+(?:of (?:my|the|his|her|their|those|these) |de mis |de las )?"
    r"(?:\w+ )?(?:pills?|tablets?|capsules?|caps|ibuprofen|tylenol|advil|motrin"
    r"|aleve|benadryl|acetaminophen|aspirin|xanax|meds|pastillas|pildoras"
    r"|accutane|isotretinoin|isotretinoina|absorica|claravis|amnesteem|zenatane"
    r"|myorisan|medicine|medication)\b"
)
# A count of doses over the course ("I've taken 60 capsules so far"), not an
# overdose.
_OVER_THE_COURSE = re.compile(
    r"^\W*(?:\w+ ){0,3}?(?:so far|in total|total|altogether|this month|over the"
    r" course|over \d+ (?:days|weeks|months))\b"
)


# "this hold music makes me want to die lol": a wish to die blamed on a thing
# and laughed off is mostly hyperbole, but not always. Asked, not alarmed.
_LAUGHED_OFF = re.compile(
    r"\b(?:lol+|lmao+|lmfao|rofl|jk|haha\w*|hehe\w*)\b|[\U0001F602\U0001F923\U0001F480]"
)
_BLAMED_WISH = re.compile(r"\b(?:makes?|making|made) me (?:want to|wanna|wana) die\b")
_WISH_TO_DIE = re.compile(r"(?:want to|wanna|wana) die")


def laughed_off_wish(text: str, spans: tuple[str, ...] | list[str]) -> bool:
    """Whether the only crisis words are a wish to die that a thing "makes me"
    feel, with laughter ("lol", "😂", "💀") in the message."""
    plain = normalise(text)
    return (
        bool(spans)
        and all(_WISH_TO_DIE.fullmatch(normalise(span)) for span in spans)
        and bool(_BLAMED_WISH.search(plain))
        and bool(_LAUGHED_OFF.search(plain))
    )


def harm_was_meant(text: str) -> bool:
    return bool(_ON_PURPOSE.search(normalise(text)))


def counted_pills(text: str) -> str | None:
    """The span telling of ten or more pills taken, if any."""
    plain = normalise(text)
    for match in _COUNTED_PILLS.finditer(plain):
        if int(match.group(1)) < 10 or _OVER_THE_COURSE.match(plain[match.end() :]):
            continue
        return match.group(0)
    return None
