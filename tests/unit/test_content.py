"""The reviewed content: plain words, the channel's limits, and the key facts.

Each fact below is checked against the entry that states it, so an edit that
changes a number the label gives (a month, SPF 30, six months) fails here.
"""

from __future__ import annotations

import re

import pytest
import textstat

from bot.content.answers import render
from bot.content.clinic import load_clinic
from bot.content.entries import SMS_MAX_CHARS, Entry, read_knowledge
from bot.content.topics import topic_map

ENTRIES = read_knowledge()
BY_ID = {entry.id: entry for entry in ENTRIES}
MAX_GRADE = 8.0


def rendered(entry: Entry, channel: str = "rest") -> str:
    return render(entry, channel, load_clinic())


def language(entry: Entry) -> str:
    return topic_map().topic(entry.topic).language


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if language(e) == "en"], ids=lambda e: e.id
)
def test_web_and_sms_texts_read_at_or_below_8th_grade(entry):
    for channel in ("rest", "sms"):
        text = rendered(entry, channel)
        grade = textstat.flesch_kincaid_grade(text)
        assert grade <= MAX_GRADE, f"{entry.id} ({channel}) reads at grade {grade}"


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if language(e) == "es"], ids=lambda e: e.id
)
def test_spanish_texts_are_easy_to_read(entry):
    # Fernández Huerta's ease for Spanish: 70 and above is "fairly easy"
    # (about 7th grade), as the English entries' 8th-grade limit.
    for channel in ("rest", "sms"):
        text = rendered(entry, channel)
        textstat.set_lang("es")
        try:
            ease = textstat.fernandez_huerta(text)
        finally:
            textstat.set_lang("en_US")
        assert ease >= 70, f"{entry.id} ({channel}) reads at ease {ease}"


def test_every_spanish_safety_reply_gives_988s_spanish_line():
    for entry_id in ("crisis_es", "safety_question_es"):
        for text in both(entry_id):
            assert "988" in text and "marca" in text and "2" in text, entry_id
            assert "ayuda" in text and "911" in text, entry_id


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_sms_text_fits_and_is_plain(entry):
    sms = rendered(entry, "sms")
    assert len(sms) <= SMS_MAX_CHARS
    assert "\n" not in sms and "- " not in sms[:2]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_clinic_details_come_from_the_clinic_file_not_the_text(entry):
    for text in (entry.answer, entry.sms):
        assert not re.search(r"\d{3}[-.) ]+\d{3}[-. ]\d{4}", text), entry.id
        assert "http" not in text, entry.id


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_every_entry_names_a_source_and_a_review(entry):
    assert entry.sources and all(s["source"] for s in entry.sources)
    assert entry.reviewed_by and entry.reviewed_on.year >= 2026


def both(entry_id: str) -> list[str]:
    entry = BY_ID[entry_id]
    return [rendered(entry, "rest").lower(), rendered(entry, "sms").lower()]


MONTH = r"(1|one) month"


@pytest.mark.parametrize(
    ("entry_id", "patterns"),
    [
        ("blood_donation", [MONTH, r"(give|donat)"]),
        ("blood_donation_after_treatment", [MONTH]),
        ("birth_control", [r"(two|2) (forms|kinds|types|methods)", MONTH]),
        ("birth_control_before_treatment", [MONTH]),
        ("birth_control_after_treatment", [MONTH]),
        ("pregnancy_tests", [r"(two|2) ", r"(every|each) month"]),
        ("pregnancy_risk", [r"birth defect"]),
        ("ipledge", [r"ipledge", r"(every|all|each) (patient|person|one)|men"]),
        ("sun_protection", [r"spf 30", r"broad.spectrum"]),
        ("blood_work", [r"liver", r"(lipid|fat|cholesterol)", r"blood count"]),
        ("monthly_visits", [r"(every|each|once a) month"]),
        ("waxing", [r"(6|six) months"]),
        ("laser", [r"(6|six) months"]),
        ("breastfeeding", [MONTH]),
        ("dryness", [r"lip", r"moistur"]),
        ("course_length", [r"(4|four)", r"(5|five) months"]),
        ("mood", [r"988", r"911", r"stop taking it"]),
        ("crisis", [r"911", r"988", r"care team has been told"]),
        ("safety_question", [r"ending your life or hurting yourself\?", r"988"]),
        ("mood_disclosure", [r"stop taking it", r"call"]),
        ("safety_answer_no", [r"988"]),
        ("welcome", [r"911", r"not medical advice|not a doctor|medical advice"]),
        ("medical_decision", [r"dermatologist", r"\(402\) 555-01\d\d"]),
        ("cause_bacteria", [r"(bacteria|germs)", r"acnes"]),
        ("cause_oil", [r"oil"]),
        ("cause_pores", [r"pore"]),
        ("cause_inflammation", [r"(red|swell)"]),
    ],
)
def test_key_facts_agree_with_the_clinic_page_and_the_label(entry_id, patterns):
    for text in both(entry_id):
        for pattern in patterns:
            assert re.search(pattern, text), f"{entry_id}: /{pattern}/ not in {text!r}"


def test_no_entry_suggests_a_dose():
    for entry in ENTRIES:
        for text in both(entry.id):
            assert not re.search(r"\b\d+\s?(mg|milligram)", text), entry.id
