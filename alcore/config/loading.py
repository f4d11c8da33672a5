"""Reading a config: TOML bytes -> a validated :class:`CampaignConfig`, paths made absolute.

Relative paths in the file are resolved against the directory of the config file, so a config
works the same from any current directory. Which values are paths:

* ``campaign.store``, ``campaign.report_dir``, ``pool.file``, ``test.file``;
* an oracle given as ``some/file.py:attr``;
* in ``oracle.params``, a string under a key that names a path: ``path``, ``file``, ``dir``,
  ``workdir``, ``directory``, or a key ending in ``_path``, ``_file`` or ``_dir`` (``x_path``,
  ``data_file``). A URL (``scheme://...``) is left alone. Other values are passed as written:
  alflow cannot tell a relative path from any other string (a ``command`` oracle's ``argv``
  runs in a fresh working directory per evaluation: give its script as an absolute path or a
  path-named parameter).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from alcore.config.errors import ConfigError
from alcore.config.sections import CampaignConfig, did_you_mean

__all__ = ["load_config", "parse_config", "is_path_param"]

_ROOT_SECTIONS = list(CampaignConfig.model_fields)


def _section_model(name: str) -> type[BaseModel] | None:
    ann = CampaignConfig.model_fields.get(name)
    return ann.annotation if ann is not None else None  # type: ignore[return-value]


def _format_error(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    path = ".".join(loc) if loc else "(top level)"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        parent = _section_model(loc[0]) if len(loc) == 2 else None
        allowed = list(parent.model_fields) if parent is not None else (
            _ROOT_SECTIONS if len(loc) == 1 else []
        )
        hint = did_you_mean(loc[-1], allowed) if allowed else ""
        listing = f" (allowed: {', '.join(allowed)})" if allowed and not hint else ""
        return f"{path}: unknown key{hint}{listing}"
    if kind == "missing":
        return f"{path}: required key is missing"
    msg = str(err.get("msg", "invalid value"))
    msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
    if kind == "literal_error":
        expected = (err.get("ctx") or {}).get("expected", "")
        choices = re.findall(r"'([^']*)'", expected)
        got = err.get("input")
        return (
            f"{path}: {got!r} is not one of {', '.join(choices)}"
            f"{did_you_mean(str(got), choices)}"
        )
    if not loc:
        return msg  # a cross-section check: its message names the keys
    got = err.get("input")
    if kind not in ("value_error", "assertion_error") and not isinstance(got, (dict, list)):
        return f"{path}: {msg} (got {got!r})"
    return f"{path}: {msg}"


_PATH_KEYS = ("path", "file", "dir", "workdir", "directory")
_PATH_SUFFIXES = ("_path", "_file", "_dir")


def is_path_param(key: str) -> bool:
    """Whether an ``oracle.params`` key names a path (resolved against the config's folder)."""
    k = str(key).lower()
    return k in _PATH_KEYS or k.endswith(_PATH_SUFFIXES)


def _absolute(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make relative paths absolute against ``base`` (the config file's folder), in place."""

    def fix(section: str, key: str) -> None:
        sec = raw.get(section)
        if isinstance(sec, dict) and isinstance(sec.get(key), str):
            sec[key] = _absolute(sec[key], base)

    fix("campaign", "store")
    fix("campaign", "report_dir")
    fix("pool", "file")
    fix("test", "file")
    oracle = raw.get("oracle")
    params = oracle.get("params") if isinstance(oracle, dict) else None
    if isinstance(params, dict):
        for key, value in params.items():
            if is_path_param(key) and isinstance(value, str) and value and "://" not in value:
                params[key] = _absolute(value, base)
    if isinstance(oracle, dict) and isinstance(oracle.get("name"), str):
        name = oracle["name"]
        m = re.fullmatch(r"(.+\.py):([A-Za-z_][\w.]*)", name)
        if m:
            oracle["name"] = f"{_absolute(m.group(1), base)}:{m.group(2)}"


def parse_config(raw: dict[str, Any], base_dir: str | Path | None = None,
                 source: str | None = None) -> CampaignConfig:
    """Validate a config dict (as read from TOML). Raises ``ConfigError`` naming every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(["config must be a table of sections"], source)
    raw = _deepcopy(raw)
    if base_dir is not None:
        _resolve_paths(raw, Path(base_dir))
    try:
        cfg = CampaignConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_format_error(e) for e in exc.errors()], source) from None
    cfg._source = source
    return cfg


def _deepcopy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy(v) for v in obj]
    return obj


def load_config(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign TOML file.

    Raises ``ConfigError`` (a ``ValueError``) for a missing/unreadable file, text that is not
    UTF-8 (TOML is UTF-8 by definition), bad TOML, unknown keys or bad values; the message is
    one line that names the file and each offending key.
    """
    p = Path(path).expanduser()
    src = str(path)
    if not p.exists():
        raise ConfigError(["file not found"], src)
    if p.is_dir():
        raise ConfigError(["is a directory, not a TOML file"], src)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], src) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                           "save the file as UTF-8"], src) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], src) from None
    return parse_config(raw, base_dir=p.resolve().parent, source=src)

