"""The single-writer lock: live holders refuse, stale locks are taken over exactly once."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from alcore.store import CampaignStore, StoreInUseError
from alcore.store.lock import process_start_time

from store_helpers import make_store

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _write_lock(path, **info) -> None:
    lock = path.with_name(path.name + ".lock")
    lock.write_text(json.dumps(info))


def test_second_writer_in_another_process_is_refused_with_pid_and_host(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p):
        code = textwrap.dedent(f"""
            from alcore.store import CampaignStore, StoreInUseError
            try:
                CampaignStore.open({str(p)!r}, "a")
            except StoreInUseError as e:
                print("INUSE", e)
            """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=ROOT, timeout=60).stdout
        assert out.startswith("INUSE")
        assert f"in use by pid {os.getpid()} on host {socket.gethostname()}" in out
        with CampaignStore.open(p, "r") as r:  # readers are never blocked
            assert r.n_pool == 40
    CampaignStore.open(p, "a").close()  # released on close


def test_second_writer_in_same_process_is_refused(tmp_path):
    p = tmp_path / "c.h5"
    with make_store(p):
        with pytest.raises(StoreInUseError, match=f"pid {os.getpid()}"):
            CampaignStore.open(p, "a")


def test_stale_lock_of_dead_process_is_taken_over(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    dead = _dead_pid()
    _write_lock(p, pid=dead, host=socket.gethostname(), start_time=1, created=0)
    with CampaignStore.open(p, "a") as w:
        assert w._lock.took_over["pid"] == dead
        assert json.loads(p.with_name("c.h5.lock").read_text())["pid"] == os.getpid()
    assert not p.with_name("c.h5.lock").exists()


@pytest.mark.skipif(process_start_time(os.getpid()) is None, reason="needs /proc")
def test_reused_pid_is_detected_by_start_time(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    # A live pid (our parent) but with a start time that is not its own: the pid was reused.
    ppid = os.getppid()
    _write_lock(p, pid=ppid, host=socket.gethostname(),
                start_time=process_start_time(ppid) + 12345, created=0)
    with CampaignStore.open(p, "a") as w:
        assert w._lock.took_over["pid"] == ppid


def test_lock_of_live_process_with_matching_start_time_is_respected(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    ppid = os.getppid()
    _write_lock(p, pid=ppid, host=socket.gethostname(), start_time=process_start_time(ppid),
                created=0)
    with pytest.raises(StoreInUseError, match=f"pid {ppid}"):
        CampaignStore.open(p, "a")


def test_lock_from_another_host_is_never_taken_over(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    _write_lock(p, pid=1, host="some-other-node", start_time=1, created=0)
    with pytest.raises(StoreInUseError, match="pid 1 on host some-other-node"):
        CampaignStore.open(p, "a")


def test_racing_takeover_of_a_stale_lock_has_one_winner(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    _write_lock(p, pid=_dead_pid(), host=socket.gethostname(), start_time=1, created=0)
    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, time
        from alcore.store import CampaignStore, StoreInUseError
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        try:
            s = CampaignStore.open({str(p)!r}, "a")
        except StoreInUseError:
            print("INUSE", flush=True)
        else:
            print("WON", flush=True)
            time.sleep(1.5)
            s.close()
        """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT) for _ in range(4)]
    time.sleep(1.5)  # let every racer finish importing and wait on the start signal
    go.touch()
    outs = [pr.communicate(timeout=60)[0].strip() for pr in procs]
    assert sorted(outs) == ["INUSE", "INUSE", "INUSE", "WON"], outs


def test_empty_lock_file_is_stale_only_after_grace(tmp_path, monkeypatch):
    from alcore.store import lock as lock_mod

    p = tmp_path / "c.h5"
    make_store(p).close()
    lockf = p.with_name("c.h5.lock")
    lockf.write_text("")
    with pytest.raises(StoreInUseError, match="unknown process"):
        CampaignStore.open(p, "a")
    monkeypatch.setattr(lock_mod, "PARTIAL_LOCK_GRACE_S", 0.0)
    time.sleep(0.01)
    CampaignStore.open(p, "a").close()


def test_lock_released_at_interpreter_exit_without_close(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    code = textwrap.dedent(f"""
        from alcore.store import CampaignStore
        s = CampaignStore.open({str(p)!r}, "a")
        s.mark_requested([0], 0)
        s.record_label(0, [1.0, 2.0])
        # no close(): the atexit hook must release the lock; the label is in the journal
        """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
    assert not p.with_name("c.h5.lock").exists()
    with CampaignStore.open(p, "a") as w:
        assert w._lock.took_over is None and w.n_labelled == 1


def test_garbage_lock_file_is_not_called_empty(tmp_path):
    p = tmp_path / "c.h5"
    make_store(p).close()
    p.with_name("c.h5.lock").write_bytes(b"\x00\x17not json at all{")
    with pytest.raises(StoreInUseError) as ei:
        CampaignStore.open(p, "a")
    msg = str(ei.value)
    assert "empty" not in msg and "not a lock record" in msg and "c.h5.lock" in msg
