"""Campaign reports: learning curves, labels over time, where the labels went, oracle wall
times and failures, as a self-contained HTML page plus PNGs and a markdown summary.

``write_report(store_path_or_paths, out_dir=None) -> dict[str, Path]`` is the public entry
point (used by ``alflow report``). Several stores give a comparison, one line per strategy.
"""
from __future__ import annotations

from .build import write_report
from .data import CampaignData, load_campaign

__all__ = ["CampaignData", "load_campaign", "write_report"]
