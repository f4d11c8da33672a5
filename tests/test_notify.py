"""Issue 13 "being told in the morning": ``alflow notify`` sets up Prefect automations that call
a webhook when a campaign's flow run ends and when no new label arrived for N minutes."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

import pytest

from campaign_helpers import counting_config, write_toml
from flows.events import FINISHED, LABEL, campaign_resource_id
from flows.notify import Notification, build_automations


def _server_trigger(automation):
    """The server's own model of a trigger: its ``covers`` is what decides on real events."""
    from prefect.server.events.schemas.automations import EventTrigger

    return EventTrigger.model_validate(automation.trigger.model_dump())


def _event(name: str, resource: dict[str, str]):
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.types._datetime import now

    return ReceivedEvent(occurred=now("UTC"), event=name, resource=resource, id=uuid4())


def test_the_automations_match_this_campaigns_runs_and_labels_only() -> None:
    n = Notification(campaign="Heat 2D", webhook_url="http://127.0.0.1:9/hook", stale_minutes=30)
    ended, stalled = build_automations(n, uuid4())
    assert ended.name == "alflow heat-2d: run ended" and stalled.name == "alflow heat-2d: no new label"
    t = _server_trigger(ended)
    run = {"prefect.resource.id": f"prefect.flow-run.{uuid4()}", "prefect.resource.name": "Heat 2D it 3-10"}
    other = dict(run, **{"prefect.resource.name": "other it 0-10"})
    for state in ("Completed", "Failed", "Crashed"):
        assert t.covers(_event(f"prefect.flow-run.{state}", run))
    assert not t.covers(_event("prefect.flow-run.Running", run))
    assert not t.covers(_event("prefect.flow-run.Completed", other))
    assert ended.actions[0].type == "call-webhook"
    assert t.posture == "Reactive"

    s = _server_trigger(stalled)
    mine = {"prefect.resource.id": campaign_resource_id("Heat 2D"), "prefect.resource.name": "Heat 2D"}
    theirs = {"prefect.resource.id": campaign_resource_id("other"), "prefect.resource.name": "other"}
    assert s.posture == "Proactive" and s.within == timedelta(minutes=30) and s.threshold == 1
    assert s.covers(_event(LABEL, mine)) and s.covers(_event(FINISHED, mine))
    assert not s.covers(_event(LABEL, theirs))
    assert s.starts_after(LABEL) and not s.starts_after(FINISHED)  # a finished run stops the watch
    assert "30 minutes" in stalled.actions[0].payload


def test_notify_refuses_bad_arguments_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    from flows.cli import main

    cfg = write_toml(tmp_path / "c.toml", counting_config(tmp_path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["notify", str(cfg), "--webhook", "ftp://x"]) == 2
    assert "--webhook" in capsys.readouterr().err
    assert main(["notify", str(cfg), "--webhook", "http://127.0.0.1:9/h", "--stale-minutes", "0.1"]) == 2
    assert "--stale-minutes" in capsys.readouterr().err
    assert main(["notify", str(cfg), "--webhook", "http://127.0.0.1:9/h"]) == 2
    assert "PREFECT_API_URL" in capsys.readouterr().err
    assert main(["notify", str(tmp_path / "missing.h5"), "--webhook", "http://127.0.0.1:9/h"]) == 2
    assert "not found" in capsys.readouterr().err


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.received.append(json.loads(body))
        except ValueError:
            self.received.append({"raw": body.decode("utf-8", "replace")})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


def _wait_for(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_webhook_is_called_when_a_run_completes_and_when_labels_stop(tmp_path: Path, prefect_api,
                                                                      monkeypatch) -> None:
    """A real server evaluates the automations; a local HTTP endpoint receives the calls."""
    from flows.campaign import campaign_flow
    from flows.cli import main
    from flows.events import emit

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    try:
        monkeypatch.setenv("PREFECT_API_URL", prefect_api.api_url)
        monkeypatch.setenv("ALFLOW_TEST_CALLS", str(tmp_path / "calls.log"))
        cfg = write_toml(tmp_path / "c.toml", counting_config(tmp_path, campaign={"name": "notify-me"}))
        # a long stale window while the real run goes (its training may pause labels > 15 s)
        assert main(["notify", str(cfg), "--webhook", url, "--stale-minutes", "10"]) == 0
        state = campaign_flow(str(cfg), return_state=True)
        assert state.is_completed()
        assert _wait_for(lambda: any(r.get("kind") == "run ended" for r in _Hook.received), 60), _Hook.received
        ended = next(r for r in _Hook.received if r.get("kind") == "run ended")
        assert ended["event"] == "prefect.flow-run.Completed"
        assert ended["resource"] == "notify-me it 0-2" and ended["campaign"] == "notify-me"

        # rerunning replaces the automations (a 15 s window now)
        assert main(["notify", str(cfg), "--webhook", url, "--stale-minutes", "0.25"]) == 0
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            names = [a.name for a in client.read_automations()]
        assert names.count("alflow notify-me: run ended") == 1, names
        assert names.count("alflow notify-me: no new label") == 1, names

        # A label, then the run finishes: no alarm. (The events the flow emits, sent by hand.)
        emit(LABEL, "notify-me", {"labelled": 1})
        emit(FINISHED, "notify-me", {"state": "complete"})
        time.sleep(30)
        assert not any(r.get("kind", "").startswith("no new label") for r in _Hook.received), _Hook.received

        # A label, then silence (a hung simulator): the proactive trigger fires.
        emit(LABEL, "notify-me", {"labelled": 1})
        assert _wait_for(lambda: any(r.get("kind", "").startswith("no new label") for r in _Hook.received),
                         90), _Hook.received
        stale = next(r for r in _Hook.received if r.get("kind", "").startswith("no new label"))
        assert stale["kind"] == "no new label for 0.25 minutes" and stale["campaign"] == "notify-me"
    finally:
        httpd.shutdown()
