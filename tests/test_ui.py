"""Browser check of the Prefect UI (opt-in: ``pytest -m ui``; needs Debian's chromium).

Runs scripts/ui_check.py end to end: a real ``prefect server start`` on 127.0.0.1, a tiny
campaign (an oracle failing in a corner, a deadline, the Dask dashboard) through ``alflow run``,
headless Chromium through Playwright. About 1.5-2.5
minutes on 2 busy cores. Screenshots go to a temporary folder (docs/img is only rewritten when
the script is run by hand).
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ui, pytest.mark.timeout(600)]

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ui_check.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_ui_check():
    spec = importlib.util.spec_from_file_location("ui_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ui_check"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ui_check():
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed: pip install -e '.[ui]'")
    if not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no system chromium: apt-get install -y chromium")
    return _load_ui_check()


def test_prefect_server_starts_and_stops_on_loopback(ui_check) -> None:
    server = ui_check.PrefectServer().start()
    try:
        assert server.api_url.startswith("http://127.0.0.1:")
        assert ui_check.api_get(server, "/health") is True
        home = server.home
        assert home is not None and home.is_dir()
        pgid = server.proc.pid
    finally:
        server.stop()
    assert not home.exists()  # the temporary PREFECT_HOME is removed
    with pytest.raises(ProcessLookupError):
        import os
        os.killpg(pgid, 0)  # the whole process group is gone


def test_campaign_is_visible_in_the_prefect_ui(ui_check, tmp_path: Path) -> None:
    result = ui_check.run_check(img_dir=tmp_path)
    failed = [c for c in result["checks"] if not c["ok"]]
    assert result["ok"], failed
    names = {c["check"] for c in result["checks"]}
    for must in ("task runs tab lists train/evaluate/select/label/checkpoint per iteration",
                 "summary learning-curve table has a row per iteration (labels match the store)",
                 "metrics table shows one row per iteration", "progress shows labels spent",
                 "summary has no broken image",
                 "summary shows the learning curve as an image (data URI, rendered)",
                 "summary shows the resolved deadline with date, time and zone",
                 "summary shows failures by reason",
                 "while running: summary shows the ETA to the budget as a time",
                 "artifacts tab: one card per artifact, in the order summary, metrics, progress",
                 "metrics table fits the page (no column cut off)"):
        assert must in names
    for name in ("empty", "flow_run", "task_runs", "artifacts", "summary", "summary_running",
                 "metrics", "progress"):
        png = tmp_path / f"ui_{name}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000, name
