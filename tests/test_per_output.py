"""Per-output networks (``DropoutMLP(per_output=True)``): each output has its own networks,
trained on it alone, everywhere a model is used — fit, cross-validation, polish, MC samples,
state, warm start and model selection."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from alcore.config.sections import ModelSection
from alcore.model import DropoutMLP
from alcore.model.selection import (DEFAULT_SEARCH_SPACE, Candidate, _relative_cost, applicable, cv_score, kfold_ids,
                                    select_model)

KW = dict(hidden=(16, 16), min_steps=150, epochs=1, seed=3, device="cpu")


def _data(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).uniform(-1, 1, size=(n, 3))
    y = np.stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] ** 2 - X[:, 0], np.tanh(3 * X[:, 1] * X[:, 2])], axis=1)
    return X, y


def _other_output_changed(y: np.ndarray, j: int) -> np.ndarray:
    """y with output j replaced by another function of the same scale (the normaliser of the
    other outputs is unchanged)."""
    out = y.copy()
    out[:, j] = np.cos(5 * y[:, j]) * y[:, j].std() + y[:, j].mean()
    return out


def test_an_output_does_not_depend_on_the_labels_of_the_others():
    """The defining property: changing output 1's labels leaves output 0's prediction, MC samples
    and out-of-fold predictions bit-identical — and a shared network (the control) does change."""
    X, y = _data()
    y2 = _other_output_changed(y, 1)
    folds = kfold_ids(len(X), 3, 0)
    for per_output, same in ((True, True), (False, False)):
        a, b = DropoutMLP(**KW, per_output=per_output), DropoutMLP(**KW, per_output=per_output)
        a.fit(X, y)
        b.fit(X, y2)
        results = [np.array_equal(a.predict(X)[:, 0], b.predict(X)[:, 0]),
                   np.array_equal(a.sample(X, 6, seed=1)[:, :, 0], b.sample(X, 6, seed=1)[:, :, 0])]
        cva = a.cross_validate(X, y, folds, T=4, seed=0)
        cvb = b.cross_validate(X, y2, folds, T=4, seed=0)
        results += [np.array_equal(cva.pred[:, 0], cvb.pred[:, 0]), np.array_equal(cva.mc_std[:, 0], cvb.mc_std[:, 0])]
        assert results == [same] * 4, (per_output, results)
    # output 1 itself did learn its new labels
    assert not np.array_equal(a.predict(X)[:, 1], b.predict(X)[:, 1])


def test_per_output_model_trains_k_networks_each_fitting_its_output():
    X, y = _data(120)
    m = DropoutMLP(**{**KW, "min_steps": 400}, per_output=True, n_members=2)
    m.fit(X, y)
    assert m._net.n_stack == 2 * 3
    s = m.sample(X, 8, seed=0)
    assert s.shape == (120, 8, 3) and np.all(s.std(axis=1) > 0)
    nrmse = np.sqrt(((m.predict(X) - y) ** 2).mean(axis=0)) / y.std(axis=0)
    assert np.all(nrmse < 0.5), nrmse                    # every output learnt, not only one


def test_state_round_trip_and_refusals():
    X, y = _data()
    m = DropoutMLP(**KW, per_output=True, polish_steps=5)
    m.fit(X, y)
    st = m.get_state()
    assert int(st["format_version"]) == 3 and int(st["arch_per_output"]) == 1
    back = DropoutMLP.from_state(st, device="cpu")
    assert back.per_output and np.array_equal(back.predict(X), m.predict(X))
    assert np.array_equal(back.sample(X, 5, seed=2), m.sample(X, 5, seed=2))
    shared = DropoutMLP(**KW)
    with pytest.raises(ValueError, match="arch_per_output"):
        shared.load_state(st)
    # a version-2 state (before per-output networks) loads as one shared network per member
    old = DropoutMLP(**KW)
    old.fit(X, y)
    st2 = {key: v for key, v in old.get_state().items() if key != "arch_per_output"}
    st2["format_version"] = np.array(2)
    assert np.array_equal(DropoutMLP.from_state(st2, device="cpu").predict(X), old.predict(X))


def test_warm_start_rewrites_every_network_for_the_new_normaliser_and_continues():
    X, y = _data()
    m = DropoutMLP(**KW, per_output=True)
    m.fit(X, y)
    before, samples = m.predict(X), m.sample(X, 4, seed=0)
    X2, y2 = X * 2.0 + 1.0, y * 3.0 - 1.0                  # what a warm start does to the normaliser, exactly:
    moments = (X2.mean(0), X2.std(0), y2.mean(0), y2.std(0))
    m._restandardise(*moments)
    m._x_mean, m._x_std, m._y_mean, m._y_std = moments
    assert np.allclose(m.predict(X), before, atol=1e-5) and np.allclose(m.sample(X, 4, seed=0), samples, atol=1e-5)
    report = m.fit(X[:60], y[:60], warm_start=True)
    assert report.warm_start and m._net.n_stack == 3


def test_continued_polish_of_per_output_networks_equals_training_from_scratch(monkeypatch):
    """split_polished continues from split's trained folds, like polished from deeper."""
    import alcore.model.dropout_mlp as dm

    X, y = _data(60)
    base = dict(hidden=(8, 8), min_steps=60, epochs=1, device="cpu")
    space = [Candidate("split", {"hidden": (8, 8), "per_output": True}),
             Candidate("split_polished", {"hidden": (8, 8), "polish_steps": 20, "per_output": True})]
    trainings = []
    real = dm.train_stacked
    monkeypatch.setattr(dm, "train_stacked", lambda *a, **kw: (trainings.append(1), real(*a, **kw))[1])
    sel = select_model(X, y, base, space, folds=3, seed=2, T=4)
    assert len(trainings) == 1
    scratch = DropoutMLP(**base, per_output=True, polish_steps=20, seed=2).cross_validate(
        X, y, kfold_ids(60, 3, 2), T=4, seed=2)
    assert {s.name: s.score for s in sel.scores}["split_polished"] == cv_score(y[scratch.rows], scratch.pred)[0]


def test_selection_leaves_per_output_candidates_out_for_one_output_and_prices_them_k_times():
    names = [c.name for c in DEFAULT_SEARCH_SPACE]
    assert {"split", "split_polished"} <= set(names)
    assert [c.name for c in applicable(DEFAULT_SEARCH_SPACE, 1)] == [n for n in names if not n.startswith("split")]
    assert applicable(DEFAULT_SEARCH_SPACE, 2) == tuple(DEFAULT_SEARCH_SPACE)
    X, y = _data(40)
    sel = select_model(X, y[:, :1], dict(hidden=(8,), min_steps=20, epochs=1, device="cpu"),
                       [c for c in DEFAULT_SEARCH_SPACE if c.name in ("default", "split")], folds=2, T=2)
    assert [s.name for s in sel.scores] == ["default"]
    shared, split = DropoutMLP(hidden=(8, 8)), DropoutMLP(hidden=(8, 8), per_output=True)
    assert _relative_cost(split, 100, 3, 4) == pytest.approx(4 * _relative_cost(shared, 100, 3, 4))
    assert _relative_cost(split, 100, 3, 1) == pytest.approx(_relative_cost(shared, 100, 3, 1))


def test_config_pins_per_output_networks_and_refuses_non_booleans():
    assert ModelSection(per_output=True).model_kwargs(seed=0)["per_output"] is True
    assert "per_output" not in ModelSection().model_kwargs(seed=0)
    with pytest.raises(ValueError):
        ModelSection(per_output="maybe")
    with pytest.raises(ValueError, match="per_output must be a bool"):
        DropoutMLP(per_output=1)


def test_output_weights_only_count_the_chosen_outputs_in_the_loss():
    from alcore.model.network import _weighted_mse

    out, Y = torch.zeros(2, 4, 3), torch.tensor([1.0, 2.0, 3.0]).expand(2, 4, 3)
    w = torch.ones(2, 4)
    ow = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert torch.equal(_weighted_mse(out, Y, w, w.sum(1), ow), torch.tensor([1.0, 9.0]))
    assert torch.allclose(_weighted_mse(out, Y, w, w.sum(1)), torch.tensor([14 / 3, 14 / 3]))


def test_status_names_per_output_networks():
    from alcore.surrogate.selection_record import architecture_text

    params = {"hidden": [128, 128, 128], "activation": "silu", "dropout": 0.05, "polish_steps": 1000}
    assert architecture_text({**params, "per_output": True}) == \
        "3x128 silu, dropout 0.05, one per output, L-BFGS polish 1000"
    assert "per output" not in architecture_text({**params, "per_output": False})


def test_a_campaign_fit_that_chooses_per_output_networks_stores_reloads_and_warm_starts():
    """fit_surrogate choosing the split candidate: its state (format 3) rebuilds a model that
    predicts identically, and the next train step warm-starts from it (same architecture)."""
    from alcore.model.fit import SurrogateSettings, fit_surrogate

    X, y = _data(100)
    settings = SurrogateSettings(model=dict(hidden=(8, 8), min_steps=60, epochs=1, device="cpu"),
                                 search_space=(Candidate("split", {"per_output": True}),),
                                 folds=3, calibration_T=4)
    first = fit_surrogate(X[:90], y[:90], settings, seed=1)
    assert first.choice["name"] == "split" and first.model.per_output and first.model._net.n_stack == 3
    st = first.model.get_state()
    back = DropoutMLP.from_state(st, device="cpu")
    assert np.array_equal(back.predict(X), first.model.predict(X))
    second = fit_surrogate(X, y, settings, seed=1, previous_state=st, previous_choice=first.choice)
    assert second.warm_start and not second.retuned and second.model.per_output
