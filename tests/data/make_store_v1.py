"""Write tests/data/store_v1/: a store in the format of alflow before the per-evaluation times,
failure kinds, iteration info and journal v2 (schema 1, journal v1), left as a kill -9 leaves it
(two events only in the journal). Run with THAT version of alflow on the path, e.g.

    git archive e163bee | tar -x -C /tmp/base
    PYTHONPATH=/tmp/base .venv/bin/python tests/data/make_store_v1.py

Kept so that the fixture can be remade; tests/test_store_compat.py reads it with today's code.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from alcore.store import CampaignStore

out = Path(__file__).resolve().parent / "store_v1" / "c.h5"
for f in out.parent.glob("c.h5*"):
    f.unlink()
s = CampaignStore.create(out, config={"campaign": {"name": "v1"}, "budget": {"max_labels": 6}},
                         oracle_info={"name": "toy", "version": "0.9", "input_names": ["a", "b"],
                                      "output_names": ["u", "v"]},
                         pool_X=np.arange(12.0).reshape(6, 2), test_X=np.ones((2, 2)),
                         test_y=np.zeros((2, 2)), seeds={"pool": 3})
s.mark_requested([0, 1, 2, 3], 0, [0.4, 0.3, 0.2, 0.1])
s.record_label(0, [0.0, 0.5], 1.5, "w0")
s.record_failure(1, "boom: exit 3", 0.5, "w1", 3)
s.record_iteration(0, {"rmse": 0.5}, {"train_s": 1.0})
s.save_checkpoint(0, {"w": np.ones(3)})  # folds everything above into c.h5
s.record_label(2, [2.0, 2.5], 2.0, "w2")  # from here on only in the journal
s.mark_requested([4], 1, [0.9])
s._journal.close()  # as a kill -9 leaves it: no fold, lock file left behind
s._lock.path.unlink()
s._lock.info = None
s._closed = True
print("wrote", out, file=sys.stderr)
