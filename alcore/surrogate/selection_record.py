"""How a campaign's surrogate was chosen, as its store records it: the model, its CV scores, when.

The campaign's train step records ``SurrogateFit.info()`` (:mod:`alcore.model.fit`) in every
iteration's ``info["surrogate"]``. ``alflow status``, the report and the Prefect summary read it
through :func:`model_selection` and word it with :func:`selection_text`, so all three say the
same thing. Pure Python over plain dicts: no torch, no file access.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["surrogate_info", "model_selection", "selection_text", "candidates_text", "architecture_text"]


def surrogate_info(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fit record of one iteration record (``{"iteration", "info", ...}``), or None."""
    info = record.get("info") if isinstance(record, Mapping) else None
    fit = info.get("surrogate") if isinstance(info, Mapping) else None
    return dict(fit) if isinstance(fit, Mapping) and fit.get("model_choice") else None


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def model_selection(records: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The current choice over a store's iteration records; None when no iteration recorded a fit.

    Returns ``{"model", "select", "params", "iteration"`` (the newest fit), ``"tuned_iteration"``
    and ``"tuned_labels"`` (the last cross-validation; None before the first), ``"score"`` (the
    chosen model's CV nRMSE), ``"cv"`` (``chosen``, ``folds``, ``trained_folds``, ``seconds``,
    ``budget_s``, ``truncated``, ``candidates``: ``name``, ``score``, ``skipped``, ``seconds``),
    ``"calibration"`` (``std_scale``, ``std_floor`` per output, ``dof``: the Student-t tails,
    None for the Gaussian; ``source``)``}``.
    """
    fits = sorted(((int(r["iteration"]), f) for r in records
                   if "iteration" in r and (f := surrogate_info(r)) is not None), key=lambda t: t[0])
    if not fits:
        return None
    last_it, last = fits[-1]
    choice = dict(last["model_choice"])
    tuned = next(((i, f) for i, f in reversed(fits) if isinstance(f.get("cv"), Mapping)), None)
    cv = None
    score = None
    if tuned is not None:
        raw = tuned[1]["cv"]
        cands = [{"name": c.get("name"), "score": _num(c.get("score")), "skipped": bool(c.get("skipped")),
                  "seconds": _num(c.get("seconds"))} for c in raw.get("candidates") or []]
        cv = {"chosen": raw.get("chosen"), "folds": raw.get("folds"), "trained_folds": raw.get("trained_folds"),
              "seconds": _num(raw.get("seconds")), "budget_s": _num(raw.get("budget_s")),
              "truncated": bool(raw.get("truncated")), "candidates": cands}
        score = next((c["score"] for c in cands if c["name"] == raw.get("chosen")), None)
    cal = last.get("calibration") if isinstance(last.get("calibration"), Mapping) else None
    return {"model": choice.get("name"), "select": choice.get("select"), "params": choice.get("params") or {},
            "iteration": last_it, "tuned_iteration": tuned[0] if tuned else None,
            "tuned_labels": choice.get("n_selected") if tuned else None, "score": score, "cv": cv,
            "calibration": ({"std_scale": cal.get("std_scale"), "std_floor": cal.get("std_floor"),
                             "dof": _num(cal.get("dof")), "source": cal.get("source")} if cal else None)}


def _f(x: Any) -> str:
    v = _num(x)
    return "-" if v is None else f"{v:.4g}"


def candidates_text(cv: Mapping[str, Any]) -> str:
    """``deeper 0.041 (chosen), default 0.05, noisy skipped (time budget)``."""
    parts = []
    for c in cv.get("candidates") or []:
        if c.get("skipped"):
            parts.append(f"{c.get('name')} skipped (time budget)")
        else:
            chosen = c.get("name") == cv.get("chosen") and len(cv.get("candidates") or []) > 1
            parts.append(f"{c.get('name')} {_f(c.get('score'))}" + (" (chosen)" if chosen else ""))
    return ", ".join(parts) or "-"


def architecture_text(params: Mapping[str, Any]) -> str:
    """``3x128 silu, dropout 0.05, one per output, L-BFGS polish 1000``: the network of a choice's
    hyperparameters."""
    hidden = params.get("hidden") or []
    if hidden and len(set(hidden)) == 1:
        net = f"{len(hidden)}x{hidden[0]}"
    else:
        net = "-".join(str(h) for h in hidden) or "?"
    members = params.get("n_members") or 1
    polish = params.get("polish_steps") or 0
    return (f"{net} {params.get('activation', '?')}, dropout {_f(params.get('dropout'))}"
            + (f", {members} members" if members > 1 else "")
            + (", one per output" if params.get("per_output") else "")
            + (f", L-BFGS polish {polish}" if polish else ""))


def selection_text(sel: Mapping[str, Any] | None) -> tuple[str, str]:
    """(model line, calibration line) for people; ``("-", "-")`` when nothing was recorded."""
    if not sel:
        return "-", "-"
    head = f"{sel.get('model')} ({architecture_text(sel.get('params') or {})}; select {sel.get('select')})"
    cv = sel.get("cv")
    if cv:
        secs = _num(cv.get("seconds"))
        how = ("pinned by the config, cross-validated for the calibration" if sel.get("select") == "fixed"
               else "chosen")
        head += (f", {how} in iteration {sel.get('tuned_iteration')} ({sel.get('tuned_labels')} labels) by "
                 f"{cv.get('folds')}-fold CV" + (f" in {secs:.1f} s" if secs is not None else "")
                 + f"; CV nRMSE: {candidates_text(cv)}")
    else:
        head += ": not cross-validated yet (too few labels)"
    cal = sel.get("calibration") or {}
    if cal.get("source") in (None, "none"):
        return head, "none (raw MC-dropout std)"
    source = _SOURCES.get(str(cal.get("source")), str(cal.get("source")))
    dof = _num(cal.get("dof"))
    tails = "Gaussian" if dof is None else f"Student-t, {dof:g} dof"
    return head, (f"std x {' / '.join(_f(v) for v in cal.get('std_scale') or [])}, floor "
                  f"{' / '.join(_f(v) for v in cal.get('std_floor') or [])}, {tails} ({source})")


_SOURCES = {"cv": "fitted on out-of-fold residuals", "new_rows": "fitted on the labels new to the previous model",
            "previous": "carried from the previous fit"}
