"""The report and the Prefect summary artifact name the model `alflow predict` would use."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alcore.report import load_campaign, write_report
from alcore.store import CampaignStore
from alcore.surrogate import load_surrogate
from flows.artifacts import summary_markdown
from surrogate_helpers import run_campaign, store_with_models


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return run_campaign(tmp_path_factory.mktemp("campaign"))


def test_report_names_the_model_predict_uses_and_the_commands(store, tmp_path):
    s = load_surrogate(store)
    c = load_campaign(store)
    assert c.model_choice == s.choice
    paths = write_report(store, tmp_path / "rep")
    md = paths["markdown"].read_text()
    html = paths["html"].read_text()
    assert s.choice.describe() in md and s.choice.describe() in html
    assert f"alflow predict {store} POINTS.csv -o predictions.csv" in md
    assert f"alflow export-model {store} -o surrogate.onnx" in md
    assert f"alcore.load_surrogate('{store}')" in md


def test_report_of_a_store_without_checkpoint_says_there_is_no_model(tmp_path):
    st = CampaignStore.create(tmp_path / "s.h5", config={"campaign": {"name": "n"}},
                              oracle_info={"name": "x"}, pool_X=np.random.rand(5, 2))
    st.close()
    md = write_report(tmp_path / "s.h5", tmp_path / "rep")["markdown"].read_text()
    assert "| surrogate | no model checkpoint yet" in md and "alflow predict" not in md


def test_report_follows_unevaluated_checkpoints_like_load_surrogate(tmp_path):
    path = store_with_models(tmp_path / "s.h5", [{"on": "test", "rmse": 0.4},
                                                 {"on": "test", "rmse": 0.1}, None])
    assert load_campaign(path).model_choice == load_surrogate(path).choice
    assert load_surrogate(path).iteration == 1


def test_summary_artifact_names_the_same_model(store):
    with CampaignStore.open(store) as st:  # what campaign.history hands the artifact
        history = [{"iteration": it["iteration"], "metrics": it["metrics"],
                    "timings": it["timings"]} for it in st.iterations if it["finished"]]
    md = summary_markdown("two", history, spent=28, budget=28, failed=0, state="complete",
                          store=str(store))
    s = load_surrogate(store)
    assert f"**Surrogate:** {s.choice.describe()}" in md
    assert f"`alflow predict {store} POINTS.csv -o predictions.csv`" in md
    empty = summary_markdown("two", [], spent=0, budget=28, failed=0, state="starting",
                             store="/runs/a b.h5")
    assert "**Surrogate:** none yet" in empty
    train_only = [{"iteration": i, "metrics": {"on": "train", "rmse": r}} for i, r in
                  enumerate([0.3, 0.1, 0.2])]
    md = summary_markdown("t", train_only, spent=1, budget=2, failed=0, state="x",
                          store="/runs/a b.h5")
    assert "iteration 2 (best: no test set, so the newest checkpoint)" in md
    assert "`alflow predict '/runs/a b.h5' POINTS.csv" in md
