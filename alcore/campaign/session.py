"""The campaign session: everything the steps work on, opened from the store and handed to them.

Why an explicit session: a step is a function of what it is given (``select(session, i)``), so
a reader sees where every input comes from, and nothing depends on another call having filled a
hidden per-process cache. Data flows one way: the config file goes into the store when the
campaign is created (or, on resume, its mutable keys do); the session's ``config`` and
``seeds`` are read back *from the store*; the steps read the session and write to the store.

:func:`open_campaign` creates the store (new campaign) or opens it and checks the config
(resume); it takes the store's single-writer lock. ``session.close()`` (or ``with``) releases
the lock and shuts down the Dask cluster the session started.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from alcore._util import flatten
from alcore.campaign.errors import CampaignSetupError
from alcore.campaign.pool import TEST_FAILURES_KEY, build_pool_and_test
from alcore.campaign.seeds import Seeds, seeds
from alcore.config import CampaignConfig, Preflight, check_resume, parse_config, preflight

if TYPE_CHECKING:  # the heavy imports stay out of `alflow status` / `validate`
    from alcore.model import DropoutMLP
    from alcore.store import CampaignStore
    from oracles import Dispatcher, Oracle

__all__ = ["CampaignSession", "open_campaign", "start_dispatcher"]

log = logging.getLogger("alcore.campaign")

def start_dispatcher(cfg: CampaignConfig) -> Dispatcher:
    """The Dask dispatcher of a config, started (its cluster lives until it is closed)."""
    from oracles import Dispatcher  # noqa: PLC0415

    from alcore.campaign.hooks import say  # noqa: PLC0415

    d = cfg.dask
    dashboard = getattr(d, "dashboard", False)
    where = (f"the Dask scheduler at {d.address}" if d.address else
             "in this process" if d.workers == 0 else
             f"a local Dask cluster ({d.workers or 'one per core'} worker(s))")
    if d.workers != 0:
        say(f"start-up: connecting to {where} ..." if d.address else f"start-up: starting {where} ...")
    t0 = time.perf_counter()
    disp = Dispatcher(workers=d.workers, address=d.address, retries=d.retries,
                      timeout=d.timeout, dashboard=dashboard).start()
    if d.workers != 0:
        link = disp.dashboard_link if dashboard else None
        say(f"start-up: Dask ready in {time.perf_counter() - t0:.0f} s"
            + (f"; Dask dashboard: {link}" if link else ""))
    return disp


@dataclass
class CampaignSession:
    """One open campaign: the writable store, its config and seeds, the oracle, the dispatcher.

    ``config`` and ``seeds`` are what the store holds. The dispatcher (and its Dask cluster)
    starts on first use, so a session that only trains or evaluates never starts one. The
    model of the newest iteration is kept in memory (``model_for``) so the next step does not
    reload its checkpoint.
    """

    store: CampaignStore
    config: CampaignConfig
    seeds: Seeds
    oracle: Oracle
    created: bool
    deadline: datetime | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)
    label_seconds: list[float] = field(default_factory=list)  # this run's acquisition label steps
    _dispatcher: Dispatcher | None = None
    _model: DropoutMLP | None = None
    _model_iteration: int | None = None

    @property
    def store_path(self) -> Path:
        return Path(self.store.path)

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's URL when ``[dask] dashboard`` asked for one and Dask runs."""
        disp = self._dispatcher
        if disp is None or not getattr(self.config.dask, "dashboard", False):
            return None
        return disp.dashboard_link

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            self._dispatcher = start_dispatcher(self.config)
        return self._dispatcher

    @property
    def workers_now(self) -> int | None:
        """Worker threads of the dispatcher, or None when it has not been started (not started
        by this call: asking must not start a cluster)."""
        return None if self._dispatcher is None else self._dispatcher.n_threads()

    # -- the current model ---------------------------------------------------------------
    def model_for(self, iteration: int) -> DropoutMLP:
        """The model trained in ``iteration`` (in memory, else the store's newest checkpoint)."""
        if self._model is not None and self._model_iteration == iteration:
            return self._model
        latest = self.store.latest_checkpoint()
        if latest is None:
            raise CampaignSetupError(
                f"{self.store_path}: no model checkpoint to work with (iteration {iteration})")
        from alcore.model import DropoutMLP  # noqa: PLC0415

        it, state = latest
        self.remember_model(DropoutMLP.from_state(state), int(it))
        return self._model  # type: ignore[return-value]

    def latest_model(self) -> DropoutMLP | None:
        """The model in memory, else the newest checkpoint's, else None (for warm starts)."""
        if self._model is not None:
            return self._model
        latest = self.store.latest_checkpoint()
        if latest is None:
            return None
        return self.model_for(int(latest[0]))

    def remember_model(self, model: DropoutMLP, iteration: int) -> None:
        self._model, self._model_iteration = model, int(iteration)

    # -- stopping ----------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask this session's campaign to stop at the next step boundary (thread-safe)."""
        self.stop_event.set()

    def halted(self) -> bool:
        """A stop was requested: in this process, or through the store's stop file."""
        return self.stop_event.is_set() or self.store.stop_requested()

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Shut down the dispatcher this session started and release the store's lock."""
        disp, self._dispatcher = self._dispatcher, None
        if disp is not None:
            try:
                disp.close()
            except Exception as exc:  # noqa: BLE001 - shutdown must not mask the real outcome
                log.warning("closing the Dask dispatcher: %s", exc)
        try:
            self.store.close()
        except Exception as exc:  # noqa: BLE001
            log.warning("closing the store: %s", exc)

    def __enter__(self) -> CampaignSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_campaign(cfg: CampaignConfig, *, now: datetime | None = None,
                  checked: Preflight | None = None) -> CampaignSession:
    """Create the campaign's store (new campaign) or open it and check the config (resume).

    Runs :func:`~alcore.config.preflight` first (unless ``checked`` is its result for this
    config), so a config that cannot run fails here, before any simulator call and before any
    file is created. Takes the store's single-writer lock. On resume, keys outside
    ``alcore.config.MUTABLE_KEYS`` must match the stored config (``ConfigMismatchError`` names
    the differing keys); changed mutable keys (budget, dask, training knobs) are recorded in the
    store first, so the session's config is the store's. ``now`` fixes the moment the deadline
    resolves against.
    """
    checked = checked if checked is not None else preflight(cfg, now=now)
    path = Path(cfg.store_path)
    if path.exists():
        return _resume(cfg, path, checked)
    return _create(cfg, path, checked)


def _resume(cfg: CampaignConfig, path: Path, checked: Preflight) -> CampaignSession:
    from alcore.store import CampaignStore  # noqa: PLC0415

    store = CampaignStore.open(path, mode="a")
    try:
        check_resume(store.config, cfg.to_dict(), source=str(path))
        if flatten(store.config) != flatten(cfg.to_dict()):
            store.update_config(cfg.to_dict())
        stored = parse_config(store.config, source=f"{path} (stored config)")
        session = CampaignSession(store=store, config=stored,
                                  seeds=Seeds.from_store(store.seeds, stored.campaign.seed),
                                  oracle=checked.oracle, created=False, deadline=checked.deadline)
        if store.stop_requested():
            store.clear_stop()  # the user reran the command: that is the resume
    except BaseException:
        store.close()
        raise
    return session


def _create(cfg: CampaignConfig, path: Path, checked: Preflight) -> CampaignSession:
    from alcore.store import CampaignStore  # noqa: PLC0415

    oracle = checked.oracle
    campaign_seeds = seeds(cfg.campaign.seed)
    dispatcher: Dispatcher | None = None

    def get_dispatcher() -> Dispatcher:
        nonlocal dispatcher
        if dispatcher is None:
            dispatcher = start_dispatcher(cfg)
        return dispatcher

    try:
        test_failures: dict = {}
        pool_X, test_X, test_y = build_pool_and_test(cfg, checked, campaign_seeds, get_dispatcher,
                                                     test_failures)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = oracle.info() | ({TEST_FAILURES_KEY: test_failures} if test_failures.get("failed") else {})
        store = CampaignStore.create(path, config=cfg.to_dict(), oracle_info=info,
                                     pool_X=pool_X, test_X=test_X, test_y=test_y,
                                     seeds=campaign_seeds.to_dict())
    except BaseException:
        if dispatcher is not None:
            dispatcher.close()
        raise
    stored = parse_config(store.config, source=f"{path} (stored config)")
    return CampaignSession(store=store, config=stored,
                           seeds=Seeds.from_store(store.seeds, stored.campaign.seed),
                           oracle=oracle, created=True, deadline=checked.deadline,
                           _dispatcher=dispatcher)
