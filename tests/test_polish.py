"""The L-BFGS polish (alcore/model/polish.py): its closed-form loss, what it does to a fit, and
where it is refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from alcore import mc
from alcore.config.resume import is_mutable
from alcore.config.sections import ModelSection
from alcore.model import DropoutMLP
from alcore.model.network import StackedMLP
from alcore.model.polish import expected_dropout_loss, polish_stacked
from alcore.model.selection import DEFAULT_SEARCH_SPACE, _relative_cost


def _net(sizes=(3, 16, 16, 2), M=2, dropout=(0.0, 0.3), seed=0) -> StackedMLP:
    net = StackedMLP(list(sizes), M, "silu", dropout)
    net.init([torch.Generator().manual_seed(seed + j) for j in range(M)], gain=1.0)
    return net


def _smooth_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(seed).uniform(-1, 1, size=(n, 3))
    y = np.stack([np.sin(2 * X[:, 0]) * np.cos(X[:, 1]) + 0.5 * X[:, 2] ** 2,
                  np.exp(0.5 * X[:, 0] * X[:, 2])], axis=1)
    return X, y


def test_expected_loss_is_the_average_of_the_dropout_loss_over_masks():
    """The closed form equals the Monte-Carlo mean of the loss AdamW sees, mask by mask."""
    torch.manual_seed(0)
    net = _net()
    X = torch.randn(40, 3)
    Y = torch.randn(40, 2)
    w = torch.ones(net.n_stack, 40)
    closed = expected_dropout_loss(net, net.theta, X, Y, w)
    gen = torch.Generator().manual_seed(1)
    draws = []
    for _ in range(4000):
        masks = [None, mc.dropout_mask((net.n_stack, 40, 16), 0.3, gen)]
        draws.append(((net.forward(X, masks) - Y) ** 2).mean(dim=(1, 2)))
    draws = torch.stack(draws)                                   # (draws, M)
    se = draws.std(dim=0) / np.sqrt(draws.shape[0])
    assert torch.all((draws.mean(dim=0) - closed).abs() < 4 * se + 1e-6), (draws.mean(dim=0), closed, se)
    # and it is more than the dropout-off loss: the penalty is there
    assert torch.all(closed > ((net.forward(X) - Y) ** 2).mean(dim=(1, 2)))


def test_polish_lowers_the_loss_and_the_error_of_an_adamw_fit():
    X, y = _smooth_data(300)
    Xv, yv = _smooth_data(500, seed=1)
    kw = dict(hidden=(32, 32), min_steps=400, epochs=1, seed=0, device="cpu")
    plain = DropoutMLP(**kw)
    plain.fit(X, y)
    polished = DropoutMLP(**kw, polish_steps=300)
    report = polished.fit(X, y)
    assert report.polish_iterations > 0 and plain.fit(X, y).polish_iterations == 0
    err = lambda m: float(np.sqrt(np.mean((m.predict(Xv) - yv) ** 2)))  # noqa: E731
    assert err(polished) < 0.8 * err(plain)
    # still an MC-dropout model: shared-mask samples differ from each other
    s = polished.sample(Xv[:20], T=16, seed=0)
    assert float(s.std(axis=1).mean()) > 0


def test_polish_keeps_networks_apart_and_ignores_rows_of_weight_zero():
    """Network 0 does not see row 0 (weight 0): changing that label leaves network 0 alone."""
    X = torch.randn(30, 3)
    Y = torch.randn(30, 2)
    w = torch.ones(2, 30)
    w[0, 0] = 0.0
    a, b = _net(), _net()
    polish_stacked(a, X, Y, 50, w)
    Y2 = Y.clone()
    Y2[0] += 10.0
    polish_stacked(b, X, Y2, 50, w)
    assert torch.allclose(a.member_layers(0)[0][0], b.member_layers(0)[0][0], atol=1e-5)
    assert not torch.allclose(a.member_layers(1)[0][0], b.member_layers(1)[0][0], atol=1e-3)


def test_polish_never_raises_the_loss():
    net = _net()
    X, Y = torch.randn(25, 3), torch.randn(25, 2)
    res = polish_stacked(net, X, Y, 30)
    assert res.iterations > 0 and res.loss_after <= res.loss_before
    assert float(expected_dropout_loss(net, net.theta, X, Y, torch.ones(2, 25)).sum()) == pytest.approx(
        res.loss_after, rel=1e-5)


def test_polish_is_refused_with_dropout_below_the_last_layer():
    net = _net(dropout=(0.1, 0.1))
    with pytest.raises(ValueError, match="last hidden layer only"):
        polish_stacked(net, torch.randn(5, 3), torch.randn(5, 2), 10)
    polish_stacked(net, torch.randn(5, 3), torch.randn(5, 2), 0)     # zero steps: nothing to refuse
    with pytest.raises(ValueError, match="polish_steps"):
        DropoutMLP(dropout_layers="all", polish_steps=10)
    with pytest.raises(ValueError, match="polish_steps"):
        ModelSection(dropout_layers="all", polish_steps=10)


def test_polish_steps_travel_in_the_state_and_config():
    X, y = _smooth_data(40)
    m = DropoutMLP(hidden=(8,), min_steps=20, epochs=1, polish_steps=7, device="cpu")
    m.fit(X, y)
    again = DropoutMLP.from_state(m.get_state(), device="cpu")
    assert again.polish_steps == 7 and again.hyperparameters()["polish_steps"] == 7
    assert ModelSection(polish_steps=7).model_kwargs(seed=0)["polish_steps"] == 7
    assert is_mutable("model.polish_steps")


def test_the_search_space_has_a_polished_candidate_and_prices_it():
    names = [c.name for c in DEFAULT_SEARCH_SPACE]
    assert "polished" in names
    params = dict(next(c for c in DEFAULT_SEARCH_SPACE if c.name == "polished").params)
    deeper = dict(next(c for c in DEFAULT_SEARCH_SPACE if c.name == "deeper").params)
    assert params.pop("polish_steps") > 0 and params.pop("dropout_layers") == "last" and params == deeper
    cost = lambda p: _relative_cost(DropoutMLP(**p), 500, 9, 2)  # noqa: E731
    assert cost({**deeper, "polish_steps": 1000}) > cost(deeper)


def test_status_names_a_polished_network():
    from alcore.surrogate.selection_record import architecture_text  # noqa: PLC0415

    assert architecture_text({"hidden": [128, 128, 128], "activation": "silu", "dropout": 0.05,
                              "polish_steps": 1000}) == "3x128 silu, dropout 0.05, L-BFGS polish 1000"
    assert architecture_text({"hidden": [128, 128], "activation": "silu", "dropout": 0.05,
                              "polish_steps": 0}) == "2x128 silu, dropout 0.05"


def test_a_polished_cross_validation_continues_from_the_unpolished_one_with_the_same_result():
    """Model selection scores "deeper + polish" by polishing "deeper"'s fold networks: the same
    out-of-fold predictions and std as training the polished candidate from scratch."""
    X, y = _smooth_data(60)
    folds = np.arange(60) % 3
    kw = dict(hidden=(16, 16), min_steps=60, epochs=1, seed=3, device="cpu")
    plain = DropoutMLP(**kw).cross_validate(X, y, folds, T=8, seed=5)
    scratch = DropoutMLP(**kw, polish_steps=25).cross_validate(X, y, folds, T=8, seed=5)
    continued = DropoutMLP(**kw, polish_steps=25).cross_validate(X, y, folds, T=8, seed=5, continue_from=plain)
    np.testing.assert_array_equal(continued.pred, scratch.pred)
    np.testing.assert_array_equal(continued.mc_std, scratch.mc_std)
    assert not np.array_equal(plain.pred, scratch.pred)           # the polish did something
    # the source is copied, not polished in place: continuing again gives the same again
    again = DropoutMLP(**kw, polish_steps=25).cross_validate(X, y, folds, T=8, seed=5, continue_from=plain)
    np.testing.assert_array_equal(again.pred, scratch.pred)


def test_continuing_a_cross_validation_is_refused_when_anything_but_the_polish_differs():
    X, y = _smooth_data(60)
    folds = np.arange(60) % 3
    kw = dict(hidden=(16, 16), min_steps=30, epochs=1, seed=3, device="cpu")
    plain = DropoutMLP(**kw).cross_validate(X, y, folds, T=4, seed=5)
    polished = lambda **over: DropoutMLP(**{**kw, "polish_steps": 5, **over})  # noqa: E731
    with pytest.raises(ValueError, match="other settings or seeds"):
        polished(hidden=(16, 8)).cross_validate(X, y, folds, T=4, seed=5, continue_from=plain)
    with pytest.raises(ValueError, match="other settings or seeds"):
        polished(seed=4).cross_validate(X, y, folds, T=4, seed=5, continue_from=plain)
    with pytest.raises(ValueError, match="other settings or seeds"):
        polished().cross_validate(X, y, folds, T=4, seed=6, continue_from=plain)
    with pytest.raises(ValueError, match="other rows, labels or folds"):
        polished().cross_validate(X, y + 1.0, folds, T=4, seed=5, continue_from=plain)
    with pytest.raises(ValueError, match="other rows, labels or folds"):
        polished().cross_validate(X, y, (np.arange(60) + 1) % 3, T=4, seed=5, continue_from=plain)
    with pytest.raises(ValueError, match="other rows, labels or folds"):
        polished().cross_validate(X, y, folds, T=4, seed=5, only_folds=[0], continue_from=plain)
    twice = polished().cross_validate(X, y, folds, T=4, seed=5, continue_from=plain)
    with pytest.raises(ValueError, match="more than this"):
        DropoutMLP(**kw, polish_steps=2).cross_validate(X, y, folds, T=4, seed=5, continue_from=twice)


def test_model_selection_trains_a_polished_candidate_only_by_its_polish(monkeypatch):
    """select_model runs AdamW once for "deeper" and "deeper + polish", with unchanged scores."""
    import alcore.model.dropout_mlp as dm  # noqa: PLC0415
    from alcore.model.selection import Candidate, kfold_ids, cv_score, select_model  # noqa: PLC0415

    X, y = _smooth_data(60)
    base = dict(hidden=(16, 16), min_steps=40, epochs=1)
    space = (Candidate("plain", {}), Candidate("polished", {"polish_steps": 20}),
             Candidate("wider", {"hidden": (24, 24)}))
    trainings = []
    real = dm.train_stacked
    monkeypatch.setattr(dm, "train_stacked", lambda *a, **kw: (trainings.append(1), real(*a, **kw))[1])
    sel = select_model(X, y, base, space, folds=3, seed=2, T=4)
    assert len(trainings) == 2                                     # plain and wider; polished continued
    scratch = DropoutMLP(**base, polish_steps=20, seed=2, device="cpu").cross_validate(
        X, y, kfold_ids(60, 3, 2), T=4, seed=2)
    by_name = {s.name: s.score for s in sel.scores}
    assert by_name["polished"] == cv_score(y[scratch.rows], scratch.pred)[0]
