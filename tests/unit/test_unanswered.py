"""What the staff list of unanswered questions makes of stored events."""

from __future__ import annotations

import datetime as dt

from bot.staff.unanswered import report, unanswered

NOON = dt.datetime(2026, 12, 6, 12, tzinfo=dt.timezone.utc).timestamp()


def user(text: str, intent: str, *ranking: tuple[str, float], at: float = NOON):
    return {
        "event": "user",
        "text": text,
        "timestamp": at,
        "parse_data": {
            "intent": {"name": intent},
            "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
        },
    }


def test_fallbacks_and_questions_for_the_dermatologist_are_listed_by_topic():
    events = [
        user("what is accutane", "ask_what_is_isotretinoin"),
        {"event": "bot", "text": "Isotretinoin is...", "timestamp": NOON},
        user("can i get my brows threaded", "nlu_fallback",
             ("nlu_fallback", 0.5), ("ask_waxing", 0.3), ("ask_laser", 0.2)),
        user("should i go to 60mg", "ask_medical_decision",
             ("ask_medical_decision", 0.9), at=NOON + 86400),
        user("blorf", "nlu_fallback", ("nlu_fallback", 0.5), ("crisis", 0.1)),
    ]  # fmt: skip
    rows = unanswered([("abc123", events)])
    assert [(r.kind, r.nearest, r.text) for r in rows] == [
        ("fell back", "-", "blorf"),
        ("fell back", "ask_waxing", "can i get my brows threaded"),
        ("to dermatologist", "ask_medical_decision", "should i go to 60mg"),
    ]
    assert [r.day for r in rows] == [dt.date(2026, 12, 6)] * 2 + [dt.date(2026, 12, 7)]
    summary = report(rows, with_text=False)
    assert "3 unanswered" in summary and "threaded" not in summary
    assert "   1  fell back         ask_waxing" in summary
    assert "can i get my brows threaded" in report(rows, with_text=True)


def test_nothing_unanswered():
    assert report(unanswered([]), with_text=True).startswith("no unanswered")
