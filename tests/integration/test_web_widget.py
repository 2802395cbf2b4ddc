"""The chat page in a real browser: Debian's Chromium, headless, driven by
Playwright, talking to the real bot that `make run` starts (socket.io channel).

The tests run in file order and share one browser tab and one conversation,
as a patient would: open the page, ask, reload, ask a follow-up, type HTML.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
import websockets
from chat_page import ChatPage, chromium, normalise
from playwright.sync_api import BrowserContext

from bot.content.store import load_knowledge
from bot.db import engine_for

pytestmark = pytest.mark.integration

BLOOD_QUESTION = "can I donate blood while on accutane?"
FOLLOW_UP = "and after I stop?"
HTML_MESSAGE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture(scope="module")
def chat(bot, browser: BrowserContext) -> ChatPage:
    page = ChatPage(browser.new_page(), bot.web_url)
    page.page.goto(bot.web_url)
    return page


def tracker_user_messages(bot, sender_id: str) -> list[tuple[str, str, object]]:
    """(text, channel, the widget's customData) of each patient message in
    Rasa's tracker store."""
    with sqlite3.connect(bot.env["BOT_TRACKER_DB"]) as db:
        rows = db.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'"
            " ORDER BY id",
            (sender_id,),
        ).fetchall()
    events = [json.loads(data) for (data,) in rows]
    return [
        (
            e.get("text"),
            e.get("input_channel"),
            (e.get("metadata") or {}).get("language"),
        )
        for e in events
    ]


def test_rasa_speaks_the_widgets_protocol_to_the_pages_origin_only(bot):
    """The widget's socket.io-client 3 speaks Engine.IO 4; cross-origin polling
    is allowed for the chat page's origin, not for any other."""
    url = f"{bot.rasa_url}/socket.io/?EIO=4&transport=polling"
    allowed = requests.get(url, headers={"Origin": bot.web_url}, timeout=10)
    assert allowed.status_code == 200
    assert allowed.text.startswith("0{")  # an Engine.IO 4 open packet
    assert '"sid"' in allowed.text
    assert allowed.headers.get("Access-Control-Allow-Origin") == bot.web_url
    elsewhere = requests.get(
        url, headers={"Origin": "http://elsewhere.example"}, timeout=10
    )
    assert elsewhere.status_code == 400
    assert "Access-Control-Allow-Origin" not in elsewhere.headers


def test_a_websocket_from_another_site_is_refused(bot):
    """Browsers apply no CORS to WebSockets: the channel checks the origin."""
    url = bot.rasa_url.replace("http://", "ws://") + "/socket.io/?EIO=4"
    url += "&transport=websocket"

    async def first_packet(origin: str) -> str:
        async with websockets.connect(url, origin=origin, open_timeout=10) as ws:
            return await asyncio.wait_for(ws.recv(), timeout=10)

    assert asyncio.run(first_packet(bot.web_url)).startswith("0{")
    with pytest.raises(websockets.exceptions.InvalidStatusCode) as refused:
        asyncio.run(first_packet("http://elsewhere.example"))
    assert refused.value.status_code == 400


def test_the_page_says_what_the_bot_is_before_any_question(bot, chat: ChatPage):
    assert chat.page.title() == "Isotretinoin questions · MOD Dermatology"
    notice = normalise(chat.page.locator("#about-chat").inner_text())
    assert "not medical advice" in notice
    assert "call 911" in notice
    chat.open_widget()
    assert "MOD Dermatology" in chat.page.locator(".rw-header").inner_text()
    # The widget opens the conversation with /greet: the bot's welcome.
    chat.wait_until(chat.responses, "no welcome")
    assert chat.responses()[0] == normalise(bot.web_text("welcome"))
    assert chat.client_messages() == []  # the opening payload is not shown


def test_the_widget_answers_from_the_knowledge_base(bot, chat: ChatPage):
    bot.sent.append(BLOOD_QUESTION)
    answer = chat.ask(BLOOD_QUESTION)
    assert normalise(bot.web_text("blood_donation")) in answer
    assert chat.client_messages()[-1] == BLOOD_QUESTION


def test_a_reload_keeps_the_conversation_and_its_context(bot, chat: ChatPage):
    session_id = chat.session()["session_id"]
    shown = chat.responses()
    chat.page.reload()
    chat.wait_until(lambda: chat.responses() == shown, "the transcript is not back")
    assert chat.client_messages() == [BLOOD_QUESTION]
    assert chat.session()["session_id"] == session_id
    # The conversation lives in this tab only, not in localStorage.
    assert chat.page.evaluate("() => localStorage.getItem('chat_session')") is None

    bot.sent.append(FOLLOW_UP)
    if not chat.page.locator(".rw-new-message").is_visible():
        chat.open_widget()
    answer = chat.ask(FOLLOW_UP)
    # Only the same Rasa conversation knows that "after I stop" is about blood.
    assert answer == [normalise(bot.web_text("blood_donation_after_treatment"))]
    # ... and the widget's customData (metadata_key) reaches the tracker.
    language = "en"
    assert tracker_user_messages(bot, session_id) == [
        ("/greet", "socketio", language),
        (BLOOD_QUESTION, "socketio", language),
        (FOLLOW_UP, "socketio", language),
    ]
    chat.screenshot("conversation")


def test_html_typed_by_a_patient_is_shown_as_text(bot, chat: ChatPage):
    bot.sent.append(HTML_MESSAGE)
    chat.ask(HTML_MESSAGE)
    assert chat.client_messages()[-1] == HTML_MESSAGE
    assert chat.page.locator('img[src="x"]').count() == 0
    assert chat.page.locator(".rw-messages-container img").count() == 0
    assert chat.dialogs == []


def test_html_in_an_answer_is_shown_as_text(bot, chat: ChatPage, knowledge_files):
    """Even if a reviewed answer held HTML or a script link, the widget shows
    text and runs nothing (react-markdown escapes HTML; chat.js and the CSP
    stop javascript: links)."""
    knowledge_files.edit(
        "sharing",
        answer=(
            "Shown as text: <img src=x onerror=alert(2)> and <b>bold</b>. "
            "[Script link](javascript:alert(3))"
        ),
    )
    load_knowledge(engine_for(bot.database_url), knowledge_files.directory)
    try:
        answer = chat.ask("/ask_sharing_medicine")
    finally:
        load_knowledge(engine_for(bot.database_url))
    assert answer[-1] == (
        "Shown as text: <img src=x onerror=alert(2)> and <b>bold</b>. Script link"
    )
    last = chat.page.locator(".rw-messages-container .rw-response").last
    assert last.locator("img, b, script").count() == 0
    link = last.locator("a")
    assert link.count() == 1
    assert link.get_attribute("href") is None  # javascript: taken off by chat.js
    link.click()
    chat.page.wait_for_timeout(500)
    assert chat.dialogs == []
    chat.screenshot("html-as-text")


def test_the_page_loads_nothing_from_other_hosts(chat: ChatPage):
    """The widget's bundle asks for a Google font; the page's CSP blocks it."""
    hosts = {urlsplit(url).hostname for url in chat.loaded if "://" in url}
    assert hosts == {"127.0.0.1"}, chat.loaded
    blocked = [(url, why) for url, why in chat.failed if "127.0.0.1" not in url]
    assert blocked, "the widget's font request was not seen"
    assert all("csp" in why.lower() for _, why in blocked), blocked
    # socket.io upgraded from polling to a WebSocket, to Rasa only.
    assert chat.websockets, "socket.io never opened a WebSocket"
    assert all(urlsplit(url).hostname == "127.0.0.1" for url in chat.websockets)
