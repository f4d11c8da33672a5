"""``preflight(cfg)``: everything about a config that can be checked before a campaign runs.

Why one function: a config that passes ``alflow validate`` must not fail later, at run time,
after the initial design was paid for. So ``alflow validate``, ``alflow run`` (before Prefect
starts) and ``open_campaign`` (for API users) call the same checks, which cost no simulator
run and create no file:

* the oracle resolves (built once; returned in :class:`Preflight` so nobody builds it twice);
* ``model.device`` exists on this machine;
* the store and report folders can be written;
* the pool: its size (``pool.size``, the rows of ``pool.file``, or a table's rows after the test
  split), every file read and checked (columns, NaN/inf), and a budget that fits in it;
* memory: the network and the pool, estimated (:mod:`alcore.config.memory`) against the
  machine's RAM rather than arbitrary caps;
* ``[dask] address``: a scheduler answers within :data:`~alcore.config.machine.SCHEDULER_TIMEOUT_S`;
* the deadline, resolved (timezone-aware) with a warning when it is more than 20 h away.

Every problem found is reported at once, in one line (:class:`ConfigError`, exit code 2).
A resumed campaign (its store exists) keeps the pool and test set it stored, so their files are
not read again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from alcore.config.deadline import deadline_warning, resolve_deadline
from alcore.config.errors import ConfigError
from alcore.config.machine import device_problem, folder_problem, ram_bytes, scheduler_problem, writable_problem
from alcore.config.memory import MemoryEstimate, effective_hidden, estimate_memory, format_bytes
from alcore.config.oracle import build_oracle
from alcore.config.points import read_pool_file, read_test_file
from alcore.config.sections import CampaignConfig

__all__ = ["Preflight", "preflight"]


@dataclass(frozen=True)
class Preflight:
    """What :func:`preflight` checked and built on the way."""

    config: CampaignConfig
    oracle: Any | None               # the resolved oracle (None only with with_oracle=False)
    input_dim: int | None            # d (None: unknown without the oracle and oracle.bounds)
    output_dim: int | None           # k (None: unknown without the oracle)
    resume: bool                     # the store exists: a resume (pool and test set are stored)
    pool_size: int | None            # points of the pool (None: unknown, e.g. a resume from a file)
    pool_X: np.ndarray | None        # pool.file, read and checked (None: no file, or a resume)
    test_X: np.ndarray | None        # test.file inputs, read and checked (None: no file, or a resume)
    test_y: np.ndarray | None        # test.file outputs
    memory: MemoryEstimate | None    # estimated peak memory (None when d or k is unknown)
    ram_bytes: int                   # what the estimate was compared with
    deadline: datetime | None        # resolve_deadline(config.budget) at the time of the check
    warnings: tuple[str, ...]        # worth saying, not errors (a deadline more than 20 h away)


def preflight(cfg: CampaignConfig, *, with_oracle: bool = True, reach_scheduler: bool = True,
              now: datetime | None = None) -> Preflight:
    """Check ``cfg`` against its oracle, files and this machine; raise ``ConfigError`` (one line
    naming every problem, prefixed by the config file) or return what was built.

    ``with_oracle=False`` skips the oracle and what needs it (``alflow validate --no-oracle``);
    ``reach_scheduler=False`` skips the Dask scheduler (``alflow serve``: the scheduler of a
    nightly run may be started later). ``now`` fixes the time the deadline resolves against.
    """
    oracle = build_oracle(cfg) if with_oracle else None
    d = int(oracle.input_dim) if oracle is not None else (len(cfg.oracle.bounds) if cfg.oracle.bounds else None)
    k = int(oracle.output_dim) if oracle is not None else None
    resume = Path(cfg.store_path).exists()
    problems: list[str] = []

    store_problem = writable_problem(cfg.store_path, "campaign.store")
    # The default report folder sits beside the store: one problem, said once.
    report_problem = (folder_problem(cfg.report_dir, "campaign.report_dir")
                      if cfg.campaign.report_dir is not None or store_problem is None else None)
    for problem in (device_problem(cfg.model.device), store_problem, report_problem):
        if problem:
            problems.append(problem)

    pool = _check_pool(cfg, oracle, d, k, resume, problems)
    memory = None
    ram = ram_bytes()
    if d is not None and k is not None:  # an unknown pool (a file not read) counts as empty
        memory = estimate_memory(cfg.model, cfg.acquisition.samples, d, k, pool.size or 0)
        if memory.total_bytes > ram:
            problems.append(_memory_problem(cfg, memory, pool.size or 0, ram))
    if cfg.dask.address and reach_scheduler:
        problem = scheduler_problem(cfg.dask.address)
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError(problems, cfg.source)

    warning = deadline_warning(cfg.budget, now)
    return Preflight(
        config=cfg, oracle=oracle, input_dim=d, output_dim=k, resume=resume, pool_size=pool.size,
        pool_X=pool.X, test_X=pool.test_X, test_y=pool.test_y, memory=memory, ram_bytes=ram,
        deadline=resolve_deadline(cfg.budget, now), warnings=(warning,) if warning else (),
    )


@dataclass
class _Pool:
    size: int | None = None
    X: np.ndarray | None = None
    test_X: np.ndarray | None = None
    test_y: np.ndarray | None = None


def _check_pool(cfg: CampaignConfig, oracle: Any, d: int | None, k: int | None, resume: bool,
                problems: list[str]) -> _Pool:
    """The pool's size and the files of a new campaign (appends problems, returns what it read)."""
    out = _Pool()
    read_files = not resume and d is not None and k is not None
    if read_files and cfg.test.file is not None:
        try:
            out.test_X, out.test_y = read_test_file(Path(cfg.test.file), d, k)
        except ConfigError as exc:
            problems.extend(exc.problems)
    fixed = oracle.fixed_points() if oracle is not None else None
    if fixed is not None:
        # A table: the pool and the test set are a seeded split of its rows.
        n = len(fixed)
        n_test = 0 if cfg.test.file is not None else cfg.test.size
        if cfg.pool.file is not None:
            problems.append(f"pool.file: oracle '{oracle.name}' has its own points (its table's rows); "
                            "remove pool.file, or use pool.size to cap the pool")
        if n_test >= n:
            problems.append(f"test.size ({n_test}) must be smaller than the table ({n} rows)")
            return out
        if cfg.pool.size is not None and cfg.pool.size > n - n_test:
            problems.append(f"pool.size ({cfg.pool.size}) exceeds the {n - n_test} table rows left "
                            f"after the test split (test.size {n_test})")
            return out
        out.size = cfg.pool.size or n - n_test
    elif cfg.pool.file is not None:
        if read_files:
            try:
                out.X = read_pool_file(Path(cfg.pool.file), d, oracle.name)
                out.size = len(out.X)
            except ConfigError as exc:
                problems.extend(exc.problems)
    elif cfg.pool.size is None:
        if oracle is not None:
            problems.append(f"pool.size: required for oracle '{oracle.name}' (it has no fixed points); "
                            "give pool.size or pool.file")
    else:
        out.size = cfg.pool.size
    if out.size is not None:
        _check_budget(cfg, out.size, problems)
    return out


def _check_budget(cfg: CampaignConfig, pool_size: int, problems: list[str]) -> None:
    """The labels the budget may spend fit in the pool (each point is labelled at most once)."""
    b = cfg.budget
    if b.initial > pool_size:
        problems.append(f"budget.initial ({b.initial}) exceeds the pool ({pool_size} points)")
    elif cfg.label_budget > pool_size:
        plan = f"budget.initial {b.initial} + budget.iterations {b.iterations} x acquisition.batch_size " \
               f"{cfg.acquisition.batch_size}"
        problems.append(f"budget: up to {cfg.label_budget} labels ({plan}) but the pool holds only "
                        f"{pool_size} points; lower the budget or set budget.max_labels = {pool_size}")


def _memory_problem(cfg: CampaignConfig, est: MemoryEstimate, pool_size: int, ram: int) -> str:
    members = cfg.model.n_members or 1
    net = f"model.hidden = {effective_hidden(cfg.model)}" + (f" x model.n_members = {members}" if members > 1 else "")
    source = "pool.size" if cfg.pool.size is not None else "pool.file" if cfg.pool.file is not None else "pool"
    return (f"memory: the network ({net}: {est.parameters:.3g} parameters) needs about "
            f"{format_bytes(est.network_bytes)} and the pool ({source}: {pool_size} points x "
            f"acquisition.samples = {cfg.acquisition.samples}) about {format_bytes(est.pool_bytes)}, "
            f"more than this machine's {format_bytes(ram)} of RAM")
