"""The printable review packet for the clinic's dermatologist.

One page section per knowledge-base entry, as patients see it: the web text
and the SMS text (the clinic's phone filled in), the sources with the section
each claim comes from, engineering's review date and notes, whether a
clinician has signed off today's wording, and a line to sign. Written as one
self-contained HTML file (print it, or save it as PDF from the browser);
``make review-packet`` writes ``var/review-packet.html``. The clinician's
decision is then recorded with ``python -m bot.staff sign-off ENTRY_ID --by
NAME``.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from bot.content.clinic import load_clinic
from bot.content.entries import Entry, fill_placeholders, read_knowledge, read_sources
from bot.content.signoff import SignOff

STYLE = """
body { font: 11pt/1.45 Georgia, serif; max-width: 46em; margin: 2em auto; color: #111; }
h1 { font-size: 18pt; } h2 { font-size: 13pt; margin: 0 0 .3em; }
section { border-top: 1px solid #999; padding: 1em 0; page-break-inside: avoid; }
.meta { color: #444; font-size: 9.5pt; }
.text { white-space: pre-wrap; border-left: 3px solid #bbb; padding-left: .8em; }
.note { background: #f4f4f4; padding: .4em .8em; font-size: 10pt; }
.sign { margin-top: 1.2em; }
.unsigned { color: #a00; } .signed { color: #060; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _signature(entry: Entry, signed: SignOff | None) -> str:
    if signed and signed.current:
        return (
            f'<p class="signed">Signed off by {_e(signed.clinician)} on '
            f"{signed.signed_on.isoformat()}.</p>"
        )
    if signed:
        return (
            f'<p class="unsigned">Changed since {_e(signed.clinician)} signed it on '
            f"{signed.signed_on.isoformat()}: needs a new sign-off.</p>"
        )
    return '<p class="unsigned">No clinician sign-off yet.</p>'


def render_packet(
    entries: list[Entry],
    source_names: dict[str, str],
    signoffs: dict[str, SignOff],
    today: dt.date | None = None,
) -> str:
    clinic = load_clinic()
    signed = sum(1 for s in signoffs.values() if s.current)
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        f"<title>{_e(clinic.name)}: chatbot answers for clinician review</title>",
        f"<style>{STYLE}</style>",
        f"<h1>{_e(clinic.name)}: the chatbot's answers, for clinician review</h1>",
        f"<p class=meta>{len(entries)} entries, {signed} signed off. Printed "
        f"{(today or dt.date.today()).isoformat()}. Each entry shows what patients "
        "read on the website and by text message. Mark changes on the page; sign "
        "each entry you approve, and staff record it with <code>python -m "
        "bot.staff sign-off ENTRY_ID --by NAME</code>.</p>",
    ]
    for entry in sorted(entries, key=lambda e: (e.source_file, e.topic, e.id)):
        facet = f", facet {entry.facet}" if entry.facet else ""
        sources = "".join(
            f"<li>{_e(source_names.get(s['source'], s['source']))}: "
            f"{_e(s.get('section', ''))}</li>"
            for s in entry.sources
        )
        note = (
            f'<p class="note">Review note: {_e(entry.review_note)}</p>'
            if entry.review_note
            else ""
        )
        parts.append(
            f'<section id="{_e(entry.id)}"><h2>{_e(entry.title)}</h2>'
            f"<p class=meta>entry <b>{_e(entry.id)}</b> (topic {_e(entry.topic)}"
            f"{_e(facet)}; {_e(entry.source_file)}); reviewed by "
            f"{_e(entry.reviewed_by)} on {entry.reviewed_on.isoformat()}</p>"
            f"<p><b>Website</b></p><div class=text>"
            f"{_e(fill_placeholders(entry.answer, clinic))}</div>"
            f"<p><b>Text message</b></p><div class=text>"
            f"{_e(fill_placeholders(entry.sms, clinic))}</div>"
            f"<p><b>Sources</b></p><ul>{sources}</ul>{note}"
            f"{_signature(entry, signoffs.get(entry.id))}"
            '<p class="sign">Approved: ________________________ '
            "Date: ____________ Changes: ______________________</p></section>"
        )
    return "\n".join(parts) + "\n</html>\n"


def write_packet(out: Path, directory: Path | None = None) -> tuple[int, int]:
    """Writes the packet for the reviewed files; sign-offs from the database
    where it can be read. Returns (entries, signed off)."""
    entries = read_knowledge(directory)
    names = read_sources(directory)
    try:
        from bot.content.signoff import SignOffs

        signoffs = SignOffs().of(entries)
    except Exception:  # a packet without sign-offs beats no packet
        signoffs = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_packet(entries, names, signoffs), encoding="utf-8")
    return len(entries), sum(1 for s in signoffs.values() if s.current)
