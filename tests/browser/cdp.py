"""Headless Debian chromium driven over the Chrome DevTools Protocol (a WebSocket of JSON messages)."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
START_TIMEOUT_SECONDS = 30.0


class BrowserError(Exception):
    """chromium did not start, or a DevTools command failed."""


def find_chromium() -> str | None:
    """Return the path of Debian's chromium, or None when it is not installed."""
    return shutil.which("chromium") or (str(Path("/usr/bin/chromium")) if Path("/usr/bin/chromium").exists() else None)


class Browser:
    """One headless chromium with a new, empty profile, and a DevTools session on its first page."""

    def __init__(self, executable: str, profile_dir: Path, *, width: int = 1400, height: int = 1000) -> None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        self.profile_dir = profile_dir
        args = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", f"--window-size={width},{height}", "about:blank"]
        self.log_path = profile_dir / "chromium.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._ids = itertools.count(1)
        self.connection = self._connect_to_page(self._devtools_port())

    def _devtools_port(self) -> int:
        """Wait for chromium to write DevToolsActivePort into the profile and return the port."""
        port_file = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise BrowserError(f"chromium did not open its DevTools port within {START_TIMEOUT_SECONDS} s; see {self.log_path}")
            time.sleep(0.1)
        return int(port_file.read_text().splitlines()[0])

    def _connect_to_page(self, port: int) -> ClientConnection:
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        pages = [target for target in targets if target["type"] == "page"]
        if not pages:
            raise BrowserError(f"chromium on port {port} has no page target: {targets}")
        return connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result, skipping events that arrive first."""
        message_id = next(self._ids)
        self.connection.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.connection.recv(timeout=60))
            if reply.get("id") != message_id:
                continue
            if "error" in reply:
                raise BrowserError(f"DevTools {method} failed: {reply['error']}")
            return reply["result"]

    def navigate(self, url: str) -> None:
        self.command("Page.enable")
        self.command("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """Evaluate a JavaScript expression in the page and return its value (awaiting a promise)."""
        result = self.command("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"JavaScript {expression!r} raised: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def text(self, element_id: str) -> str:
        return str(self.evaluate(f"document.getElementById({json.dumps(element_id)}).textContent"))

    def screenshot(self, path: Path) -> Path:
        data = self.command("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if getattr(self, "connection", None) is not None:
            self.connection.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
