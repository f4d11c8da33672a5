"""Campaign configuration: one TOML file, validated before anything runs.

Modules (one job each; import the names from ``alcore.config``):

* :mod:`~alcore.config.sections` — the pydantic sections (``[campaign]``, ``[oracle]``, ...)
  and :class:`CampaignConfig`; new keys go into their section class there;
* :mod:`~alcore.config.loading` — :func:`load_config` / :func:`parse_config`: TOML to a
  validated config, relative paths made absolute against the config file's folder;
* :mod:`~alcore.config.preflight` — :func:`preflight`: the checks against the oracle, the files
  and this machine (:mod:`~alcore.config.machine`, :mod:`~alcore.config.memory`,
  :mod:`~alcore.config.points`) that ``validate``, ``run`` and ``open_campaign`` share;
* :mod:`~alcore.config.oracle` — :func:`build_oracle`: the config's oracle, or one line why not;
* :mod:`~alcore.config.resume` — :data:`MUTABLE_KEYS` and :func:`check_resume`: what a resume
  may change;
* :mod:`~alcore.config.deadline` — :func:`resolve_deadline`: ``[budget] deadline`` as a
  timezone-aware datetime, and the warning when it is more than 20 h away;
* :mod:`~alcore.config.errors` — :class:`ConfigError` (one line, exit code 2) and
  :class:`ConfigMismatchError`.
"""

from __future__ import annotations

from alcore.config.deadline import (deadline_warning, describe_deadline, machine_timezone,
                                    machine_timezone_name, next_deadline, resolve_deadline)
from alcore.config.errors import ConfigError, ConfigMismatchError
from alcore.config.loading import load_config, parse_config
from alcore.config.oracle import build_oracle
from alcore.config.preflight import Preflight, preflight
from alcore.config.resume import MUTABLE_KEYS, check_resume
from alcore.config.sections import (AcquisitionSection, BudgetSection, CampaignConfig, CampaignSection,
                                    DaskSection, ModelSection, OracleSection, PoolSection, TestSection,
                                    strategy_names, strategy_parameters)

__all__ = [
    "ConfigError",
    "ConfigMismatchError",
    "CampaignConfig",
    "CampaignSection",
    "OracleSection",
    "PoolSection",
    "TestSection",
    "ModelSection",
    "AcquisitionSection",
    "BudgetSection",
    "DaskSection",
    "load_config",
    "parse_config",
    "strategy_names",
    "strategy_parameters",
    "preflight",
    "build_oracle",
    "Preflight",
    "MUTABLE_KEYS",
    "check_resume",
    "resolve_deadline",
    "deadline_warning",
    "describe_deadline",
    "machine_timezone",
    "machine_timezone_name",
    "next_deadline",
]
