"""The clinician's review packet: every entry as patients read it, with its
sources and sign-off state, and the staff sign-off command behind it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html

from bot.content.clinic import load_clinic
from bot.content.entries import fill_placeholders, read_knowledge, read_sources
from bot.content.review_packet import render_packet, write_packet
from bot.content.signoff import SignOff


def test_every_entry_is_in_the_packet_with_its_texts_sources_and_sign_line():
    entries = read_knowledge()
    names = read_sources()
    packet = render_packet(entries, names, {})
    clinic = load_clinic()
    assert packet.count('<p class="sign">Approved:') == len(entries)
    for entry in entries:
        assert f'id="{entry.id}"' in packet
        assert html.escape(fill_placeholders(entry.sms, clinic)) in packet
        for source in entry.sources:
            assert html.escape(names[source["source"]]) in packet
    assert "{clinic_phone}" not in packet
    assert packet.count("No clinician sign-off yet.") == len(entries)


def test_the_packet_says_which_entries_are_signed_and_which_changed():
    entries = read_knowledge()[:3]
    signoffs = {
        entries[0].id: SignOff(entries[0].id, "Dr. Lee", dt.date(2026, 12, 10), True),
        entries[1].id: SignOff(entries[1].id, "Dr. Lee", dt.date(2026, 12, 1), False),
    }
    packet = render_packet(entries, read_sources(), signoffs)
    assert "Signed off by Dr. Lee on 2026-12-10." in packet
    assert "Changed since Dr. Lee signed it on 2026-12-01" in packet
    assert packet.count("No clinician sign-off yet.") == 1


def test_make_review_packet_writes_one_html_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    out = tmp_path / "packet.html"
    entries, signed = write_packet(out)
    assert (entries, signed) == (len(read_knowledge()), 0)
    assert out.read_text().startswith("<!doctype html>")


def test_an_entry_whose_wording_changed_loses_its_sign_off(tmp_path):
    from sqlalchemy import create_engine

    from bot.content.signoff import SignOffs

    store = SignOffs(create_engine(f"sqlite:///{tmp_path / 'kb.db'}", future=True))
    entry = read_knowledge()[0]
    store.record(entry, "Dr. Lee")
    assert store.current(entry).clinician == "Dr. Lee"
    assert store.current(dataclasses.replace(entry, answer="Other words.")) is None
