"""The clinic's chat page: a small static server for ``web/`` and its widget.

``python -m bot.channels.web_page`` serves, on ``WEB_HOST``:``WEB_PORT``
(127.0.0.1:8080), exactly these paths and nothing else:

- ``/``: ``web/index.html``, the page with the rasa-webchat widget;
- ``/page.css`` and ``/chat.js``: the page's style and the script that starts
  the widget;
- ``/vendor/rasa-webchat.js``: the widget's built file from
  ``web/node_modules`` (installed by ``npm ci --prefix web``; never a CDN);
- ``/config.js``: where the page finds the Rasa server's socket.io endpoint,
  ``RASA_PUBLIC_URL`` or else ``http://RASA_HOST:RASA_PORT``.

No path from a request reaches the file system, so there is no directory
listing and no way out of ``web/``. Every response carries a
Content-Security-Policy allowing scripts from the page's own origin only and
connections to the Rasa server only.

The page sees no patient text (the widget talks to Rasa directly), and the
server logs no request lines.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import logging
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from bot import settings
from bot.settings import Settings

logger = logging.getLogger(__name__)

WEB_DIR = settings.PROJECT_ROOT / "web"
WIDGET_JS = WEB_DIR / "node_modules" / "rasa-webchat" / "lib" / "index.js"
# Worth compressing: the widget's bundle is about 700 kB, 200 kB gzipped.
GZIP_MIN_BYTES = 1024

TEXT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}


class WebPageError(RuntimeError):
    """The page cannot be served (a missing file or a bad setting)."""


def _url_host(host: str) -> str:
    """``host`` as it is written in a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in host else host


def _browser_host(host: str) -> str:
    """A host a browser can reach for a server bound to ``host``."""
    try:
        if ipaddress.ip_address(host).is_unspecified:  # 0.0.0.0 or ::
            return "127.0.0.1"
    except ValueError:
        pass
    return host


def _origin(url: str, setting: str) -> str:
    """``url``'s origin (scheme://host[:port]), which is all it may hold."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebPageError(f"{setting} must be an http(s) URL, not {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise WebPageError(
            f"{setting} must be an origin such as https://chat.example.org "
            f"(socket.io takes a path as a namespace), not {url!r}"
        )
    if parts.username or parts.password:
        raise WebPageError(f"{setting} must not carry a user name or password")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def rasa_url(config: Settings) -> str:
    """The Rasa server as the patient's browser reaches it.

    ``RASA_PUBLIC_URL`` (e.g. https://chat.example.org behind a proxy) wins;
    otherwise ``http://RASA_HOST:RASA_PORT``.
    """
    public = config.rasa_public_url.strip()
    if public:
        return _origin(public, "RASA_PUBLIC_URL")
    host = _browser_host(config.rasa_host)
    return f"http://{_url_host(host)}:{config.rasa_port}"


def web_address(config: Settings) -> tuple[str, int]:
    """Where the page server listens: ``WEB_HOST`` and ``WEB_PORT``."""
    return config.web_host, config.web_port


def web_url(config: Settings) -> str:
    """The page's address on this machine, for the "Bot ready" line."""
    host, port = web_address(config)
    return f"http://{_url_host(_browser_host(host))}:{port}"


def page_origins(config: Settings) -> list[str]:
    """The origins the page is opened from: the Rasa server allows these (CORS).

    ``WEB_PUBLIC_URL`` when the page is published behind a proxy; otherwise
    the local address, with ``localhost`` and ``127.0.0.1`` both allowed for a
    page on the loopback address.
    """
    public = config.web_public_url.strip()
    if public:
        return [_origin(public, "WEB_PUBLIC_URL")]
    host, port = web_address(config)
    host = _browser_host(host)
    origins = [f"http://{_url_host(host)}:{port}"]
    if host in ("127.0.0.1", "localhost"):
        other = "localhost" if host == "127.0.0.1" else "127.0.0.1"
        origins.append(f"http://{other}:{port}")
    return origins


def websocket_url(http_url: str) -> str:
    """The ws:// (or wss://) twin of an http:// (or https://) origin."""
    scheme, rest = http_url.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}"


def content_security_policy(rasa: str) -> str:
    """Scripts and styles from the page only; connections to Rasa only."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            # The widget puts its style sheet in <style> elements it creates.
            "style-src 'self' 'unsafe-inline'",
            # The widget's icons and fonts are data: URLs inside its bundle.
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src 'self' {rasa} {websocket_url(rasa)}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def config_script(rasa: str) -> bytes:
    """``/config.js``: the settings chat.js reads, as a JavaScript statement."""
    settings_json = json.dumps({"socketUrl": rasa}).replace("<", "\\u003c")
    return f"window.MOD_CHAT = Object.freeze({settings_json});\n".encode()


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    gzipped: bytes | None = None


def _asset(body: bytes, content_type: str) -> Asset:
    packed = gzip.compress(body, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
    return Asset(body, content_type, packed)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        hint = (
            " (run `make setup`: npm ci --prefix web)"
            if "node_modules" in path.parts
            else ""
        )
        raise WebPageError(f"the chat page needs {path}{hint}") from None


def load_assets(config: Settings, web_dir: Path = WEB_DIR) -> dict[str, Asset]:
    """Every path the server answers, with its body, read once at start."""
    files = {
        "/": web_dir / "index.html",
        "/page.css": web_dir / "page.css",
        "/chat.js": web_dir / "chat.js",
        "/vendor/rasa-webchat.js": web_dir / WIDGET_JS.relative_to(WEB_DIR),
    }
    bodies = {route: _read(path) for route, path in files.items()}
    # The page tells patients how long the clinic keeps their conversation.
    bodies["/"] = bodies["/"].replace(
        b"{{RETENTION_DAYS}}", str(config.retention_days).encode()
    )
    assets = {
        route: _asset(body, TEXT_TYPES[files[route].suffix])
        for route, body in bodies.items()
    }
    assets["/index.html"] = assets["/"]
    assets["/config.js"] = _asset(config_script(rasa_url(config)), TEXT_TYPES[".js"])
    return assets


def make_handler(assets: Mapping[str, Asset], csp: str) -> type[BaseHTTPRequestHandler]:
    """A request handler that answers GET and HEAD for ``assets`` only."""

    class PageHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def version_string(self) -> str:
            return "mod-chat-page"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self._answer(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(send_body=False)

        def _refuse_method(self) -> None:
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

        def _answer(self, send_body: bool) -> None:
            path = urlsplit(self.path).path
            asset = assets.get(path)
            if asset is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
            body = asset.gzipped if asset.gzipped and accepts_gzip else asset.body
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", asset.content_type)
            self.send_header("Content-Length", str(len(body)))
            if body is asset.gzipped:
                self.send_header("Content-Encoding", "gzip")
            if asset.gzipped:
                self.send_header("Vary", "Accept-Encoding")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def send_response(self, code: int, message: str | None = None) -> None:
            # Allow-header first, so that errors (405) name the methods too.
            super().send_response(code, message)
            if code == HTTPStatus.METHOD_NOT_ALLOWED:
                self.send_header("Allow", "GET, HEAD")

        def end_headers(self) -> None:
            self.send_header("Content-Security-Policy", csp)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Frame-Options", "DENY")
            super().end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # no request lines in the logs

        def log_error(self, format: str, *args: object) -> None:  # noqa: A002
            logger.debug("chat page: " + format, *args)

    return PageHandler


class PageServer(ThreadingHTTPServer):
    daemon_threads = True


class PageServer6(PageServer):
    address_family = socket.AF_INET6


def make_server(config: Settings, web_dir: Path = WEB_DIR) -> PageServer:
    """The page server for ``config``, bound and ready for ``serve_forever``."""
    assets = load_assets(config, web_dir)
    handler = make_handler(assets, content_security_policy(rasa_url(config)))
    host, port = web_address(config)
    server_class = PageServer6 if ":" in host else PageServer
    try:
        return server_class((host, port), handler)
    except OSError as error:
        raise WebPageError(f"cannot listen on {host}:{port}: {error}") from None


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        config = settings.load()
        server = make_server(config)
    except (WebPageError, settings.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    logger.info("chat page on %s", web_url(config))
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
