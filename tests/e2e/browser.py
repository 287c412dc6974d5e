"""Debian's chromium, headless, driven over the DevTools protocol (the `websockets` package, sync API).

`--dump-dom` with `--virtual-time-budget` cannot wait for a page that waits on a WebSocket: virtual time
runs out as soon as the page idles, whether or not its socket has delivered. Here the page runs in real
time, and a test waits (with a deadline) until a JavaScript condition holds before it reads the DOM or
takes a screenshot. `bench/live_page_screenshot.py` uses it too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def find_chromium(install: bool = True) -> str | None:
    """The chromium executable; with `install`, `apt-get install chromium` first if it is missing."""
    found = shutil.which("chromium")
    if found is None and install and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, timeout=900, check=False)
        found = shutil.which("chromium")
    return found


class Browser:
    """One headless chromium with one page, for the length of a `with` block."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900, deadline: float = 60.0) -> None:
        from websockets.sync.client import connect

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        self.process = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={self._profile.name}",
                                         f"--window-size={width},{height}", f"--remote-debugging-port={port}",
                                         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        self._next_id = 0
        self._stack = contextlib.ExitStack()
        try:
            give_up = time.monotonic() + deadline
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                        page = next(target for target in json.load(answer) if target.get("type") == "page")
                    break
                except (OSError, StopIteration, ValueError):
                    if time.monotonic() > give_up or self.process.poll() is not None:
                        raise RuntimeError("chromium's DevTools endpoint did not come up") from None
                    time.sleep(0.2)
            self.devtools = self._stack.enter_context(
                connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=deadline))
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
            self.call("Page.enable")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def call(self, method: str, timeout: float = 60.0, **params) -> dict:
        """One DevTools command and its result (events arriving meanwhile are dropped)."""
        self._next_id += 1
        number = self._next_id
        self.devtools.send(json.dumps({"id": number, "method": method, "params": params}))
        give_up = time.monotonic() + timeout
        while True:
            answer = json.loads(self.devtools.recv(timeout=max(0.1, give_up - time.monotonic())))
            if answer.get("id") == number:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (None if it threw)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return None if "exceptionDetails" in result else result.get("result", {}).get("value")

    def wait_for(self, expression: str, deadline: float = 30.0) -> bool:
        """Poll until `expression` is truthy in the page; False if `deadline` seconds pass first."""
        give_up = time.monotonic() + deadline
        while True:
            if self.evaluate(expression):
                return True
            if time.monotonic() > give_up:
                return False
            time.sleep(0.2)

    def dom(self) -> str:
        return self.evaluate("document.documentElement.outerHTML") or ""

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        self._stack.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        # Chromium's helpers (zygotes, renderers) outlive its main process for a moment, still writing
        # to the profile: the whole group goes.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self._profile.cleanup()
