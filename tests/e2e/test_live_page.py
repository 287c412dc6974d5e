"""The live page at `/`, in a real browser: Debian's chromium, headless, runs the page's
JavaScript against the service, and the DOM it leaves shows a price level placed over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.e2e.api import eventually

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, timeout=600)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed and apt-get could not install it")
    return found


class _Browser:
    """Headless chromium driven over its DevTools protocol: the page runs in real time, and the
    test reads its DOM until what it waits for is there (the page's socket connects when the
    machine gets to it, which a virtual-time budget cannot wait for)."""

    def __init__(self) -> None:
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        self.process = subprocess.Popen(
            [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}", "--remote-debugging-port=0",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        port = self._debugging_port()
        targets = eventually(lambda: _json(f"http://127.0.0.1:{port}/json/list"),
                             lambda found: any(target["type"] == "page" for target in found), what="a page target")
        page = next(target for target in targets if target["type"] == "page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self._next_id = 0

    def _debugging_port(self) -> int:
        # chromium prints "DevTools listening on ws://127.0.0.1:PORT/..." once it listens.
        for line in self.process.stderr:
            if "DevTools listening on" in line:
                # The rest of its log is read away, so that a full pipe never stops it.
                threading.Thread(target=self.process.stderr.read, daemon=True).start()
                return int(line.rsplit(":", 1)[1].split("/", 1)[0])
        raise AssertionError(f"chromium exited ({self.process.wait()}) without a debugging port")

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            answer = json.loads(self.socket.recv(timeout=60))
            if answer.get("id") == self._next_id:
                assert "error" not in answer, answer
                return answer.get("result", {})

    def dom_when(self, url: str, selector: str, deadline: float = 60.0) -> str:
        """Open `url` and return the page's DOM once `selector` matches in it (fail after `deadline` s)."""
        self.call("Page.navigate", url=url)
        probe = f"document.querySelector({json.dumps(selector)}) !== null"
        eventually(lambda: self.call("Runtime.evaluate", expression=probe, returnByValue=True)["result"]["value"],
                   bool, deadline=deadline, what=f"{selector} on the page")
        return self.call("Runtime.evaluate", expression="document.documentElement.outerHTML",
                         returnByValue=True)["result"]["value"]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.socket.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # its renderers and helpers too
        self.process.wait()
        shutil.rmtree(self._profile.name, ignore_errors=True)


def _json(url: str):
    with contextlib.suppress(OSError, ValueError):
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.loads(answer.read())
    return []


@pytest.fixture
def browser():
    opened = _Browser()
    yield opened
    opened.close()


def test_live_page_is_served_without_outside_resources(api):
    response = api.get("/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    page = response.text
    assert "/static/live.js" in page and "http://" not in page and "https://" not in page
    script = api.get("/static/live.js")
    assert script.status_code == 200 and "/api/v1/ws" in script.text
    assert "http://" not in script.text and "https://" not in script.text


def test_live_page_shows_a_price_level_placed_over_http(api, service, browser):
    asset_id = api.new_asset()
    user = api.new_user(usd=1000)
    api.place(user, asset_id, "limit_buy", 3, "12.34")
    dom = browser.dom_when(f"{service.base_url}/?asset={asset_id}", '[data-price="12.34"]')
    assert 'data-side="bid"' in dom
