"""Debian's headless chromium, driven over the Chrome DevTools Protocol (CDP).

Why this and not Playwright or Selenium: the test needs four commands (navigate,
evaluate, click by script, screenshot).  CDP over one websocket does that with a
pure-Python package (``websocket-client``), against whatever ``/usr/bin/chromium``
the machine has: no driver binary, no browser download, no version pairing between a
driver and the browser.
"""

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Flags that work in a container as root, with no network but loopback and no GPU.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,2000",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    """The chromium to drive: ``CHROMIUM`` when set, else the first on PATH."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured
    return next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)


class BrowserError(Exception):
    """Chromium did not start, or a CDP command failed or timed out."""


class Page:
    """One tab: ``call`` sends a CDP command and returns its result (events are skipped)."""

    def __init__(self, websocket_url: str) -> None:
        import websocket

        # No Origin header: chromium refuses DevTools connections from an origin it was not told to allow.
        self.socket = websocket.create_connection(websocket_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        sent = self.next_id
        self.socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") != sent:
                continue
            if "error" in message:
                raise BrowserError(f"{method}: {message['error']}")
            result: dict[str, Any] = message["result"]
            return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression[:80]}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0) -> Any:
        """Until the expression is truthy; its value.  ``BrowserError`` with the last value on timeout."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise BrowserError(f"not true within {timeout_s:.0f} s: {expression} (last: {value!r})")

    def screenshot(self, path: Path) -> Path:
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self.socket.close()


@contextmanager
def browser(executable: str, profile: Path, timeout_s: float = 30.0) -> Iterator[Page]:
    """A fresh headless chromium (its own profile folder) and its first tab; stopped after the block."""
    command = [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = _devtools_port(profile, process, timeout_s)
        page = Page(_first_tab(port, timeout_s))
        try:
            yield page
        finally:
            page.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _devtools_port(profile: Path, process: "subprocess.Popen[bytes]", timeout_s: float) -> int:
    # With --remote-debugging-port=0 chromium picks a free port and writes it to this file.
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with {process.returncode} before DevTools listened")
        if marker.exists() and (lines := marker.read_text().splitlines()):
            return int(lines[0])
        time.sleep(0.1)
    raise BrowserError(f"chromium's DevTools did not listen within {timeout_s:.0f} s")


def _first_tab(port: int, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
            pages = [t for t in json.load(answer) if t.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        time.sleep(0.1)
    raise BrowserError("chromium has no tab")
