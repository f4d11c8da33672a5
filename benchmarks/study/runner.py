"""One paired active-learning run in-process: a campaign with the oracle replaced by a look-up.

The steps are those of :mod:`alcore.campaign` (random initial design, train with
:func:`alcore.model.fit.fit_surrogate` — the product's own train function, model selection and
calibration included — evaluate, select with :func:`alcore.strategies.select`, label, repeat)
with the same seeding rules:

* initial design: ``default_rng([seed, 1])`` over the pool — identical for every strategy
  (the pairing: for seed s only the acquisitions differ between strategies);
* model seed of iteration i: ``seed * 1000 + i`` (the campaign's rule), warm start from the
  previous iteration's weights unless ``warm_start=False`` (the campaign default is warm);
* acquisition seed of iteration i: ``seed * 100_003 + i`` (the campaign's rule).

Arms whose name starts with ``gp_`` are the Gaussian-process baseline (:mod:`benchmarks.study.gp`):
the same initial design, the same pool, test set and budget; ``gp_random`` labels exactly the
points that alflow's ``random`` arm labels for the same seed.

Every iteration records the test RMSE per output, and the calibration checks of the predictive
std: NLL, coverage of the central 90% interval, and the NLL of a Gaussian whose std is the
observed RMSE (:func:`alcore.metrics.regression_metrics`).

Each finished run is one JSON file; :func:`run_jobs` skips runs whose file exists (resumable)
and refuses a file written with a different configuration (no silent mixing).
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.study.problems import OUT, Problem, load_problem


@dataclass
class RunConfig:
    """Everything that defines a run besides (problem, strategy, seed)."""

    initial: int
    batch: int
    iterations: int
    n_samples: int = 100                         # T
    reg: float = 1e-2                            # relative (alcore.strategies default units)
    strategy_params: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)   # DropoutMLP kwargs over its defaults
    surrogate: dict[str, Any] = field(default_factory=dict)  # SurrogateSettings overrides (select, ...)
    warm_start: bool = True
    variant: str = "default"                     # folder name of this configuration

    def check(self, pool_size: int) -> None:
        for nm in ("initial", "batch", "iterations", "n_samples"):
            v = getattr(self, nm)
            if not isinstance(v, int) or v < (0 if nm == "iterations" else 1):
                raise ValueError(f"RunConfig.{nm} must be a positive integer; got {v!r}")
        need = self.initial + self.batch * self.iterations
        if need > pool_size:
            raise ValueError(f"RunConfig: initial + batch*iterations = {need} exceeds the pool size {pool_size}")


def effective_hparams(model_kwargs: dict[str, Any], surrogate: dict[str, Any] | None = None) -> dict[str, Any]:
    """The surrogate settings a run really uses (its overrides over the *current* defaults):
    DropoutMLP hyperparameters plus the model-selection settings and search space.

    Recorded in every run, because the product defaults may change between runs of a study;
    a resumed study refuses to mix runs made under different effective settings.
    """
    from alcore.model import DropoutMLP  # noqa: PLC0415
    from alcore.model.fit import SurrogateSettings  # noqa: PLC0415

    out = DropoutMLP(**{**model_kwargs, "device": "cpu"}).hyperparameters()
    st = SurrogateSettings(model=model_kwargs, **(surrogate or {}))
    out["surrogate"] = {"select": st.select, "folds": st.folds, "full_cv_max_n": st.full_cv_max_n,
                        "tuning_budget_s": st.tuning_budget_s,
                        "retune_factor": st.retune_factor, "calibrate": st.calibrate,
                        "search_space": [[c.name, dict(c.params)] for c in st.search_space]}
    return json.loads(json.dumps(out))


def _metrics(pred: np.ndarray, std: np.ndarray | None, problem: Problem, dof: float | None = None) -> dict[str, Any]:
    from alcore.metrics import regression_metrics  # noqa: PLC0415

    m = regression_metrics(problem.test_y, pred, std, dof=dof)
    rmse = np.asarray(m["rmse_per_output"])
    nrmse = rmse / problem.test_y.std(axis=0)
    out = {"rmse": [float(v) for v in rmse], "nrmse": [float(v) for v in nrmse],
           "nrmse_mean": float(np.mean(nrmse))}
    if std is not None:
        for key in ("nll", "coverage90", "nll_at_rmse"):
            out[key] = m[f"{key}_per_output"]
    return out


def _gp_run(problem: Problem, strategy: str, seed: int, cfg: RunConfig, first: np.ndarray,
            log: Callable[[str], None] | None) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """The GP baseline arms (see the module docstring)."""
    from alcore import strategies  # noqa: PLC0415
    from benchmarks.study.gp import GPSurrogate  # noqa: PLC0415

    if strategy not in ("gp_random", "gp_variance"):
        raise ValueError(f"unknown GP arm {strategy!r}; have gp_random, gp_variance")
    P = problem.pool_X.shape[0]
    labelled = np.zeros(P, dtype=bool)
    labelled[first] = True
    picks = [sorted(int(i) for i in first)]
    gp = GPSurrogate(problem.pool_X.min(axis=0), problem.pool_X.max(axis=0))
    records = []
    for it in range(cfg.iterations + 1):
        lab = np.flatnonzero(labelled)
        t0 = time.perf_counter()
        gp.fit(problem.pool_X[lab], problem.pool_y[lab], seed * 1000 + it)
        rec = {"iteration": it, "n_labels": int(lab.size), "fit_s": time.perf_counter() - t0,
               **_metrics(*gp.predict(problem.test_X), problem)}
        if it < cfg.iterations:
            unl = np.flatnonzero(~labelled)
            t0 = time.perf_counter()
            if strategy == "gp_random":
                sel = strategies.random.select_random(unl.size, cfg.batch, seed * 100_003 + it + 1).indices
            else:
                sel = gp.greedy_variance(problem.pool_X[lab], problem.pool_X[unl], cfg.batch)
            rec["select_s"] = time.perf_counter() - t0
            chosen = unl[np.asarray(sel, dtype=np.int64)]
            labelled[chosen] = True
            picks.append([int(i) for i in chosen])
        records.append(rec)
        if log:
            log(f"{problem.name} {cfg.variant} {strategy} s{seed} it{it} n={rec['n_labels']} "
                f"nrmse={rec['nrmse_mean']:.4f}")
    return records, picks


def run_one(problem: Problem, strategy: str, seed: int, cfg: RunConfig,
            log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Replay one campaign; returns the per-iteration record (see the module docstring)."""
    from alcore import strategies  # noqa: PLC0415
    from alcore.model.fit import SurrogateSettings, fit_surrogate  # noqa: PLC0415

    P = problem.pool_X.shape[0]
    cfg.check(P)
    t_start = time.perf_counter()
    first = np.random.default_rng([seed, 1]).choice(P, size=cfg.initial, replace=False)
    if strategy.startswith("gp_"):
        records, picks = _gp_run(problem, strategy, seed, cfg, first, log)
        return {"problem": problem.name, "strategy": strategy, "seed": seed, "config": asdict(cfg),
                "model_hparams": {"gp": "ConstantKernel*Matern(2.5, ARD)+White, normalize_y"},
                "records": records, "picks": picks, "wall_s": time.perf_counter() - t_start}
    strategies.get(strategy)  # unknown names fail before any training
    settings = SurrogateSettings(model=cfg.model, warm_start=cfg.warm_start, **cfg.surrogate)
    labelled = np.zeros(P, dtype=bool)
    labelled[first] = True
    picks: list[list[int]] = [sorted(int(i) for i in first)]
    records: list[dict[str, Any]] = []
    prev_state = prev_choice = None
    for it in range(cfg.iterations + 1):
        lab = np.flatnonzero(labelled)
        new_rows = np.flatnonzero(np.isin(lab, picks[-1])) if it > 0 else None
        fit = fit_surrogate(problem.pool_X[lab], problem.pool_y[lab], settings, previous_state=prev_state,
                            previous_choice=prev_choice, seed=seed * 1000 + it, new_rows=new_rows,
                            target_X=problem.pool_X)
        model = fit.model
        prev_state, prev_choice = model.get_state(), fit.choice
        pred, std = model.predict_with_std(problem.test_X, T=cfg.n_samples, seed=seed * 100_003 + it)
        rec = {"iteration": it, "n_labels": int(lab.size), "fit_s": fit.seconds["total"],
               "select_model_s": fit.seconds["select"], "steps": fit.report.steps,
               "warm_start": fit.warm_start, "retuned": fit.retuned, "choice": fit.choice["name"],
               "cv": ([[c["name"], c["score"]] for c in fit.cv["candidates"]] if fit.cv else None),
               "calib_std_scale": fit.calibration["std_scale"], "calib_std_floor": fit.calibration["std_floor"],
               "calib_source": fit.calibration["source"], "calib_dof": fit.calibration.get("dof"),
               **_metrics(pred, std, problem, model.calibration_dof)}
        if it < cfg.iterations:
            unl = np.flatnonzero(~labelled)
            ctx = strategies.AcquisitionContext(
                model=model, X_train=problem.pool_X[lab], X_pool=problem.pool_X[unl],
                batch_size=cfg.batch, n_samples=cfg.n_samples, reg=cfg.reg,
                seed=seed * 100_003 + it + 1)
            t0 = time.perf_counter()
            sel = strategies.select(strategy, ctx, **cfg.strategy_params)
            rec["select_s"] = time.perf_counter() - t0
            chosen = unl[np.asarray(sel.indices, dtype=np.int64)]
            if np.unique(chosen).size != cfg.batch:
                raise RuntimeError(f"{strategy} returned {np.unique(chosen).size} distinct picks, wanted {cfg.batch}")
            labelled[chosen] = True
            picks.append([int(i) for i in chosen])
        records.append(rec)
        if log:
            log(f"{problem.name} {cfg.variant} {strategy} s{seed} it{it} n={rec['n_labels']} "
                f"nrmse={rec['nrmse_mean']:.4f}")
    return {"problem": problem.name, "strategy": strategy, "seed": seed, "config": asdict(cfg),
            "model_hparams": effective_hparams(cfg.model, cfg.surrogate), "records": records, "picks": picks,
            "wall_s": time.perf_counter() - t_start}


def run_path(out: Path, problem: str, cfg: RunConfig, strategy: str, seed: int) -> Path:
    return Path(out) / "runs" / problem / cfg.variant / strategy / f"s{seed}.json"


def load_run(path: Path, cfg: RunConfig | None = None) -> dict[str, Any]:
    """A finished run; with ``cfg``, error if it was made with a different configuration
    (including different effective model hyperparameters, e.g. after a change of defaults)."""
    d = json.loads(Path(path).read_text())
    if cfg is not None and d["config"] != json.loads(json.dumps(asdict(cfg))):
        raise ValueError(f"{path} was written with config {d['config']}, not {asdict(cfg)}: "
                         "use another --variant name or delete the folder")
    if cfg is not None and not d["strategy"].startswith("gp_"):
        now = effective_hparams(cfg.model, cfg.surrogate)
        if d.get("model_hparams") != now:
            raise ValueError(f"{path} was made with model hyperparameters {d.get('model_hparams')}, "
                             f"the current ones are {now} (defaults changed?): use another --variant "
                             "name or delete the folder")
    return d


def _worker(job: tuple[str, bool, str, int, dict, str]) -> tuple[str, float]:
    """Process-pool entry: one thread per process, load the cached problem, run, write JSON."""
    name, quick, strategy, seed, cfgd, out = job
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    cfg = RunConfig(**cfgd)
    problem = load_problem(name, quick=quick, verbose=False)
    res = run_one(problem, strategy, seed, cfg)
    path = run_path(Path(out), name, cfg, strategy, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res))
    os.replace(tmp, path)                        # a killed run leaves no half file behind
    return str(path), res["wall_s"]


def run_jobs(problem: str, strategies: list[str], seeds: list[int], cfg: RunConfig, *,
             quick: bool = False, workers: int = 2, out: Path = OUT) -> list[Path]:
    """Run every missing (strategy, seed) of ``problem``; seed-major so partial studies stay paired."""
    prob = load_problem(problem, quick=quick)           # build the cache once, in this process
    cfg.check(prob.pool_X.shape[0])
    jobs, done = [], []
    for s in seeds:
        for st in strategies:
            p = run_path(out, problem, cfg, st, s)
            if p.is_file():
                load_run(p, cfg)
                done.append(p)
            else:
                jobs.append((problem, quick, st, s, asdict(cfg), str(out)))
    print(f"[study] {problem}/{cfg.variant}: {len(done)} runs done, {len(jobs)} to run on {workers} worker(s)",
          flush=True)
    if not jobs:
        return done
    t0 = time.perf_counter()
    if workers <= 1:
        for j in jobs:
            path, wall = _worker(j)
            done.append(Path(path))
            print(f"[study] {path} {wall:.0f} s", flush=True)
        return done
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
        futs = [ex.submit(_worker, j) for j in jobs]
        for f in as_completed(futs):
            path, wall = f.result()
            done.append(Path(path))
            print(f"[study] {Path(path).relative_to(out)} {wall:.0f} s "
                  f"(elapsed {time.perf_counter() - t0:.0f} s)", flush=True)
    return done
