"""The web console in a real browser: Debian's chromium, headless, driven through
chromium-driver (tests/integration/webdriver.py) against a real fleet (a real mosquitto, the hub
serving HTTP on a free loopback port, site agents). The page logs in with an API token, shows
the sites, submits jobs through its form and sees them finish live (no reload), opens a job's
explanation from the keyboard, draws a route job's map, and leaves nothing in the browser's
console: no errors, no Content-Security-Policy violations.

Screenshots go to $OUTPOST_SCREENSHOT_DIR when set (docs/img for the docs' pictures), else to
the fleet's temporary directory. Skipped, with the reason, only where Chromium or its driver is
not installed.
"""
import base64
import json
import os
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webdriver  # noqa: E402
from fleet import ROOT, UNCHECKED_POLICY, Fleet, free_port  # noqa: E402

REL = os.path.join(ROOT, "build", "rel", "outpost")
XSS_NAME = "<img src=x onerror=window.__xss=1>"


def route_instance():
    """A small delivery day: a depot and 14 stops on a grid, vans of capacity 20."""
    stops = [{"id": f"s{i:02d}", "x": (i * 37) % 100 - 50, "y": (i * 61) % 100 - 50,
              "demand": 1 + i % 6} for i in range(14)]
    return {"name": "console-day", "depot": {"x": 0, "y": 0},
            "vehicles": [{"name": "van", "capacity": 20, "count": 6}], "stops": stops}


class ConsoleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = webdriver.available()
        if why:
            raise unittest.SkipTest(f"no browser for the console test: {why}")
        cls.f = f = Fleet()
        cls.http_port = free_port()
        cls.url = f"http://127.0.0.1:{cls.http_port}"
        cls.shots = os.environ.get("OUTPOST_SCREENSHOT_DIR") or os.path.join(f.base, "shots")
        os.makedirs(cls.shots, exist_ok=True)
        cls.browser = None
        try:
            f.start_broker()
            f.start_hub(policy=UNCHECKED_POLICY, http_listen=f"127.0.0.1:{cls.http_port}",
                        power_history_step_s=1)
            f.start_site("dc-1", "dc", cores=2, route_program=REL, power_budget_watts=400)
            f.start_site("pod-1", "pod", cores=2, route_program=REL)
            f.start_site("pod-2", "pod", cores=1, route_program=REL, power_budget_watts=120)
            op = "op-" + f.cli("operator-key").stdout.split()[0][:16]
            # work drawing power while the page watches (the power picture's "used")
            f.cli("submit", "--classes", "pod", "--", "sh", "-c", "sleep 8")
            f.cli("submit", "--classes", "dc", "--", "sh", "-c", "sleep 5")
            # a hostile job name: the page must show it as text, never run it
            f.cli("submit", "--kind", "noop", "--name", XSS_NAME)
            cls.token = cls.api_token(op, "operator")
            cls.viewer_token = cls.api_token(op, "viewer")
            cls.browser = webdriver.Browser(os.path.join(f.base, "chromedriver.log"), 1440, 1100)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "browser", None):
            cls.browser.close()
        cls.f.stop()

    @classmethod
    def api_token(cls, op, role):
        out = cls.f.cli("api-token", "create", "--operator", op, "--role", role).stdout
        return out.split()[-1]

    # --- helpers

    def js(self, source, *args):
        return self.browser.script(source, *args)

    def wait(self, source, what, timeout=30):
        return self.browser.wait(source, timeout, what)

    def shot(self, name):
        self.browser.screenshot(os.path.join(self.shots, f"console-{name}.png"))

    def login(self, token):
        b = self.browser
        b.get(self.url + "/")
        self.wait("return !document.getElementById('login').hidden ||"
                  " !document.getElementById('console').hidden", "the page")
        if not self.js("return document.getElementById('login').hidden"):
            b.find("#login-token").type(token)
            b.find("#login-form button[type=submit]").click()
        self.wait("return !document.getElementById('console').hidden", "the console after login")

    def submit_through_page(self, kind, fill):
        b = self.browser
        b.find(f"#submit-form input[name=kind][value={kind}]").click()
        fill(b)
        before = self.js("return document.getElementById('submit-result').textContent")
        b.find("#submit-form button[type=submit]").click()
        text = self.wait("const t = document.getElementById('submit-result').textContent;"
                         f" return t !== {json.dumps(before)} && t", "the submit answer", 30)
        self.assertTrue(text.startswith("Submitted job "), text)
        return int(text.split()[-1].rstrip("."))

    def job_button(self, job_id):
        """The button that opens a job, scrolled to the middle of the window (screenshots)."""
        css = f"#job-table button[data-job='{job_id}']"
        self.js("document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", css)
        return self.browser.find(css)

    def wait_row_state(self, job_id, state, timeout=60):
        return self.wait(f"return document.querySelector('#job-table tr[data-job=\"{job_id}\"]"
                         f"[data-state=\"{state}\"]') !== null", f"job {job_id} {state}", timeout)

    def assert_clean_console(self):
        bad = [e for e in self.browser.console_log()
               if e.get("level") == "SEVERE" or "Content Security Policy" in e.get("message", "")
               or "Refused to" in e.get("message", "")]
        self.assertEqual(bad, [], "browser console errors or CSP violations")
        self.assertEqual(self.js("return window.__cspViolations || []"), [])

    # --- tests

    def test_1_bad_token_refused_on_the_page(self):
        b = self.browser
        b.get(self.url + "/")
        self.wait("return !document.getElementById('login').hidden", "the login form")
        self.assertTrue(self.js("return document.getElementById('console').hidden"))
        b.find("#login-token").type("op1.not-a-token")
        b.find("#login-form button[type=submit]").click()
        msg = self.wait("return document.getElementById('login-error').textContent", "the error")
        self.assertIn("not valid", msg)
        self.assertTrue(self.js("return document.getElementById('console').hidden"))
        b.console_log()  # the refused login's 401 is the browser's own report of it

    def test_2_served_with_a_strict_policy(self):
        with urllib.request.urlopen(self.url + "/", timeout=10) as r:
            csp = r.headers.get("Content-Security-Policy", "")
            page = r.read().decode()
        self.assertIn("default-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("<script>", page)  # every script is a file (/console/app.js)
        self.assertNotIn(" style=", page)

    def test_3_live_fleet_jobs_and_route_map(self):
        b = self.browser
        self.login(self.token)
        self.js("window.__sameDocument = 'yes'; window.__cspViolations = [];"
                " document.addEventListener('securitypolicyviolation',"
                " (e) => window.__cspViolations.push(e.violatedDirective));")
        # the fleet by class, each site with its power
        self.wait("return document.querySelectorAll('#fleet-classes tr[data-site]').length === 3",
                  "three sites")
        classes = self.js("return [...document.querySelectorAll('#fleet-classes table')]"
                          ".map((t) => t.dataset.class)")
        self.assertEqual(classes, ["dc", "pod"])
        row = self.js("return [...document.querySelector('tr[data-site=\"dc-1\"]').cells]"
                      ".map((c) => c.textContent)")
        self.assertEqual(row[1], "alive")
        self.assertEqual(row[2], "400 W")
        self.wait("return document.getElementById('live').dataset.state === 'on'", "live events")
        self.wait("return /entries/.test(document.getElementById('audit-head').textContent)",
                  "the audit head")
        self.assertRegex(self.js("return document.getElementById('policy-version').textContent"),
                         r"^v1 ")
        # the power picture: offered and used per class, sampled every second here
        self.wait("return ['dc', 'pod'].every((c) => document.querySelector("
                  "`#power-charts figure[data-class=${c}] polyline.offered`))", "power charts", 20)

        # the hostile name is shown as the characters it is; no element made, nothing ran
        cell = self.wait("const r = [...document.querySelectorAll('#job-table tr')]"
                         ".find((tr) => tr.dataset.state === 'succeeded' && tr.cells[2]"
                         ".textContent === 'noop'); return r && r.cells[1].textContent",
                         "the hostile job's row")
        self.assertEqual(cell, XSS_NAME)
        self.assertIsNone(self.js("return document.querySelector('#console img')"))
        self.assertIsNone(self.js("return window.__xss === undefined ? null : window.__xss"))

        # a command through the page: it finishes live, without a reload
        job = self.submit_through_page(
            "exec", lambda b: b.find("#submit-command").type("echo from the console"))
        self.wait_row_state(job, "succeeded")
        self.assertEqual(self.js("return window.__sameDocument"), "yes", "the page reloaded")
        self.assertEqual(self.f.job(job)["job"]["state"], "succeeded")

        # its explanation and energy receipt, opened from the keyboard
        self.job_button(job).type("\ue007")  # Enter
        text = self.wait("const d = document.getElementById('job-detail');"
                         " return !d.hidden && document.getElementById('detail-receipt')"
                         ".textContent && d.textContent", "the job's explanation")
        self.assertIn("placed on", text)
        self.assertIn("Energy", text)
        self.assertIn("succeeded", self.js("return document.getElementById('detail-events').textContent"))

        # a route plan from an uploaded instance, drawn as a map
        inst = route_instance()
        path = os.path.join(self.f.base, "console-day.json")
        with open(path, "w") as fh:
            json.dump(inst, fh)

        def fill_route(b):
            b.find("#submit-instance").type(path)
            limit = b.find("#submit-time")
            limit.clear()
            limit.type("1")
        route_job = self.submit_through_page("route", fill_route)
        self.wait_row_state(route_job, "succeeded", 90)
        self.job_button(route_job).click()
        drawn = self.wait("return document.querySelectorAll('#detail-map svg.map polyline.route')"
                          ".length", "the route map", 30)
        result = self.f.cli_json("result", str(route_job))
        sol = next(o for o in result["outputs"] if o["name"] == "solution.json")
        routes = json.loads(base64.b64decode(sol["data_b64"]))["routes"]
        self.assertEqual(drawn, len(routes))
        stops = self.js("return document.querySelectorAll('#detail-map svg.map circle.stop').length")
        self.assertEqual(stops, len(inst["stops"]))
        self.js("document.getElementById('job-detail').scrollIntoView()")
        self.shot("route")
        self.js("window.scrollTo(0, 0)")
        self.shot("fleet")
        self.assertEqual(self.js("return window.__sameDocument"), "yes", "the page reloaded")
        self.assert_clean_console()

    def test_4_viewer_sees_but_cannot_submit(self):
        b = self.browser
        if not self.js("return document.getElementById('logout').hidden"):
            b.find("#logout").click()
        self.wait("return !document.getElementById('login').hidden", "the login form")
        self.login(self.viewer_token)
        self.wait("return document.querySelectorAll('#fleet-classes tr[data-site]').length === 3",
                  "three sites")
        b.find("#submit-form input[name=kind][value=noop]").click()
        b.find("#submit-form button[type=submit]").click()
        msg = self.wait("return document.getElementById('submit-result').className === 'error'"
                        " && document.getElementById('submit-result').textContent", "the refusal")
        self.assertIn("Not submitted", msg)
        b.find("#large-toggle").click()
        self.assertEqual(b.find("#large-toggle").attr("aria-pressed"), "true")
        self.js("window.scrollTo(0, 0)")
        self.shot("large")
        b.console_log()  # the refusal's 403 is the browser's own report of it

    def test_5_labels_and_contrast(self):
        """Every field has a label, every table a caption and header cells, and all visible text
        keeps a contrast ratio of at least 4.5:1 (WCAG AA) against what it is drawn on."""
        self.wait("return !document.getElementById('console').hidden", "the console")
        unlabelled = self.js("return [...document.querySelectorAll('input, select, textarea')]"
                             ".filter((i) => i.labels.length === 0).map((i) => i.outerHTML)")
        self.assertEqual(unlabelled, [])
        bare = self.js("return [...document.querySelectorAll('table')].filter((t) => !t.caption"
                       " || !t.querySelector('th')).length")
        self.assertEqual(bare, 0)
        low = self.js(CONTRAST_JS)
        self.assertEqual(low, [], "text below 4.5:1")


# Each visible element with its own text: its colour against the first opaque background
# behind it (the element's or an ancestor's), by the WCAG relative-luminance formula.
CONTRAST_JS = """
const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255;
  return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
  .reduce((n, v, i) => n + v * [0.2126, 0.7152, 0.0722][i], 0);
const background = (el) => { for (; el; el = el.parentElement) {
  const c = rgb(getComputedStyle(el).backgroundColor);
  if (c.length === 3 || c[3] > 0.9) return c.slice(0, 3); } return [255, 255, 255]; };
const low = [];
let checked = 0;
for (const el of document.querySelectorAll('body *')) {
  if (!el.offsetParent || el.closest('svg')) continue;
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  checked += 1;
  const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) low.push(el.tagName + ' ' + el.textContent.slice(0, 30) + ' ' + ratio.toFixed(2));
}
return checked > 20 ? low : ['only ' + checked + ' elements checked'];
"""

if __name__ == "__main__":
    unittest.main()
