"""The clinic's chat page in a real browser: Debian's Chromium, headless,
driven by Playwright (which downloads no browser here)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from bot import settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = settings.PROJECT_ROOT / "results" / "screenshots"
ANSWER_TIMEOUT_S = 60


def normalise(text: str) -> str:
    return " ".join(text.split())


class ChatPage:
    """The clinic's chat page in one browser tab, with what it has seen."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url
        self.dialogs: list[str] = []
        self.loaded: list[str] = []  # requests that got a response
        self.failed: list[tuple[str, str]] = []  # (url, why) of the others
        self.websockets: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on("requestfinished", lambda request: self.loaded.append(request.url))
        page.on(
            "requestfailed",
            lambda request: self.failed.append((request.url, request.failure or "")),
        )
        page.on("websocket", lambda socket: self.websockets.append(socket.url))

    def _on_dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def wait_until(self, check: Callable[[], object], what: str) -> object:
        """Poll ``check`` while the page runs, until it is truthy (or fail)."""
        for _ in range(int(ANSWER_TIMEOUT_S / 0.25)):
            result = check()
            if result:
                return result
            self.page.wait_for_timeout(250)
        self.screenshot("failed")
        pytest.fail(f"{what} within {ANSWER_TIMEOUT_S} s; the widget shows:\n{self}")

    def open_widget(self) -> None:
        self.page.locator(".rw-launcher").click()
        self.page.locator(".rw-new-message").wait_for(state="visible")

    def responses(self) -> list[str]:
        """The bot's messages in the widget, as shown, whitespace normalised
        (not the empty bubble of its typing indicator)."""
        texts = self.page.locator(".rw-messages-container .rw-response")
        return [normalise(t) for t in texts.all_inner_texts() if t.strip()]

    def client_messages(self) -> list[str]:
        texts = self.page.locator(".rw-messages-container .rw-client")
        return [normalise(t) for t in texts.all_inner_texts()]

    def ask(self, message: str) -> list[str]:
        """Type ``message`` as a patient does; the bot's new messages."""
        before = len(self.responses())
        box = self.page.locator(".rw-new-message")
        box.fill(message)
        box.press("Enter")
        self.wait_until(
            lambda: len(self.responses()) > before, f"no answer to {message!r}"
        )
        self.page.wait_for_timeout(1500)  # a reply may come in several messages
        return self.responses()[before:]

    def session(self) -> dict:
        """What the widget keeps in the tab's sessionStorage."""
        stored = self.page.evaluate("() => sessionStorage.getItem('chat_session')")
        assert stored, "the widget keeps no session in sessionStorage"
        return json.loads(stored)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"web-widget-{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def __str__(self) -> str:
        return "\n".join(
            [f"patient: {m}" for m in self.client_messages()]
            + [f"bot: {m}" for m in self.responses()]
        )


@contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    """Debian's Chromium with a new, empty profile (Playwright downloads none)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian's Chromium is missing ({CHROMIUM}): `make browser` installs it "
            "(`make test` does it first)"
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1100, "height": 860},
        )
        yield context
        context.close()
