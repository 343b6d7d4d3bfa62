"""A headless Chromium driven over the DevTools protocol through a pipe (`--remote-debugging-pipe`: commands on
fd 3, replies on fd 4, each message JSON ending in a NUL byte), with no Python package beyond the standard
library. Used by the report's browser test: open a page, collect errors and outside requests, measure
elements, take a full-page screenshot, print to PDF.

    with Chromium.start(executable, tmp_path) as browser:
        page = browser.open(Path("report.html"))      # PageLoad: errors, requests, screenshot PNG bytes, ...
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH = 1280
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
         "--disable-background-networking", "--remote-debugging-pipe")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    errors: list = field(default_factory=list)  # console errors, exceptions, failed loads
    requests: list = field(default_factory=list)  # every URL the page asked for
    measures: dict = field(default_factory=dict)  # what the page's measuring script returned
    screenshot: bytes = b""
    pdf: bytes = b""


class Chromium:
    def __init__(self, process, to_browser: int, from_browser: int):
        self.process, self.to_browser, self.from_browser = process, to_browser, from_browser
        self.buffer, self.next_id, self.events = b"", 0, []

    @classmethod
    def start(cls, executable: str, profile: Path) -> "Chromium":
        command_read, command_write = os.pipe()
        reply_read, reply_write = os.pipe()

        def child_fds():  # the pipe ends at fd 3 and 4 (copied high first, in case they are 3 or 4 already)
            commands, replies = os.dup(command_read), os.dup(reply_write)
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        process = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   preexec_fn=child_fds, pass_fds=(3, 4),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(command_read)
        os.close(reply_write)
        return cls(process, command_write, reply_read)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None, timeout: float = 30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for index, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(index)
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def open(self, page: Path, measure: str, *, height: int = 900) -> PageLoad:
        """Load `page`, run the `measure` expression (its JSON value comes back), screenshot and print it."""
        targets = self.send("Target.getTargets")["targetInfos"]
        target = next(t["targetId"] for t in targets if t["type"] == "page")
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)
        self.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        self.wait_for("Page.loadEventFired", timeout=60)
        measured = self.send("Runtime.evaluate", {"expression": f"JSON.stringify({measure})", "returnByValue": True},
                             session=session)
        load = PageLoad(measures=json.loads(measured["result"]["value"]))
        size = self.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                    "clip": {"x": 0, "y": 0, "width": WIDTH,
                                                             "height": size["height"], "scale": 1}},
                         session=session, timeout=60)
        load.screenshot = base64.b64decode(shot["data"])
        load.pdf = base64.b64decode(self.send("Page.printToPDF", session=session, timeout=60)["data"])
        self._collect(load)
        return load

    def _collect(self, load: PageLoad) -> None:
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                load.errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                load.errors.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                load.errors.append(params["entry"].get("text", ""))
            elif method == "Network.loadingFailed":
                load.errors.append(f"failed to load: {params.get('errorText')}")
            elif method == "Network.requestWillBeSent":
                load.requests.append(params["request"]["url"])
