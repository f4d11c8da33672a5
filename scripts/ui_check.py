"""Verify what a user sees in the Prefect UI for an alflow campaign, in a real headless browser.

Why: users watch overnight campaigns in the Prefect UI. API-level tests prove that the flow
creates task runs and artifacts; only a browser proves that they are *on screen* and readable.

What it does (see docs/ui.md):
  1. starts a real ``prefect server start`` on 127.0.0.1 (free port, temporary PREFECT_HOME,
     analytics off), waits for ``/api/health``;
  2. runs a tiny campaign (an oracle failing in a corner, a deadline) against it (``alflow run CONFIG`` with PREFECT_API_URL set);
  3. opens the UI in the system Chromium (Debian's ``chromium``) through Playwright with
     background networking disabled (never downloads a browser), navigates to the flow run,
     its task runs and its artifacts, asserts on the page text, and saves screenshots.

Usage::

    .venv/bin/python scripts/ui_check.py                 # full check, screenshots in docs/img/
    .venv/bin/python scripts/ui_check.py --empty-only    # only prove the browser + server work
    .venv/bin/python scripts/ui_check.py --config my.toml  # check your own campaign instead

Prints one JSON object with what was checked; exit status 0 only if every check passed.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMG_DIR = REPO / "docs" / "img"
VENV_BIN = Path(sys.executable).parent

# Flags that keep Chromium from talking to anything but 127.0.0.1: this machine has no internet,
# and a browser that phones home would hang or leak. --headless/--no-sandbox/--disable-gpu are
# required by the issue (root user in a container, no GPU).
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-sync",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
    "--metrics-recording-only",
    "--no-default-browser-check",
    "--no-first-run",
    "--no-pings",
    "--safebrowsing-disable-auto-update",
    "--password-store=basic",
    "--use-mock-keychain",
)

# The per-iteration steps of the campaign flow (docs/architecture.md, issue 5).
TASK_NAMES: tuple[str, ...] = ("train", "evaluate", "select", "label", "checkpoint")


class UICheckError(RuntimeError):
    """A check of the UI failed; the message names what was missing."""


def find_chromium() -> str:
    """Return the path of the system Chromium, or fail with how to install it.

    Why: Playwright's own browser download must never run here (no internet, and a browser
    fetched at run time is not reproducible); the Debian package is the supported browser.
    """
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise UICheckError("no system chromium found: apt-get install -y chromium")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offline_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment with Prefect's and others' telemetry off (no outbound traffic)."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
            "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
            "MKL_NUM_THREADS": env.get("MKL_NUM_THREADS", "1"),
        }
    )
    return env


@dataclass
class PrefectServer:
    """A real ``prefect server start`` on 127.0.0.1 with its own temporary PREFECT_HOME.

    Use as a context manager; the server (its whole process group) is stopped on exit and the
    temporary home removed. ``env`` is the environment a client needs to talk to it.
    """

    port: int = 0
    home: Path | None = None
    startup_timeout: float = 120.0
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = offline_env()
        env.update(
            {
                "PREFECT_HOME": str(self.home),
                "PREFECT_API_URL": self.api_url,
                "PREFECT_UI_URL": self.ui_url,
                "PREFECT_UI_API_URL": self.api_url,
                "PREFECT_SERVER_UI_API_URL": self.api_url,
                "PREFECT_SERVER_API_HOST": "127.0.0.1",
                "PREFECT_SERVER_API_PORT": str(self.port),
            }
        )
        return env

    def start(self) -> PrefectServer:
        if self.home is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="alflow-prefect-home-")
            self.home = Path(self._tmp.name)
        if not self.port:
            self.port = free_port()
        if self.log_path is None:
            self.log_path = self.home / "server.log"
        prefect = VENV_BIN / "prefect"
        cmd = [str(prefect) if prefect.exists() else "prefect", "server", "start",
               "--host", "127.0.0.1", "--port", str(self.port), "--analytics-off"]
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        # own session so stop() can kill the server and every child (uvicorn, services) at once
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.api_url}/health"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise UICheckError(f"prefect server exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            try:
                with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - 127.0.0.1 only
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise UICheckError(f"prefect server not healthy at {url} after {self.startup_timeout}s:\n"
                           + self.log_tail())

    def log_tail(self, n: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PrefectServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def api_post(server: PrefectServer, path: str, body: dict) -> object:
    """POST JSON to the server's REST API (stdlib only, so the check needs no client config)."""
    req = urllib.request.Request(f"{server.api_url}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - 127.0.0.1 only
        return json.loads(r.read())


def api_get(server: PrefectServer, path: str) -> object:
    with urllib.request.urlopen(f"{server.api_url}{path}", timeout=30) as r:  # noqa: S310
        return json.loads(r.read())


# --------------------------------------------------------------------------------------------
# campaign
# --------------------------------------------------------------------------------------------

TINY_CONFIG = """\
# A tiny campaign for the UI check: seconds of compute per iteration on 2 cores. Its oracle
# fails in a corner of the box (as real solvers diverge), it has a deadline in a named time
# zone and asks for the Dask dashboard, so the summary shows failures, deadline and link.
[campaign]
name = "ui-check-campaign"
store = "{store}"
seed = 0

[oracle]
name = "ui_oracle.py:f"
bounds = [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]

[pool]
size = 256
design = "sobol"

[test]
size = 32

[model]
hidden = [32, 32]
epochs = 60
batch_size = 16
patience = 10
device = "cpu"

[acquisition]
strategy = "nngp"
samples = 32
batch_size = 6

[budget]
initial = 12
iterations = 4
deadline = "{deadline}"
timezone = "Europe/Berlin"

[dask]
workers = 1
retries = 0
timeout = 60
dashboard = true
"""

UI_ORACLE = '''\
"""A smooth 3-input test function that "diverges" (raises) where x0 > 0.8, like a real solver."""
import time

import numpy as np


def f(x):
    time.sleep(0.3)  # a "simulator" slow enough that the run can be watched mid-way
    if x[0] > 0.8:
        raise RuntimeError(f"solver diverged at x0={x[0]:.3f} (residual grew past 1e6)")
    return float(np.sin(3.0 * x[0]) * np.cos(2.0 * x[1]) + 0.5 * x[2] ** 2)
'''


def write_tiny_config(workdir: Path) -> Path:
    """Write the tiny config used by the check (and its oracle file) into ``workdir``; its
    deadline is three hours from now in Europe/Berlin."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    store = workdir / "ui_check.h5"
    cfg = workdir / "ui_check.toml"
    (workdir / "ui_oracle.py").write_text(UI_ORACLE)
    deadline = (datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(hours=3)).strftime("%H:%M")
    cfg.write_text(TINY_CONFIG.format(store=store.as_posix(), deadline=deadline))
    return cfg


def run_campaign(server: PrefectServer, config: Path, timeout: float = 420.0,
                 while_running: object = None) -> str:
    """Run ``alflow run CONFIG`` against the server; return its output (raise on failure).

    ``while_running()``, if given, is called once while the campaign runs (the mid-run checks).
    """
    alflow = VENV_BIN / "alflow"
    cmd = [str(alflow) if alflow.exists() else "alflow", "run", str(config)]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, env=server.env, cwd=config.parent, stdout=log,
                                stderr=subprocess.STDOUT, text=True)
        try:
            if while_running is not None:
                while_running()  # type: ignore[operator]
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log.seek(0)
        out = log.read()
    if proc.returncode != 0:
        raise UICheckError(f"`alflow run` exited {proc.returncode}:\n{out[-4000:]}")
    return out


def check_summary_while_running(server: PrefectServer, name: str, img_dir: Path,
                                checks: Checks, timeout: float = 240.0) -> None:
    """Open the summary as soon as iteration 1 is done: the ETA must be a time, not "–"."""
    key = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + "-summary"
    end = time.monotonic() + timeout
    art = None
    while time.monotonic() < end:
        with contextlib.suppress(Exception):
            art = _latest_artifact(server, key)
            if art and str(art.get("description", "")).startswith("After iteration 1"):
                break
        time.sleep(0.5)
    if not checks.expect("summary artifact after iteration 1 (API, while running)", art is not None, key):
        return
    with browser_page() as page:
        goto(page, f"{server.ui_url}/artifacts/artifact/{art['id']}", wait_text="ETA to the budget")
        text = page_text(page)
        m = re.search(r"ETA to the budget\t([^\n]+)", text)
        eta = m.group(1) if m else ""
        checks.expect("while running: summary shows the ETA to the budget as a time",
                      re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \(in ", eta) is not None, eta[:80])
        m = re.search(r"Deadline\t([^\n]+)", text)
        checks.expect("while running: summary shows the deadline and the labels expected by then",
                      m is not None and "labels by then" in m.group(1), m.group(1)[:120] if m else "")
        screenshot(page, img_dir / "ui_summary_running.png")


def latest_flow_run(server: PrefectServer) -> dict:
    """The most recently started flow run on the server (the campaign just run)."""
    runs = api_post(server, "/flow_runs/filter", {"sort": "START_TIME_DESC", "limit": 5})
    if not isinstance(runs, list) or not runs:
        raise UICheckError("the server has no flow run: the campaign did not report to it")
    return runs[0]


def task_runs_of(server: PrefectServer, flow_run_id: str) -> list[dict]:
    body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200}
    runs = api_post(server, "/task_runs/filter", body)
    return runs if isinstance(runs, list) else []


def artifacts_of(server: PrefectServer, flow_run_id: str) -> list[dict]:
    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
    arts = api_post(server, "/artifacts/filter", body)
    return arts if isinstance(arts, list) else []


# --------------------------------------------------------------------------------------------
# browser
# --------------------------------------------------------------------------------------------

@contextlib.contextmanager
def browser_page(width: int = 1440, height: int = 1000) -> Iterator[object]:
    """A Playwright page in the system Chromium, headless, with outbound traffic blocked.

    Every request that does not go to 127.0.0.1/localhost is aborted at the page level too,
    so a font or analytics URL baked into the UI cannot leave the machine or stall a load.
    """
    from playwright.sync_api import sync_playwright

    exe = find_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport={"width": width, "height": height},
                                          color_scheme="light")

            def _route(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                if re.match(r"^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/", url) or \
                        url.startswith(("data:", "blob:", "about:", "file:")):
                    route.continue_()  # type: ignore[attr-defined]
                else:
                    route.abort()  # type: ignore[attr-defined]

            context.route("**/*", _route)
            page = context.new_page()
            yield page
        finally:
            browser.close()


def goto(page: object, url: str, wait_text: str | None = None, timeout_ms: int = 45_000) -> None:
    """Navigate and wait until the SPA has rendered (network idle, optional text visible)."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        page.wait_for_load_state("networkidle", timeout=timeout_ms)  # type: ignore[attr-defined]
    if wait_text:
        try:
            page.get_by_text(wait_text, exact=False).first.wait_for(  # type: ignore[attr-defined]
                state="visible", timeout=timeout_ms)
        except Exception as err:  # noqa: BLE001 - re-raised with the page text for diagnosis
            raise UICheckError(f"{url}: text {wait_text!r} not visible; page says:\n"
                               f"{page_text(page)[:2000]}") from err
    page.wait_for_timeout(800)  # type: ignore[attr-defined]  # let charts/animations settle


def open_tab(page: object, tab: str, wait_text: str, timeout_ms: int = 45_000) -> None:
    """Click a tab of a run page (the UI ignores ``?tab=`` on a fresh load) and wait for it."""
    tabs = page.get_by_role("tab", name=tab)  # type: ignore[attr-defined]
    target = tabs.first if tabs.count() else page.get_by_text(tab, exact=True).first  # type: ignore[attr-defined]
    target.click()
    try:
        page.get_by_text(wait_text, exact=False).first.wait_for(  # type: ignore[attr-defined]
            state="visible", timeout=timeout_ms)
    except Exception as err:  # noqa: BLE001 - re-raised with the page text for diagnosis
        raise UICheckError(f"tab {tab!r}: text {wait_text!r} not visible; page says:\n"
                           f"{page_text(page)[:2000]}") from err
    with contextlib.suppress(Exception):
        page.wait_for_load_state("networkidle", timeout=timeout_ms)  # type: ignore[attr-defined]
    page.wait_for_timeout(800)  # type: ignore[attr-defined]


def page_text(page: object) -> str:
    return str(page.evaluate("() => document.body.innerText"))  # type: ignore[attr-defined]


def screenshot(page: object, path: Path, full_page: bool = False) -> Path:
    """Save a PNG. ``full_page`` grows the viewport to the height of the scrolling content:
    the Prefect UI scrolls an inner container, so Playwright's own full_page sees one screen."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size  # type: ignore[attr-defined]
    if full_page and size:
        height = int(page.evaluate(  # type: ignore[attr-defined]
            "() => Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))"))
        page.set_viewport_size({"width": size["width"],  # type: ignore[attr-defined]
                                "height": max(size["height"], min(height + 40, 4000))})
        page.wait_for_timeout(600)  # type: ignore[attr-defined]
    page.screenshot(path=str(path))  # type: ignore[attr-defined]
    if full_page and size:
        page.set_viewport_size(size)  # type: ignore[attr-defined]
    return path


def scroll_to_tabs(page: object, tab: str) -> None:
    """Scroll the tab bar to the top so a screenshot shows the tab's content, not the graph."""
    with contextlib.suppress(Exception):
        tabs = page.get_by_role("tab", name=tab)  # type: ignore[attr-defined]
        el = tabs.first if tabs.count() else page.get_by_text(tab, exact=True).first  # type: ignore[attr-defined]
        el.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(400)  # type: ignore[attr-defined]


def check_empty_ui(server: PrefectServer, img_dir: Path) -> dict:
    """Open the dashboard of a fresh server: proves browser + server + offline flags work."""
    with browser_page() as page:
        goto(page, f"{server.ui_url}/dashboard")
        text = page_text(page)
        shot = screenshot(page, img_dir / "ui_empty.png")
    if "Dashboard" not in text and "Flow Runs" not in text:
        raise UICheckError(f"the Prefect UI did not render; page text:\n{text[:1000]}")
    return {"empty_ui": str(shot), "empty_ui_text_chars": len(text)}


@dataclass
class Checks:
    """Collects named pass/fail checks so one run reports every problem, not just the first."""

    results: list[dict] = field(default_factory=list)

    def expect(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append({"check": name, "ok": bool(ok), "detail": detail})
        return bool(ok)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r["ok"] for r in self.results)

    def failed(self) -> list[dict]:
        return [r for r in self.results if not r["ok"]]


def _store_facts(store_path: Path) -> dict:
    """What the campaign wrote, read back from the store: the ground truth for the UI."""
    from alcore.store import CampaignStore

    with CampaignStore.open(store_path, "r") as st:
        its = [it for it in st.iterations if it["finished"]]
        return {
            "finished": [int(it["iteration"]) for it in its],
            "labels": {int(it["iteration"]): int(it["metrics"].get("labelled", -1)) for it in its},
            "labelled": int(st.n_labelled),
            "failed": int(st.failed_indices().size),
            "dashboard": bool((st.config.get("dask") or {}).get("dashboard")),
            "name": str(st.config.get("campaign", {}).get("name", "")),
        }


def _latest_artifact(server: PrefectServer, key: str) -> dict | None:
    arts = api_post(server, "/artifacts/filter", {"artifacts": {"key": {"any_": [key]}},
                                                  "sort": "CREATED_DESC", "limit": 1})
    return arts[0] if isinstance(arts, list) and arts else None


def check_campaign_in_ui(server: PrefectServer, store_path: Path, img_dir: Path,
                         checks: Checks) -> dict:
    """Navigate the UI like a user and check what is on screen against the store."""
    facts = _store_facts(store_path)
    name, finished = facts["name"], facts["finished"]
    run = latest_flow_run(server)
    run_id, run_name = run["id"], run["name"]
    checks.expect("flow run completed (API)", run.get("state_type") == "COMPLETED",
                  f"{run_name}: {run.get('state_type')}")
    checks.expect("flow run named after the campaign", run_name.startswith(name), run_name)
    expected_tasks = [f"{step}-{i}" for i in finished for step in TASK_NAMES]
    api_tasks = {t["name"] for t in task_runs_of(server, run_id)}
    missing = [t for t in expected_tasks if t not in api_tasks]
    checks.expect("task run per step per iteration (API)", not missing, f"missing {missing}")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    keys = {what: f"{slug}-{what}" for what in ("metrics", "progress", "summary")}

    shots: dict[str, str] = {}
    blocked: list[str] = []
    errors: list[str] = []
    http_errors: list[str] = []
    with browser_page() as page:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("requestfailed", lambda r: blocked.append(r.url)
                if not r.url.startswith(server.ui_url) else None)
        page.on("response", lambda r: http_errors.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)
        base = f"{server.ui_url}/runs/flow-run/{run_id}"

        # 1. the flow run page: name, state, graph and logs
        goto(page, base, wait_text=run_name)
        text = page_text(page)
        checks.expect("flow run page shows name and state", run_name in text and
                      "Completed" in text, run_name)
        checks.expect("flow run page shows the iteration log lines",
                      all(f"iteration {i}" in text for i in finished[:2]),
                      "log lines 'iteration 0/1 ...' visible")
        shots["flow_run"] = str(screenshot(page, img_dir / "ui_flow_run.png"))

        # 2. task runs tab: every step of every iteration
        last = f"checkpoint-{finished[-1]}" if finished else "initialise"
        open_tab(page, "Task Runs", "Search by run name")
        page.get_by_text(last, exact=True).first.wait_for(state="visible", timeout=30_000)
        text = page_text(page)
        missing = [t for t in expected_tasks if not re.search(rf"(?m)^{re.escape(t)}$", text)]
        checks.expect("task runs tab lists train/evaluate/select/label/checkpoint per iteration",
                      not missing, f"{len(expected_tasks) - len(missing)}/{len(expected_tasks)} "
                      f"visible; missing {missing[:10]}")
        scroll_to_tabs(page, "Task Runs")
        shots["task_runs"] = str(screenshot(page, img_dir / "ui_task_runs.png"))

        # 3. artifacts tab of the run: the three keys
        open_tab(page, "Artifacts", keys["summary"])
        text = page_text(page)
        for what, key in keys.items():
            checks.expect(f"artifacts tab shows the {what} artifact", key in text, key)
        order = [k for k in re.findall(rf"{re.escape(slug)}-(?:summary|metrics|progress)", text)]
        checks.expect("artifacts tab: one card per artifact, in the order summary, metrics, "
                      "progress", order == [keys["summary"], keys["metrics"], keys["progress"]],
                      str(order))
        scroll_to_tabs(page, "Artifacts")
        shots["artifacts"] = str(screenshot(page, img_dir / "ui_artifacts.png"))

        # 4. the latest summary (markdown): numbers and learning curve rendered
        art = _latest_artifact(server, keys["summary"])
        if checks.expect("summary artifact exists (API)", art is not None, keys["summary"]):
            goto(page, f"{server.ui_url}/artifacts/artifact/{art['id']}", wait_text="Learning curve")
            text = page_text(page)
            checks.expect("summary shows best RMSE and labels spent",
                          re.search(r"Best (test|training) RMSE", text) is not None
                          and "Labels spent" in text)
            rows_ok = [i for i, n in facts["labels"].items()
                       if re.search(rf"(?m)^{i}\t{n}\t", text)]
            checks.expect("summary learning-curve table has a row per iteration (labels match "
                          "the store)", len(rows_ok) == len(finished),
                          f"{len(rows_ok)}/{len(finished)} rows")
            broken = page.evaluate("() => [...document.images].filter(i => i.complete && "
                                   "i.naturalWidth === 0).map(i => i.src.slice(0, 60))")
            checks.expect("summary has no broken image", not broken, str(broken))
            curve = page.evaluate("() => [...document.images].filter(i => i.src.startsWith("
                                  "'data:image/svg') && i.naturalWidth > 0 && "
                                  "i.getBoundingClientRect().height > 50).length")
            checks.expect("summary shows the learning curve as an image (data URI, rendered)",
                          curve == 1, f"{curve} rendered curve image(s)")
            for what in ("Labels per hour", "Simulator time per label", "Last label",
                         "ETA to the budget"):
                m = re.search(rf"{what}\t([^\n]+)", text)
                checks.expect(f"summary shows '{what}'", m is not None and m.group(1).strip() != "",
                              m.group(1)[:80] if m else "missing")
            m = re.search(r"Deadline\t([^\n]+)", text)
            checks.expect("summary shows the resolved deadline with date, time and zone",
                          m is not None and re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d \S+", m.group(1))
                          is not None, m.group(1)[:90] if m else "missing")
            if facts["failed"]:
                checks.expect("summary shows failures by reason",
                              "Failures by reason" in text and "solver diverged" in text,
                              f"{facts['failed']} failed in the store")
            if facts.get("dashboard"):
                checks.expect("summary links the Dask dashboard", "Dask dashboard" in text
                              and "/status" in text, "")
            shots["summary"] = str(screenshot(page, img_dir / "ui_summary.png", full_page=True))

        # 5. the latest metrics table: one row per finished iteration
        art = _latest_artifact(server, keys["metrics"])
        if checks.expect("metrics artifact exists (API)", art is not None, keys["metrics"]):
            goto(page, f"{server.ui_url}/artifacts/artifact/{art['id']}", wait_text="iteration")
            text = page_text(page)
            checks.expect("metrics table shows one row per iteration",
                          f"{len(finished)} Items" in text, f"expected '{len(finished)} Items'")
            cut = page.evaluate("() => [...document.querySelectorAll('table')].map(t => {"
                                "const r = t.getBoundingClientRect(); const p = t.parentElement"
                                ".getBoundingClientRect(); return Math.round(Math.max(r.right - "
                                "p.right, r.right - window.innerWidth))})")
            checks.expect("metrics table fits the page (no column cut off)",
                          bool(cut) and max(cut) <= 1, f"overflow px {cut}")
            shots["metrics"] = str(screenshot(page, img_dir / "ui_metrics.png"))

        # 6. the progress artifact: labels spent as in the store
        art = _latest_artifact(server, keys["progress"])
        if checks.expect("progress artifact exists (API)", art is not None, keys["progress"]):
            goto(page, f"{server.ui_url}/artifacts/artifact/{art['id']}", wait_text="Progress")
            text = page_text(page)
            spent = facts["labelled"] + facts["failed"]
            checks.expect("progress shows labels spent", f"{spent} of" in text and
                          re.search(r"Progress: \d+(\.\d+)?%", text) is not None,
                          f"expected '{spent} of ... labels spent' and 'Progress: N%'")
            shots["progress"] = str(screenshot(page, img_dir / "ui_progress.png"))
    return {"flow_run": run_name, "flow_run_url": f"{server.ui_url}/runs/flow-run/{run_id}",
            "screenshots": shots, "blocked_requests": sorted(set(blocked)),
            "console_errors": errors[:10], "http_errors": sorted(set(http_errors))[:10],
            "iterations": finished}


def run_check(img_dir: Path = DEFAULT_IMG_DIR, config: Path | None = None,
              empty_only: bool = False) -> dict:
    """The whole check; returns a JSON-able result with ``ok`` and every check's outcome."""
    t0 = time.monotonic()
    checks = Checks()
    result: dict[str, object] = {}
    img_dir = Path(img_dir)
    with PrefectServer() as server, tempfile.TemporaryDirectory(prefix="alflow-ui-") as tmp:
        result["server"] = server.ui_url
        result.update(check_empty_ui(server, img_dir))
        checks.expect("empty UI renders in headless chromium", True)
        result["server_start_s"] = round(time.monotonic() - t0, 1)
        if not empty_only:
            cfg = Path(config).resolve() if config else write_tiny_config(Path(tmp))
            t1 = time.monotonic()
            from alcore.config import load_config

            name = load_config(cfg).campaign.name
            out = run_campaign(server, cfg, while_running=lambda: check_summary_while_running(
                server, name, img_dir, checks))
            result["campaign_s"] = round(time.monotonic() - t1, 1)
            store = _store_path_of(cfg)
            checks.expect("`alflow run` finished and wrote the store", store.exists(), str(store))
            result["campaign_tail"] = out.strip().splitlines()[-3:]
            lines = out.strip().splitlines()
            result["start_up_lines"] = [ln for ln in lines if ln.startswith(("starting campaign", "start-up:"))]
            checks.expect("`alflow run` prints a line per start-up phase",
                          sum(ln.startswith("start-up:") for ln in lines) >= 3,
                          f"{len(result['start_up_lines'])} lines")
            first = next((ln for ln in lines if ln.startswith("starting campaign")), "")
            checks.expect("`alflow run` start line shows the resolved deadline",
                          re.search(r"deadline \d{4}-\d\d-\d\d \d\d:\d\d", first) is not None, first[:160])
            status = subprocess.run([str(VENV_BIN / "alflow"), "status", str(store)], env=server.env,
                                    capture_output=True, text=True, timeout=120).stdout
            result["status"] = status.strip().splitlines()
            csv_path = Path(tmp) / "export.csv"
            subprocess.run([str(VENV_BIN / "alflow"), "export", str(store), "--format", "csv", "-o",
                            str(csv_path)], env=server.env, capture_output=True, text=True, timeout=120)
            import csv

            with open(csv_path, newline="") as fh:
                workers = sorted({row["worker"] for row in csv.DictReader(fh)}) if csv_path.exists() else []
            checks.expect("`alflow export` records worker names, not addresses",
                          bool(workers) and all(re.fullmatch(r"worker-\d+", w) for w in workers), str(workers))
            checks.expect("`alflow status` shows rate, last label, ETA, deadline and failures",
                          all(w in status for w in ("labels per hour", "last label", "eta to the budget",
                                                    "deadline", "by reason")), "")
            t2 = time.monotonic()
            result.update(check_campaign_in_ui(server, store, img_dir, checks))
            result["browser_s"] = round(time.monotonic() - t2, 1)
    result["checks"] = checks.results
    result["ok"] = checks.ok
    result["total_s"] = round(time.monotonic() - t0, 1)
    return result


def _store_path_of(config: Path) -> Path:
    from alcore.config import load_config

    return Path(load_config(config).store_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--img-dir", type=Path, default=DEFAULT_IMG_DIR,
                    help="where screenshots go (default docs/img/)")
    ap.add_argument("--empty-only", action="store_true",
                    help="only start the server and screenshot the empty UI")
    ap.add_argument("--config", type=Path, default=None,
                    help="campaign config to run (default: a tiny config in a temp dir)")
    args = ap.parse_args(argv)
    try:
        result = run_check(args.img_dir, args.config, args.empty_only)
    except UICheckError as err:
        print(json.dumps({"ok": False, "error": str(err)}, indent=2))
        return 1
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
