"""Prefect 3 flows around the campaign steps, and the ``alflow`` command line.

Importing this package is cheap: Prefect is imported only by the modules that need it
(``flows.campaign``, ``flows.tasks``, ``flows.artifacts``), so ``alflow validate`` and
``alflow status`` start fast.
"""

__all__ = ["campaign", "tasks", "artifacts", "cli"]
