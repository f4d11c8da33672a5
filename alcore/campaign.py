"""The campaign steps as plain functions on a store path (no Prefect here).

Every step reads what it needs from the campaign store and writes what it made back, so the
store is the only state that matters: a process killed at any moment resumes from it. The flow
(``flows/``) wraps each step in a Prefect task; benchmarks and tests call them directly. Tasks
pass the store path and small JSON summaries, never arrays.

One iteration ``i`` is::

    select(i) -> label(i) -> train(i) -> evaluate(i) -> checkpoint(i)

Iteration 0's selection is the random initial design; iteration ``i >= 1`` selects a batch with
the model of iteration ``i - 1``. So iteration ``i``'s record in the store holds the batch it
chose, and the metrics of the model trained on every label up to and including that batch: one
point of the learning curve per iteration. ``budget.iterations = N`` gives ``N`` acquisition
batches after the initial design (iterations 0..N).

Resume rules (what the store allows us to know after a ``kill -9``):

* an iteration is *finished* once ``checkpoint`` recorded its metrics; finished iterations are
  never redone;
* an unfinished iteration that already selected its batch does not select again: its
  requested-but-unlabelled points are sent again (labelled points never are);
* ``train`` saves the model checkpoint as soon as it is fitted, so a kill between training and
  ``checkpoint`` does not retrain.

Within one process the open store, the oracle, the Dask dispatcher and the current model are
kept in a small per-store-path runtime cache (:func:`open_campaign` / :func:`close`), so the
steps cost no re-opening and the Dask cluster stays alive across iterations.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from alcore.config import CampaignConfig, next_deadline

log = logging.getLogger("alcore.campaign")

__all__ = [
    "CampaignSetupError",
    "Hooks",
    "Steps",
    "open_campaign",
    "initialise",
    "plan",
    "select",
    "label",
    "train",
    "evaluate",
    "checkpoint",
    "should_stop",
    "request_stop",
    "close",
    "run",
    "drive",
    "status",
    "history",
    "MUTABLE_KEYS",
]

# Config keys that may change when a campaign is resumed: how long and where it runs, and
# training knobs that do not change the architecture. Everything else (oracle, pool, test set,
# seed, architecture, strategy) defines *what* the campaign is; changing it on resume would mix
# two campaigns in one store, so the store refuses (ConfigMismatchError).
MUTABLE_KEYS = (
    "budget",
    "dask",
    "campaign.name",
    "campaign.store",
    "campaign.report_dir",
    "model.device",
    "model.epochs",
    "model.min_steps",
    "model.patience",
    "model.early_stopping",
    "model.val_fraction",
    "model.lr",
    "model.lr_schedule",
    "model.weight_decay",
    "model.batch_size",
    "acquisition.batch_size",
    "acquisition.samples",
)


class CampaignSetupError(ValueError):
    """The campaign cannot start: a user-fixable problem (one line, names the culprit)."""


# --------------------------------------------------------------------------------- hooks
class Hooks:
    """Progress callbacks for a front end (the CLI's Rich bars). Every method is a no-op here.

    Why a plain object rather than Prefect events: the steps must report progress when called
    without Prefect (benchmarks, tests), and the CLI runs the flow in its own process.
    """

    def phase(self, name: str, iteration: int, total: int | None = None) -> None:
        """A step started; ``total`` is the number of work units when known."""

    def train_epoch(self, epoch: int, n_epochs: int, train_loss: float, val_loss: float | None) -> None:
        """One training epoch finished."""

    def label_result(self, ok: bool) -> None:
        """One oracle evaluation came back (stored) or failed."""

    def phase_done(self, name: str, iteration: int, summary: dict[str, Any]) -> None:
        """A step ended with this summary."""

    def iteration_done(self, record: dict[str, Any]) -> None:
        """An iteration was checkpointed (``record``: iteration, metrics, timings, labels)."""

    def message(self, text: str) -> None:
        """A line worth showing to a person (stop reasons, resume notes)."""


_hooks: Hooks = Hooks()


def set_hooks(hooks: Hooks | None) -> Hooks:
    """Install progress hooks for this process; returns the previous ones."""
    global _hooks
    old = _hooks
    _hooks = hooks or Hooks()
    return old


def get_hooks() -> Hooks:
    return _hooks


def _say(text: str) -> None:
    log.info(text)
    _hooks.message(text)


# ------------------------------------------------------------------------------ runtime
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


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


# ------------------------------------------------------------------------- initialise
def _load_array_file(path: Path, what: str) -> np.ndarray:
    if not path.exists():
        raise CampaignSetupError(f"{what}: file not found: {path}")
    try:
        if path.suffix == ".npy":
            arr = np.load(path)
        elif path.suffix == ".npz":
            with np.load(path) as z:
                arr = z["X"] if "X" in z else z[z.files[0]]
        else:
            delim = "," if path.suffix == ".csv" else None
            arr = np.loadtxt(path, delimiter=delim, ndmin=2)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise CampaignSetupError(f"{what}: cannot read {path}: {exc}") from None
    return np.atleast_2d(np.asarray(arr, dtype=float))


def _load_test_file(path: Path, d: int) -> tuple[np.ndarray, np.ndarray]:
    """A test set file: .npz with X and y, or a table whose first d columns are inputs."""
    if path.suffix == ".npz" and path.exists():
        with np.load(path) as z:
            if "X" not in z or "y" not in z:
                raise CampaignSetupError(f"test.file: {path} must hold arrays 'X' and 'y'")
            X, y = np.asarray(z["X"], float), np.asarray(z["y"], float)
        return np.atleast_2d(X), y.reshape(len(X), -1)
    arr = _load_array_file(path, "test.file")
    if arr.shape[1] <= d:
        raise CampaignSetupError(
            f"test.file: {path} has {arr.shape[1]} columns; need {d} inputs then the outputs"
        )
    return arr[:, :d], arr[:, d:]


def _label_directly(rt: _Runtime, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label a test set through the dispatcher (simulators), dropping failed points."""
    oracle = _get_oracle(rt)
    disp = _get_dispatcher(rt)
    ys: dict[int, np.ndarray] = {}
    for r in disp.evaluate(oracle, X, np.arange(len(X))):
        if r.ok:
            ys[int(r.index)] = np.asarray(r.y, float).reshape(-1)
    keep = np.array(sorted(ys), dtype=int)
    if keep.size < len(X):
        _say(f"test set: {len(X) - keep.size} of {len(X)} points failed and were dropped")
    if keep.size == 0:
        return X[:0], np.zeros((0, oracle.output_dim))
    return X[keep], np.stack([ys[i] for i in keep])


def _build_pool_and_test(rt: _Runtime) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    cfg = rt.config
    oracle = _get_oracle(rt)
    seed = cfg.campaign.seed
    d = int(oracle.input_dim)
    fixed = oracle.fixed_points()
    test_X = test_y = None
    if fixed is not None:
        # Pool-based oracle (a table): pool and test set are a seeded split of its points.
        fixed = np.asarray(fixed, dtype=float)
        n = len(fixed)
        perm = np.random.default_rng(seed).permutation(n)
        n_test = cfg.test.size
        if cfg.test.file is not None:
            test_X, test_y = _load_test_file(Path(cfg.test.file), d)
            n_test = 0
        if n_test >= n:
            raise CampaignSetupError(f"test.size ({n_test}) must be smaller than the table ({n} rows)")
        rest = perm[n_test:]
        if cfg.pool.size is not None:
            if cfg.pool.size > rest.size:
                raise CampaignSetupError(
                    f"pool.size ({cfg.pool.size}) exceeds the {rest.size} table rows left after "
                    f"the test split"
                )
            rest = rest[: cfg.pool.size]
        pool_X = fixed[rest]
        if n_test:
            test_X = fixed[perm[:n_test]]
            test_y = np.asarray(oracle.evaluate_batch(test_X), dtype=float).reshape(n_test, -1)
        return pool_X, test_X, test_y
    if cfg.pool.file is not None:
        pool_X = _load_array_file(Path(cfg.pool.file), "pool.file")
        if pool_X.shape[1] != d:
            raise CampaignSetupError(
                f"pool.file: {cfg.pool.file} has {pool_X.shape[1]} columns, oracle "
                f"'{oracle.name}' takes {d} inputs"
            )
    else:
        if cfg.pool.size is None:
            raise CampaignSetupError(
                f"pool.size: required for oracle '{oracle.name}' (it has no fixed points)"
            )
        from alcore.design import make_design  # noqa: PLC0415

        pool_X = np.asarray(make_design(cfg.pool.design, cfg.pool.size, oracle.bounds, seed))
    if cfg.test.file is not None:
        test_X, test_y = _load_test_file(Path(cfg.test.file), d)
    elif cfg.test.size:
        from alcore.design import make_design  # noqa: PLC0415

        X = np.asarray(make_design("random", cfg.test.size, oracle.bounds, seed + 7919))
        test_X, test_y = _label_directly(rt, X)
    return pool_X, test_X, test_y


def open_campaign(cfg: CampaignConfig, *, now: datetime | None = None) -> dict[str, Any]:
    """Create the store (new campaign) or open it and check the config (resume).

    Takes the store's single-writer lock for this process. Returns a small summary. Calling it
    again for a store already open in this process only refreshes the config and deadline.
    """
    from alcore.store import CampaignStore  # noqa: PLC0415

    path = Path(cfg.store_path)
    key = _key(path)
    with _runtimes_lock:
        rt = _runtimes.get(key)
        if rt is not None:
            rt.config = cfg
            rt.deadline = next_deadline(cfg.budget.deadline, now)
            rt.stop_event.clear()
            return _summary(rt)
    deadline = next_deadline(cfg.budget.deadline, now)
    if path.exists():
        store = CampaignStore.open(path, mode="a")
        try:
            # Raises ConfigMismatchError naming the keys; a changed budget etc. is recorded.
            store.check_config(cfg.to_dict(), mutable=MUTABLE_KEYS)
            if _flatten(store.config) != _flatten(cfg.to_dict()):
                store.update_config(cfg.to_dict(), mutable=MUTABLE_KEYS)
        except BaseException:
            store.close()
            raise
        rt = _Runtime(path=path, config=cfg, store=store, created=False, deadline=deadline)
        if store.stop_requested():
            store.clear_stop()  # the user reran the command: that is the resume
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        rt = _Runtime(path=path, config=cfg, store=None, created=True, deadline=deadline)
        try:
            pool_X, test_X, test_y = _build_pool_and_test(rt)
        except BaseException:
            _shutdown(rt)
            raise
        if cfg.budget.initial > len(pool_X):
            _shutdown(rt)
            raise CampaignSetupError(
                f"budget.initial ({cfg.budget.initial}) exceeds the pool ({len(pool_X)} points)"
            )
        seeds = {
            "campaign": cfg.campaign.seed,
            "pool": cfg.campaign.seed,
            "test": cfg.campaign.seed + 7919,
            "initial": cfg.campaign.seed + 1,
            "model": cfg.campaign.seed,
            "acquisition": cfg.campaign.seed,
        }
        try:
            rt.store = CampaignStore.create(
                path, config=cfg.to_dict(), oracle_info=_get_oracle(rt).info(), pool_X=pool_X,
                test_X=test_X, test_y=test_y, seeds=seeds,
            )
        except BaseException:
            _shutdown(rt)
            raise
    with _runtimes_lock:
        _runtimes[key] = rt
    return _summary(rt)


initialise = open_campaign


def _summary(rt: _Runtime) -> dict[str, Any]:
    p = plan(rt.path)
    st = rt.store
    return {
        "store": str(rt.path),
        "created": rt.created,
        "name": rt.config.campaign.name,
        "pool": int(len(st.pool_X)),
        "labeled": int(len(st.labelled_indices())),
        "failed": int(len(st.failed_indices())),
        "pending": int(len(st.requested_indices())),
        "next_iteration": p["iteration"],
        "last_iteration": rt.config.budget.iterations,
        "deadline": rt.deadline.isoformat(timespec="minutes") if rt.deadline else None,
    }


# ------------------------------------------------------------------------------- plan
def _iteration_records(store: Any) -> dict[int, dict[str, Any]]:
    """``store.iterations`` as {iteration: record}; ``selected`` becomes a plain list."""
    out: dict[int, dict[str, Any]] = {}
    for r in store.iterations:
        rec = dict(r)
        rec["selected"] = [int(i) for i in np.asarray(rec.get("selected", []), dtype=np.int64)]
        out[int(rec["iteration"])] = rec
    return out


def _finished(records: dict[int, dict[str, Any]]) -> list[int]:
    return sorted(i for i, r in records.items() if r.get("metrics"))


def plan(store_path: str | os.PathLike) -> dict[str, Any]:
    """Where the campaign stands: the next iteration and which of its steps are already done."""
    rt = _rt(store_path)
    st = rt.store
    recs = _iteration_records(st)
    done = _finished(recs)
    it = (done[-1] + 1) if done else 0
    rec = recs.get(it, {})
    ckpts = st.checkpoint_iterations()
    ckpt = ckpts[-1] if ckpts else None
    return {
        "iteration": it,
        "selected": bool(rec.get("selected")),
        "trained": ckpt == it,
        "finished": done,
    }


# ------------------------------------------------------------------------------ steps
def _spent(st: Any) -> int:
    return int(len(st.labelled_indices()) + len(st.failed_indices()))


def select(store_path: str | os.PathLike, iteration: int) -> dict[str, Any]:
    """Choose iteration ``iteration``'s batch and mark it requested (durably) in the store.

    Iteration 0 draws the random initial design. A batch already selected for this iteration
    (a resumed run) is kept as it is. The batch is cut to the label budget that is left.
    """
    rt = _rt(store_path)
    t0 = time.perf_counter()
    _hooks.phase("select", iteration)
    cfg, st = rt.config, rt.store
    with rt.lock:
        recs = _iteration_records(st)
        if recs.get(iteration, {}).get("selected"):
            n = len(recs[iteration]["selected"])
            out = {"iteration": iteration, "selected": n, "resumed": True,
                   "seconds": time.perf_counter() - t0}
            _hooks.phase_done("select", iteration, out)
            return out
        status = np.asarray(st.status)
        unl = np.flatnonzero(status == 0)
        want = cfg.budget.initial if iteration == 0 else cfg.acquisition.batch_size
        if cfg.budget.max_labels is not None:
            want = min(want, cfg.budget.max_labels - _spent(st))
        want = min(want, unl.size)
        if want <= 0:
            out = {"iteration": iteration, "selected": 0, "resumed": False,
                   "seconds": time.perf_counter() - t0}
            _hooks.phase_done("select", iteration, out)
            return out
        strategy = "initial" if iteration == 0 else cfg.acquisition.strategy
        if iteration == 0:
            rng = np.random.default_rng(cfg.campaign.seed + 1)
            picks = rng.choice(unl, size=want, replace=False)
            scores = np.full(want, np.nan)
        else:
            from alcore import strategies  # noqa: PLC0415

            model = _current_model(rt, iteration - 1)
            lab = st.labelled_indices()
            pool_X = np.asarray(st.pool_X)
            ctx = strategies.AcquisitionContext(
                model=model,
                X_train=pool_X[lab],
                X_pool=pool_X[unl],
                batch_size=want,
                n_samples=cfg.acquisition.samples,
                reg=cfg.acquisition.reg,
                seed=cfg.campaign.seed * 100_003 + iteration,
                # No X_target: the held-out test inputs must not steer what gets labelled;
                # nngp_ivr then integrates the variance over the pool.
                X_target=None,
            )
            sel = strategies.select(cfg.acquisition.strategy, ctx, **cfg.acquisition.params)
            local = np.asarray(sel.indices, dtype=int)
            picks = unl[local]
            scores = np.asarray(sel.scores, dtype=float)
        st.mark_requested(np.asarray(picks, dtype=np.int64), iteration, scores)
    out = {"iteration": iteration, "selected": int(len(picks)), "strategy": strategy,
           "resumed": False, "seconds": time.perf_counter() - t0}
    _hooks.phase_done("select", iteration, out)
    return out


def label(store_path: str | os.PathLike, iteration: int) -> dict[str, Any]:
    """Send every requested-but-unlabelled point to the oracle; store each result on arrival.

    Points requested by a killed run are sent again; labelled points never are (the store's
    status is the truth). A stop request (``alflow stop``, a cancelled flow run) ends the
    batch early: every result that arrived is stored, the rest stay requested for the resume.
    A passed deadline does not: a batch is only started when it is expected to finish.
    """
    rt = _rt(store_path)
    st = rt.store
    t0 = time.perf_counter()
    pending = np.asarray(st.requested_indices(), dtype=np.int64)
    _hooks.phase("label", iteration, int(pending.size))
    ok = failed = 0
    stopped = False
    if pending.size:
        oracle = _get_oracle(rt)
        disp = _get_dispatcher(rt)
        X = np.asarray(st.pool_X)[pending]
        for r in disp.evaluate(oracle, X, pending):
            with rt.lock:
                if r.ok:
                    st.record_label(int(r.index), np.asarray(r.y, float), r.wall_time, r.worker)
                    ok += 1
                else:
                    st.record_failure(int(r.index), r.reason or "failed", r.wall_time, r.worker,
                                      int(r.attempts))
                    failed += 1
                    log.warning("point %d failed after %d attempt(s): %s", r.index, r.attempts, r.reason)
            _hooks.label_result(bool(r.ok))
            if _halted(rt):
                stopped = True  # leaving the loop cancels the evaluations still in flight
                break
    seconds = time.perf_counter() - t0
    if pending.size and not stopped:
        rt.label_seconds.append(seconds)
    out = {"iteration": iteration, "sent": int(pending.size), "labeled": ok, "failed": failed,
           "stopped": stopped, "seconds": seconds}
    _hooks.phase_done("label", iteration, out)
    return out


def _new_model(cfg: CampaignConfig, iteration: int) -> Any:
    from alcore.model import DropoutMLP  # noqa: PLC0415

    return DropoutMLP(**cfg.model.model_kwargs(seed=cfg.campaign.seed * 1000 + iteration))


def _current_model(rt: _Runtime, iteration: int) -> Any:
    """The model of ``iteration`` (in memory, else from the store's checkpoint)."""
    if rt.model is not None and rt.model_iteration == iteration:
        return rt.model
    latest = rt.store.latest_checkpoint()
    if latest is None:
        raise CampaignSetupError(f"{rt.path}: no model checkpoint to select with (iteration {iteration})")
    it, state = latest
    from alcore.model import DropoutMLP  # noqa: PLC0415

    rt.model = DropoutMLP.from_state(state)
    rt.model_iteration = int(it)
    return rt.model


def train(store_path: str | os.PathLike, iteration: int) -> dict[str, Any]:
    """Fit the DropoutMLP on every labelled point and save the checkpoint for ``iteration``.

    Warm-starts from the latest checkpoint when ``model.warm_start`` (also across a resume).
    A checkpoint already saved for this iteration (killed before ``checkpoint``) is reused.
    """
    rt = _rt(store_path)
    cfg, st = rt.config, rt.store
    t0 = time.perf_counter()
    lab = np.asarray(st.labelled_indices(), dtype=np.int64)
    if plan(store_path)["trained"]:
        _current_model(rt, iteration)
        out = {"iteration": iteration, "n_train": int(lab.size), "reused": True,
               "seconds": time.perf_counter() - t0}
        _hooks.phase_done("train", iteration, out)
        return out
    if lab.size < 2:
        raise CampaignSetupError(
            f"iteration {iteration}: only {lab.size} labelled point(s) to train on "
            "(did every oracle evaluation fail? see `alflow status`)"
        )
    _hooks.phase("train", iteration, cfg.model.epochs)
    X = np.asarray(st.pool_X)[lab]
    y = np.asarray(st.outputs)[lab]
    model = _new_model(cfg, iteration)
    warm = False
    if cfg.model.warm_start:
        prev = rt.model if rt.model is not None else None
        state = prev.get_state() if prev is not None else None
        if state is None:
            latest = st.latest_checkpoint()
            state = latest[1] if latest is not None else None
        if state is not None:
            model.load_state(state)
            warm = True
    report = model.fit(X, y, warm_start=warm, progress=_hooks.train_epoch)
    st.save_checkpoint(iteration, model.get_state())
    rt.model, rt.model_iteration = model, iteration
    out = {"iteration": iteration, "n_train": int(lab.size), "warm_start": warm, "reused": False,
           "seconds": time.perf_counter() - t0}
    for k in ("epochs_run", "best_epoch", "final_train_loss", "best_val_loss", "stopped_early"):
        v = getattr(report, k, None)
        if isinstance(v, (int, float, bool, np.floating, np.integer)):
            out[k] = v.item() if hasattr(v, "item") else v
    _hooks.phase_done("train", iteration, out)
    return out


def _scalar(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, dict):
        for k in ("mean", "value", "all"):
            if k in v:
                return _scalar(v[k])
        return _scalar(list(v.values()))
    arr = np.asarray(v, dtype=float)
    if arr.size == 0:
        return None
    val = float(arr.mean())
    return val if math.isfinite(val) else None


def evaluate(store_path: str | os.PathLike, iteration: int) -> dict[str, Any]:
    """Test metrics of the current model (training-set metrics when there is no test set).

    Returns a small JSON-safe dict: scalar ``rmse``, ``mae``, ``r2``, ``nll`` (means over
    outputs), per-output lists, label counts, and which set was used.
    """
    rt = _rt(store_path)
    cfg, st = rt.config, rt.store
    t0 = time.perf_counter()
    _hooks.phase("evaluate", iteration)
    model = _current_model(rt, iteration)
    from alcore.metrics import regression_metrics  # noqa: PLC0415

    if st.test_X is not None and len(st.test_X):
        X, y, on = np.asarray(st.test_X), np.asarray(st.test_y), "test"
    else:
        lab = st.labelled_indices()
        X, y, on = np.asarray(st.pool_X)[lab], np.asarray(st.outputs)[lab], "train"
    y = y.reshape(len(X), -1)
    pred = np.asarray(model.predict(X)).reshape(len(X), -1)
    T = min(cfg.acquisition.samples, 50)
    samples = np.asarray(model.sample(X, T, seed=cfg.campaign.seed + iteration)).reshape(len(X), T, -1)
    std = samples.std(axis=1)
    names = list(rt.store.oracle_info.get("output_names") or []) or None
    raw = regression_metrics(y, pred, std, output_names=names)
    metrics: dict[str, Any] = {"on": on, "n_test": int(len(X))}
    for k in ("rmse", "mae", "r2", "nll"):
        if k in raw:
            metrics[k] = _scalar(raw[k])
            per = raw.get(f"{k}_per_output", raw[k] if isinstance(raw[k], (list, tuple)) else None)
            if isinstance(per, dict):
                per = list(per.values())
            if per is not None:
                metrics[f"{k}_per_output"] = [float(x) for x in np.asarray(per, float).reshape(-1)]
    metrics["labeled"] = int(len(st.labelled_indices()))
    metrics["failed"] = int(len(st.failed_indices()))
    metrics["seconds"] = time.perf_counter() - t0
    _hooks.phase_done("evaluate", iteration, metrics)
    return metrics


def checkpoint(store_path: str | os.PathLike, iteration: int, metrics: dict[str, Any],
               timings: dict[str, float]) -> dict[str, Any]:
    """Record the iteration (metrics + step timings) and fold the journal into the HDF5 file.

    From here on the iteration is finished: a resumed run starts with the next one.
    """
    rt = _rt(store_path)
    st = rt.store
    t0 = time.perf_counter()
    clean = {k: v for k, v in metrics.items() if k != "seconds"}
    clean["at"] = datetime.now().isoformat(timespec="seconds")
    with rt.lock:
        st.record_iteration(iteration, clean, dict(timings))
        st.compact()
    out = {"iteration": iteration, "metrics": clean, "timings": dict(timings),
           "labeled": int(len(st.labelled_indices())), "failed": int(len(st.failed_indices())),
           "budget": rt.config.label_budget, "seconds": time.perf_counter() - t0}
    _hooks.iteration_done(out)
    return out


def _halted(rt: _Runtime) -> bool:
    """A stop was requested (in this process, or through the store's stop file)."""
    return rt.stop_event.is_set() or rt.store.stop_requested()


def request_stop(store_path: str | os.PathLike) -> None:
    """Ask a campaign running in this process to stop at the next step boundary."""
    key = _key(store_path)
    rt = _runtimes.get(key)
    if rt is not None:
        rt.stop_event.set()


def _label_estimate(rt: _Runtime) -> float | None:
    """Mean duration of earlier label steps of acquisition batches (this run and stored)."""
    secs = [s for s in rt.label_seconds]
    for i, r in _iteration_records(rt.store).items():
        t = (r.get("timings") or {}).get("label")
        if i >= 1 and isinstance(t, (int, float)) and t > 0:
            secs.append(float(t))
    if not secs:
        return None
    return float(np.mean(secs))


def should_stop(store_path: str | os.PathLike, iteration: int, *,
                now: datetime | None = None, hard_only: bool = False) -> str | None:
    """Why iteration ``iteration`` must not start (``None``: go on).

    Reasons: ``stop requested`` (``alflow stop``, a cancelled flow run), ``deadline`` (reached,
    or the mean label step so far would not finish before it), ``iterations``,
    ``max_labels``, ``target_rmse``. In-flight labels are never abandoned: this is only asked
    before a new batch is selected. ``hard_only`` asks only about a stop request or a passed
    deadline (used before finishing an iteration a killed run had started).
    """
    rt = _rt(store_path)
    cfg, st = rt.config, rt.store
    if rt.stop_event.is_set() or st.stop_requested():
        return "stop requested"
    now = now or datetime.now()
    if hard_only and rt.deadline is None:
        return None
    if rt.deadline is not None:
        if now >= rt.deadline:
            return "deadline"
        if hard_only:
            return None
        est = _label_estimate(rt)
        if iteration >= 1 and est is not None and (rt.deadline - now).total_seconds() < est:
            return "deadline"
    if iteration > cfg.budget.iterations:
        return "iterations"
    if cfg.budget.max_labels is not None and _spent(st) >= cfg.budget.max_labels:
        return "max_labels"
    if cfg.budget.target_rmse is not None and iteration >= 1:
        recs = _iteration_records(st)
        prev = recs.get(iteration - 1, {}).get("metrics") or {}
        rmse = prev.get("rmse")
        if isinstance(rmse, (int, float)) and rmse <= cfg.budget.target_rmse:
            return "target_rmse"
    if int(np.sum(np.asarray(st.status) == 0)) == 0 and not len(st.requested_indices()):
        return "pool exhausted"
    return None


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


# ------------------------------------------------------------------------------- loop
@dataclass
class Steps:
    """The step callables the loop uses: the plain functions, or Prefect tasks around them."""

    select: Callable[..., dict[str, Any]] = select
    label: Callable[..., dict[str, Any]] = label
    train: Callable[..., dict[str, Any]] = train
    evaluate: Callable[..., dict[str, Any]] = evaluate
    checkpoint: Callable[..., dict[str, Any]] = checkpoint


def drive(store_path: str | os.PathLike, steps: Steps | None = None,
          on_iteration: Callable[[dict[str, Any]], None] | None = None,
          max_iterations: int | None = None) -> dict[str, Any]:
    """Run iterations until a stop condition; the campaign must be open (``open_campaign``).

    ``max_iterations`` caps how many iterations this call runs (benchmarks). Returns a summary
    with ``stop_reason``, the iterations run, labels and failures.
    """
    steps = steps or Steps()
    path = str(_key(store_path))
    p = plan(path)
    it = p["iteration"]
    first = it
    ran: list[int] = []
    reason: str | None = None
    if p["finished"] or p["selected"]:
        _say(f"resuming at iteration {it} (finished: {len(p['finished'])})")
    while True:
        if max_iterations is not None and len(ran) >= max_iterations:
            reason = "max_iterations"
            break
        p = plan(path)
        resuming = p["selected"]
        reason = should_stop(path, it, hard_only=resuming)
        if reason is not None:
            break
        timings: dict[str, float] = {}
        rt = _rt(path)
        if not p["trained"]:
            s = steps.select(path, it)
            timings["select"] = s["seconds"]
            if s["selected"] == 0 and not resuming:
                reason = "budget spent"
                break
            if _halted(rt):
                reason = "stop requested"
                break
            lab = steps.label(path, it)
            timings["label"] = lab["seconds"]
            if _halted(rt):  # stop at the step boundary; the resume trains on these labels
                reason = "stop requested"
                break
        tr = steps.train(path, it)
        timings["train"] = tr["seconds"]
        if _halted(rt):  # the checkpoint is saved; the resume evaluates and records it
            reason = "stop requested"
            break
        metrics = steps.evaluate(path, it)
        timings["evaluate"] = metrics.get("seconds", 0.0)
        rec = steps.checkpoint(path, it, metrics, timings)
        timings["checkpoint"] = rec["seconds"]
        ran.append(it)
        if on_iteration is not None:
            on_iteration(rec)
        it += 1
    rt = _rt(path)
    if reason not in (None, "max_iterations"):
        _say(f"stopped before iteration {it}: {reason}")
    return {
        "store": path,
        "stop_reason": reason,
        "first_iteration": first,
        "iterations_run": ran,
        "next_iteration": it,
        "labeled": int(len(rt.store.labelled_indices())),
        "failed": int(len(rt.store.failed_indices())),
    }


def run(cfg: CampaignConfig, *, steps: Steps | None = None, max_iterations: int | None = None,
        keep_open: bool = False) -> dict[str, Any]:
    """Open (or resume) and drive a campaign to its end without Prefect."""
    summary = open_campaign(cfg)
    try:
        out = drive(summary["store"], steps=steps, max_iterations=max_iterations)
    finally:
        if not keep_open:
            close(summary["store"])
    return out


def history(store_path: str | os.PathLike) -> dict[str, Any]:
    """Finished iterations and label counts of a campaign open in this process (for artifacts)."""
    rt = _rt(store_path)
    st = rt.store
    recs = _iteration_records(st)
    its = [{"iteration": i, "metrics": recs[i].get("metrics") or {},
            "timings": recs[i].get("timings") or {}} for i in _finished(recs)]
    labeled, failed = int(len(st.labelled_indices())), int(len(st.failed_indices()))
    return {"iterations": its, "labeled": labeled, "failed": failed, "spent": labeled + failed,
            "budget": rt.config.label_budget, "name": rt.config.campaign.name}


# ----------------------------------------------------------------------------- status
def status(store_path: str | os.PathLike) -> dict[str, Any]:
    """A read-only snapshot of a store for ``alflow status`` (works while a campaign writes)."""
    from alcore.store import CampaignStore  # noqa: PLC0415

    with CampaignStore.open(Path(store_path), mode="r") as st:
        recs = _iteration_records(st)
        cfg = st.config or {}
        done = _finished(recs)
        stat = np.asarray(st.status)
        per_it = []
        for i in sorted(recs):
            r = recs[i]
            per_it.append({
                "iteration": i,
                "selected": len(r.get("selected") or []),
                "finished": bool(r.get("metrics")),
                "metrics": r.get("metrics") or {},
                "timings": r.get("timings") or {},
            })
        budget = cfg.get("budget", {})
        acq = cfg.get("acquisition", {})
        planned = int(budget.get("initial", 0)) + int(budget.get("iterations", 0)) * int(acq.get("batch_size", 0))
        if budget.get("max_labels"):
            planned = min(planned, int(budget["max_labels"]))
        rmses = [m["metrics"].get("rmse") for m in per_it if isinstance(m["metrics"].get("rmse"), (int, float))]
        return {
            "store": str(Path(store_path).resolve()),
            "name": (cfg.get("campaign") or {}).get("name"),
            "oracle": (st.oracle_info or {}).get("name"),
            "strategy": acq.get("strategy"),
            "pool": int(stat.size),
            "labeled": int(np.sum(stat == 2)),
            "failed": int(np.sum(stat == 3)),
            "requested": int(np.sum(stat == 1)),
            "unlabeled": int(np.sum(stat == 0)),
            "label_budget": planned,
            "iteration": done[-1] if done else None,
            "iterations_planned": int(budget.get("iterations", 0)),
            "stop_requested": bool(st.stop_requested()),
            "best_rmse": min(rmses) if rmses else None,
            "metrics": [m["metrics"] | {"iteration": m["iteration"]} for m in per_it if m["finished"]],
            "iterations": per_it,
        }
