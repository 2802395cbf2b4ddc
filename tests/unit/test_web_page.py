"""The chat page's server (bot/channels/web_page.py) over real HTTP, and the
page itself."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from bot import settings
from bot.channels import web_page
from bot.run import serve
from bot.settings import SettingsError, load

WEB_DIR = settings.PROJECT_ROOT / "web"


class Page:
    """A running page server on a free port, spoken to with http.client (which
    sends a path as given: no client-side clean-up of ``..``)."""

    def __init__(self, server: web_page.PageServer) -> None:
        self.server = server
        self.port = server.server_address[1]

    def request(
        self, path: str, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response, response.read()
        finally:
            connection.close()


@pytest.fixture
def page_env() -> dict[str, str]:
    return {"WEB_HOST": "127.0.0.1", "WEB_PORT": "0", "RASA_PORT": "5999",
            "BOT_RETENTION_DAYS": "45"}  # fmt: skip


def served_page() -> bytes:
    """index.html as served: with the retention period of ``page_env``."""
    return (WEB_DIR / "index.html").read_bytes().replace(b"{{RETENTION_DAYS}}", b"45")


@pytest.fixture
def page(page_env: dict[str, str]) -> Iterator[Page]:
    server = web_page.make_server(load(page_env))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield Page(server)
    server.shutdown()
    server.server_close()


class References(HTMLParser):
    """The scripts and style sheets a page loads, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.urls.append(values["src"] or "")
            else:
                self._in_script = True
        if tag == "link" and values.get("rel") == "stylesheet":
            self.urls.append(values["href"] or "")
        if any(name.startswith("on") for name in values):
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def page_references() -> References:
    references = References()
    references.feed((WEB_DIR / "index.html").read_text())
    return references


# --- where the page finds Rasa, and who Rasa lets in --------------------------


def test_the_socket_url_defaults_to_the_local_rasa_server():
    assert web_page.rasa_url(load({})) == "http://127.0.0.1:5005"
    assert web_page.rasa_url(load({"RASA_PORT": "6000"})) == "http://127.0.0.1:6000"


def test_a_rasa_server_bound_to_every_address_is_reached_on_loopback():
    assert web_page.rasa_url(load({"RASA_HOST": "0.0.0.0"})) == "http://127.0.0.1:5005"


def test_the_public_rasa_url_wins_for_production():
    env = {"RASA_PUBLIC_URL": "https://Chat.Example.org/", "RASA_PORT": "6000"}
    assert web_page.rasa_url(load(env)) == "https://chat.example.org"


@pytest.mark.parametrize(
    "url",
    [
        "https://chat.example.org/bot",  # socket.io would take /bot as a namespace
        "ftp://chat.example.org",
        "chat.example.org",
        "https://user:secret@chat.example.org",
    ],
)
def test_a_public_url_that_is_not_an_origin_is_refused(url):
    with pytest.raises(web_page.WebPageError, match="RASA_PUBLIC_URL"):
        web_page.rasa_url(load({"RASA_PUBLIC_URL": url}))


def test_rasa_allows_only_the_pages_origin():
    origins = web_page.page_origins(load({"WEB_PORT": "8123"}))
    assert origins == ["http://127.0.0.1:8123", "http://localhost:8123"]
    assert web_page.page_origins(load({})) == [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
    ]
    public = {"WEB_PUBLIC_URL": "https://www.example.org", "WEB_PORT": "8123"}
    assert web_page.page_origins(load(public)) == ["https://www.example.org"]


def test_the_socketio_channel_accepts_only_the_pages_origins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from bot.channels.socketio import PatientSocketIOInput

    monkeypatch.setenv("WEB_PORT", "8123")
    monkeypatch.delenv("WEB_HOST", raising=False)
    monkeypatch.delenv("WEB_PUBLIC_URL", raising=False)
    channel = PatientSocketIOInput.from_credentials(
        {"session_persistence": True, "metadata_key": "customData"}
    )

    async def on_new_message(message: object) -> None:
        raise AssertionError("no message is sent here")

    channel.blueprint(on_new_message)
    assert channel.name() == "socketio" and channel.session_persistence
    assert channel.sio.eio.cors_allowed_origins == [
        "http://127.0.0.1:8123",
        "http://localhost:8123",
    ]
    # Rasa's own --cors is not used: one place decides the allowed origins.
    command = serve.rasa_command("run", tmp_path / "model.tar.gz", serve.child_env())
    assert "--cors" not in command and "*" not in command


def test_the_page_server_listens_on_web_host_and_web_port():
    assert web_page.web_address(load({})) == ("127.0.0.1", 8080)
    env = {"WEB_HOST": "0.0.0.0", "WEB_PORT": "9000"}
    assert web_page.web_address(load(env)) == ("0.0.0.0", 9000)
    assert web_page.web_url(load(env)) == "http://127.0.0.1:9000"
    with pytest.raises(SettingsError, match="WEB_PORT"):
        load({"WEB_PORT": "eighty"})


# --- the Content-Security-Policy -----------------------------------------------


def csp_directives(policy: str) -> dict[str, list[str]]:
    parts = (d.split() for d in policy.split(";") if d.strip())
    return {name: values for name, *values in parts}


def test_the_policy_allows_scripts_from_the_page_only():
    policy = csp_directives(web_page.content_security_policy("http://127.0.0.1:5005"))
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in str(policy)


def test_the_policy_allows_connections_to_the_rasa_server_only():
    local = csp_directives(web_page.content_security_policy("http://127.0.0.1:5005"))
    assert local["connect-src"] == [
        "'self'",
        "http://127.0.0.1:5005",
        "ws://127.0.0.1:5005",
    ]
    public = csp_directives(web_page.content_security_policy("https://chat.example"))
    assert public["connect-src"] == [
        "'self'",
        "https://chat.example",
        "wss://chat.example",
    ]


def test_config_js_cannot_close_a_script_element():
    script = web_page.config_script("http://x</script><script>alert(1)//").decode()
    assert "</script>" not in script
    payload = script.split("Object.freeze(", 1)[1].rsplit(");", 1)[0]
    assert json.loads(payload)["socketUrl"] == "http://x</script><script>alert(1)//"


# --- the server, over HTTP -----------------------------------------------------


def test_the_page_is_served_with_its_security_headers(page: Page):
    response, body = page.request("/")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    policy = csp_directives(response.getheader("Content-Security-Policy"))
    assert policy["script-src"] == ["'self'"]
    assert "http://127.0.0.1:5999" in policy["connect-src"]
    assert "ws://127.0.0.1:5999" in policy["connect-src"]
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert body == served_page()


def test_the_page_says_what_the_bot_is_and_who_to_call(page: Page):
    _, body = page.request("/")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body.decode()))
    assert "<title>Isotretinoin questions · MOD Dermatology</title>" in body.decode()
    assert "MOD Dermatology" in text
    assert "not medical advice" in text
    assert "call 911" in text
    assert "988" in text


def test_the_page_says_how_long_the_conversation_is_kept_and_how_to_delete_it(
    page: Page,
):
    _, body = page.request("/")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body.decode()))
    assert "keeps the conversation for 45 days" in text
    assert 'type "delete my conversation"' in text
    assert "RETENTION" not in text


def test_the_config_script_tells_the_page_where_rasa_is(page: Page):
    response, body = page.request("/config.js")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert b'{"socketUrl": "http://127.0.0.1:5999"}' in body


def test_the_widget_is_served_from_the_installed_package(page: Page):
    response, body = page.request("/vendor/rasa-webchat.js")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert body == web_page.WIDGET_JS.read_bytes()


def test_the_widget_is_gzipped_for_browsers_that_accept_it(page: Page):
    response, body = page.request(
        "/vendor/rasa-webchat.js", headers={"Accept-Encoding": "gzip, deflate, br"}
    )
    assert response.getheader("Content-Encoding") == "gzip"
    assert response.getheader("Vary") == "Accept-Encoding"
    assert gzip.decompress(body) == web_page.WIDGET_JS.read_bytes()
    assert len(body) < len(web_page.WIDGET_JS.read_bytes()) / 2


def test_every_file_the_page_loads_is_served(page: Page):
    urls = page_references().urls
    assert set(urls) == {
        "/page.css",
        "/config.js",
        "/vendor/rasa-webchat.js",
        "/chat.js",
    }
    for url in urls:
        response, _ = page.request(url)
        assert response.status == 200, url


def test_the_page_has_no_inline_or_remote_script():
    references = page_references()
    assert references.inline_scripts == 0
    assert all(
        url.startswith("/") and not url.startswith("//") for url in references.urls
    )


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",
        "/../../../../etc/passwd",
        "/vendor/../../pyproject.toml",
        "/vendor/..%2f..%2fpyproject.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..\\..\\pyproject.toml",
        "//etc/passwd",
        "/index.html/..",
        "/web/index.html",
        "/node_modules/rasa-webchat/package.json",
        "/vendor/",
        "/vendor",
        "/package.json",
        "/.git/config",
    ],
)
def test_no_other_path_is_served(page: Page, path: str):
    response, body = page.request(path)
    assert response.status == 404
    assert b"[project]" not in body and b"root:" not in body
    assert response.getheader("Content-Security-Policy")


def test_a_query_string_does_not_change_the_file(page: Page):
    response, body = page.request("/?file=../pyproject.toml")
    assert response.status == 200
    assert body == served_page()


def test_only_get_and_head_are_answered(page: Page):
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        response, _ = page.request("/", method=method)
        assert response.status == 405, method
        assert response.getheader("Allow") == "GET, HEAD"
    response, body = page.request("/chat.js", method="HEAD")
    assert response.status == 200
    assert body == b""
    assert int(response.getheader("Content-Length")) > 0


def test_a_missing_widget_says_how_to_install_it(tmp_path: Path, page_env):
    for name in ("index.html", "page.css", "chat.js"):
        (tmp_path / name).write_bytes((WEB_DIR / name).read_bytes())
    with pytest.raises(web_page.WebPageError, match="npm ci --prefix web"):
        web_page.make_server(load(page_env), web_dir=tmp_path)


# --- the widget: pinned, installed from the lock file, configured ---------------


def test_the_widget_is_pinned_to_rasa_webchat_1_0_1():
    package = json.loads((WEB_DIR / "package.json").read_text())
    assert package["dependencies"] == {"rasa-webchat": "1.0.1"}
    lock = json.loads((WEB_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/rasa-webchat"]["version"] == "1.0.1"
    installed = json.loads((web_page.WIDGET_JS.parents[1] / "package.json").read_text())
    assert installed["version"] == "1.0.1"


def test_the_lock_file_names_no_other_registry():
    lock = json.loads((WEB_DIR / "package-lock.json").read_text())
    for name, package in lock["packages"].items():
        resolved = package.get("resolved")
        assert resolved is None or resolved.startswith("https://registry.npmjs.org/"), (
            name
        )
        assert name == "" or package.get("integrity", "").startswith("sha"), name


def test_the_widget_opens_with_an_intent_the_bot_knows():
    chat_js = (WEB_DIR / "chat.js").read_text()
    payload = re.search(r'initPayload:\s*"/(\w+)"', chat_js)
    assert payload, "chat.js sets no initPayload"
    domain = yaml.safe_load((settings.PROJECT_ROOT / "domain.yml").read_text())
    assert payload.group(1) in domain["intents"]


def test_the_widget_keeps_the_conversation_for_the_tab_only():
    chat_js = (WEB_DIR / "chat.js").read_text()
    assert re.search(r'params:\s*\{\s*storage:\s*"session"\s*\}', chat_js)
    assert 'socketPath: "/socket.io/"' in chat_js
