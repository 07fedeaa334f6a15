"""A small W3C WebDriver client over HTTP (Python's standard library only), driving Debian's
chromium through chromium-driver for the console's browser test.

Browser() starts chromedriver on a free loopback port and one headless Chromium session with
a temporary profile directory; close() ends the session, stops chromedriver (and with it
Chromium) and removes the profile. Only what the test needs is here: navigate, find, click,
type, read text, run a script, screenshots and the browser's console log.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def available():
    """None when a browser test can run here, else why not."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (Debian packages chromium and chromium-driver)"
    return None


class WebDriverError(RuntimeError):
    pass


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Element:
    def __init__(self, browser, ref):
        self.b = browser
        self.ref = ref

    def _path(self, tail):
        return f"/element/{self.ref}/{tail}"

    def click(self):
        self.b.cmd("POST", self._path("click"), {})

    def clear(self):
        self.b.cmd("POST", self._path("clear"), {})

    def type(self, text):
        self.b.cmd("POST", self._path("value"), {"text": text})

    @property
    def text(self):
        return self.b.cmd("GET", self._path("text"))

    def attr(self, name):
        return self.b.cmd("GET", self._path(f"attribute/{name}"))


class Browser:
    """One headless Chromium session. width x height: the window (screenshots' size)."""

    def __init__(self, log_path, width=1500, height=1000):
        self.profile = tempfile.mkdtemp(prefix="outpost-chromium-")
        self.port = _free_port()
        self.log = open(log_path, "ab")
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"], stdout=self.log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        self.session = None
        self._wait_ready()
        args = ["--headless=new", f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}", "--disable-gpu", "--disable-extensions",
                "--no-first-run", "--disable-background-networking", "--disable-dev-shm-usage",
                "--force-device-scale-factor=1"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"}}}}
        value = self._request("POST", "/session", caps, timeout=60)
        self.session = value["sessionId"]

    def _wait_ready(self):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self._request("GET", "/status", timeout=2).get("ready"):
                    return
            except (OSError, WebDriverError):
                pass
            if self.driver.poll() is not None:
                raise WebDriverError("chromedriver exited at start")
            time.sleep(0.1)
        raise WebDriverError("chromedriver did not get ready in 20 s")

    def _request(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                answer = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read()).get("value", {})
            except ValueError:
                err = {}
            raise WebDriverError(f"{method} {path}: {err.get('error')}: {err.get('message')}")
        return answer.get("value")

    def cmd(self, method, path, body=None, timeout=30):
        return self._request(method, f"/session/{self.session}{path}", body, timeout)

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def find(self, css):
        ref = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        return Element(self, next(iter(ref.values())))

    def find_all(self, css):
        refs = self.cmd("POST", "/elements", {"using": "css selector", "value": css})
        return [Element(self, next(iter(r.values()))) for r in refs]

    def script(self, source, *args):
        return self.cmd("POST", "/execute/sync", {"script": source, "args": list(args)})

    def wait(self, source, timeout=20.0, what="the page", *args):
        """Runs the script until it returns something truthy; that value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.script(source, *args)
            if last:
                return last
            time.sleep(0.1)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.cmd("GET", "/screenshot")))

    def console_log(self):
        """The browser's console messages since the last call: [{level, message}]."""
        return self.cmd("POST", "/se/log", {"type": "browser"}) or []

    def close(self):
        try:
            if self.session:
                self.cmd("DELETE", "", timeout=15)
        except (OSError, WebDriverError):
            pass
        if self.driver.poll() is None:
            try:
                os.killpg(self.driver.pid, signal.SIGTERM)
                self.driver.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.driver.pid, signal.SIGKILL)
                self.driver.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
