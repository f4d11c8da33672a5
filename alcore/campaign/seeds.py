"""Every random seed of a campaign, defined in one place, stored once and read back.

Why one place: a campaign must be reproducible from its store alone, so the seeds the steps
use are the seeds the store says were used. :func:`seeds` derives them from
``campaign.seed`` when the store is created; the store keeps them (``meta/seeds_json``); every
step reads them back through the session's :class:`Seeds`, never from the config.

The per-iteration seeds are ``base + iteration`` (the model of iteration ``i`` is seeded with
``model + i``, its acquisition with ``acquisition + i``, the MC samples of its evaluation with
``evaluation + i``). The bases are spaced so that two campaign seeds do not share a model or
acquisition seed for the first thousand iterations (``1000 * seed`` and ``100_003 * seed``:
the rules alflow has always used, so older stores give the same numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Seeds", "seeds"]


@dataclass(frozen=True)
class Seeds:
    """The seeds of one campaign (all non-negative integers)."""

    pool: int          # the candidate design over the oracle's bounds
    test: int          # the random test design of a simulator campaign
    table_split: int   # the pool/test permutation of a table oracle's rows
    initial: int       # the random initial design drawn from the pool
    model: int         # base of the model seed of iteration i: model + i
    acquisition: int   # base of the acquisition seed of iteration i: acquisition + i
    evaluation: int    # base of the MC-sample seed of iteration i's metrics: evaluation + i

    def model_seed(self, iteration: int) -> int:
        return self.model + int(iteration)

    def acquisition_seed(self, iteration: int) -> int:
        return self.acquisition + int(iteration)

    def evaluation_seed(self, iteration: int) -> int:
        return self.evaluation + int(iteration)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_store(cls, stored: Mapping[str, Any], campaign_seed: int) -> "Seeds":
        """The seeds a store recorded; a store written before this format gets the same
        numbers from :func:`seeds` (its steps used those formulas)."""
        derived = seeds(campaign_seed).to_dict()
        if not all(k in stored for k in derived):
            return cls(**derived)
        return cls(**{k: int(stored[k]) for k in derived})


def seeds(campaign_seed: int) -> Seeds:
    """All seeds of a campaign from its ``campaign.seed``."""
    s = int(campaign_seed)
    return Seeds(pool=s, test=s + 7919, table_split=s, initial=s + 1, model=1000 * s,
                 acquisition=100_003 * s, evaluation=s)
