"""The per-store runtime cache of this process: the open store, oracle, Dask dispatcher, model.

Why a cache: the steps are plain functions on a store path, but re-opening the store and
restarting the Dask cluster for every step would cost more than the step. The cache is keyed
by the resolved store path; :func:`close` releases the store's writer lock and the cluster.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from alcore.campaign.errors import CampaignSetupError
from alcore.config import CampaignConfig

__all__ = ["resolve_oracle", "close"]

log = logging.getLogger("alcore.campaign")


@dataclass
class _Runtime:
    path: Path
    config: CampaignConfig
    store: Any  # alcore.store.CampaignStore, opened for writing
    created: bool
    deadline: datetime | None
    oracle: Any = None
    dispatcher: Any = None
    model: Any = None
    model_iteration: int | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    label_seconds: list[float] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)


_runtimes: dict[str, _Runtime] = {}
_runtimes_lock = threading.Lock()


def _key(store_path: str | os.PathLike) -> str:
    return str(Path(store_path).expanduser().resolve())


def _rt(store_path: str | os.PathLike) -> _Runtime:
    try:
        return _runtimes[_key(store_path)]
    except KeyError:
        raise CampaignSetupError(
            f"{store_path}: campaign not open in this process (call open_campaign first)"
        ) from None


def _get_oracle(rt: _Runtime) -> Any:
    if rt.oracle is None:
        rt.oracle = resolve_oracle(rt.config)
    return rt.oracle


def resolve_oracle(cfg: CampaignConfig) -> Any:
    """Build the oracle of a config (user errors become ``CampaignSetupError``)."""
    import oracles  # noqa: PLC0415  (keeps `alflow validate`/status light)

    params = dict(cfg.oracle.params)
    if cfg.oracle.bounds is not None:
        params["bounds"] = cfg.oracle.bounds
    try:
        return oracles.resolve(cfg.oracle.name, **params)
    except Exception as exc:  # noqa: BLE001 - user code/config (even a SyntaxError in a file.py)
        text = str(exc).strip()
        msg = text.splitlines()[0] if text else ""
        kind = type(exc).__name__
        raise CampaignSetupError(
            f"oracle '{cfg.oracle.name}': {msg if kind in ('ValueError', 'OracleNotFound') else f'{kind}: {msg}'}"
        ) from None


def _get_dispatcher(rt: _Runtime) -> Any:
    """The Dask dispatcher, created once per process and kept alive across iterations."""
    if rt.dispatcher is None:
        from oracles import Dispatcher  # noqa: PLC0415

        d = rt.config.dask
        disp = Dispatcher(workers=d.workers, address=d.address, retries=d.retries, timeout=d.timeout)
        enter = getattr(disp, "__enter__", None)
        rt.dispatcher = enter() if enter is not None else disp
        if rt.dispatcher is None:
            rt.dispatcher = disp
    return rt.dispatcher


def _halted(rt: _Runtime) -> bool:
    """A stop was requested (in this process, or through the store's stop file)."""
    return rt.stop_event.is_set() or rt.store.stop_requested()


def _shutdown(rt: _Runtime) -> None:
    disp, rt.dispatcher = rt.dispatcher, None
    if disp is not None:
        try:
            exit_ = getattr(disp, "__exit__", None)
            if exit_ is not None:
                exit_(None, None, None)
            elif hasattr(disp, "close"):
                disp.close()
        except Exception as exc:  # noqa: BLE001 - shutdown must not mask the real outcome
            log.warning("closing the Dask dispatcher: %s", exc)
    if rt.store is not None:
        try:
            rt.store.close()
        except Exception as exc:  # noqa: BLE001
            log.warning("closing the store: %s", exc)


def close(store_path: str | os.PathLike) -> None:
    """Close the store (releasing the writer lock) and the Dask cluster of this process."""
    with _runtimes_lock:
        rt = _runtimes.pop(_key(store_path), None)
    if rt is not None:
        _shutdown(rt)
