"""Learning-efficiency studies of alflow (issues 6 and 8): does active learning need fewer
simulator runs than random sampling?

Pool-based simulation: every problem's candidate pool and independent test set are labelled
once (``problems``), then each run replays a campaign with the oracle replaced by a lookup into
those labels (``runner``).  Runs are paired across strategies by seed, written one JSON file per
run (resumable), and summarised by ``analysis`` and ``plots``.  The command line is
``python -m benchmarks.study --help``.
"""
