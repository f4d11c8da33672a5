"""The California housing data as a :class:`~oracles.table.TableOracle` (``california``).

The StatLib file ``cal_housing.data`` (Pace & Barry 1997; 20,640 rows, no header) has the raw
block-group columns; scikit-learn's ``fetch_california_housing`` derives 8 features from it.
We derive the same ones here so that alflow needs neither sklearn nor a network:

    MedInc = median_income, HouseAge = housing_median_age,
    AveRooms = total_rooms / households, AveBedrms = total_bedrooms / households,
    Population = population, AveOccup = population / households, Latitude, Longitude;
    target MedHouseVal = median_house_value / 100,000.

Where the file is looked for, in order: the ``path`` parameter; the environment variable
``ALFLOW_CAL_HOUSING``; ``../shared/data/cal_housing.data`` relative to the project root and
to the current directory. Failing those, sklearn's downloader if sklearn is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .table import TableOracle

FEATURES = ("MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude")
TARGET = ("MedHouseVal",)
ENV_VAR = "ALFLOW_CAL_HOUSING"
FILENAME = "cal_housing.data"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def candidate_paths(path: str | os.PathLike | None = None) -> list[Path]:
    """Where the StatLib file is looked for, in order."""
    out: list[Path] = []
    if path is not None:
        out.append(Path(path))
    if os.environ.get(ENV_VAR):
        out.append(Path(os.environ[ENV_VAR]))
    out.append(_PROJECT_ROOT / ".." / "shared" / "data" / FILENAME)
    out.append(Path.cwd() / ".." / "shared" / "data" / FILENAME)
    return out


def features_from_statlib(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8 features and the target (100k USD) from the 9 raw StatLib columns."""
    raw = np.asarray(raw, dtype=float)
    if raw.ndim != 2 or raw.shape[1] != 9:
        raise ValueError(f"california: expected 9 columns in {FILENAME}, got shape {raw.shape}")
    lon, lat, age, rooms, bedrooms, pop, households, income, value = raw.T
    X = np.column_stack([income, age, rooms / households, bedrooms / households, pop,
                         pop / households, lat, lon])
    return X, value / 100_000.0


def load_california(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(X (20640, 8), y (20640,), source) from the first place the data is found."""
    tried = candidate_paths(path)
    for p in tried:
        if p.is_file():
            return (*features_from_statlib(np.loadtxt(p, delimiter=",", ndmin=2)), str(p.resolve()))
        if path is not None and p == Path(path):
            raise FileNotFoundError(f"california: path={str(path)!r} is not a file")
    try:
        from sklearn.datasets import fetch_california_housing  # optional, never a dependency
    except ImportError:
        raise FileNotFoundError(
            f"california: {FILENAME} not found. Put the StatLib file at one of "
            + ", ".join(str(p) for p in tried)
            + f", or set {ENV_VAR}=/path/to/{FILENAME}, or pass path=..., "
            "or install scikit-learn to download it."
        ) from None
    data = fetch_california_housing()
    return np.asarray(data.data, float), np.asarray(data.target, float), "sklearn.datasets.fetch_california_housing"


def california(path: str | os.PathLike | None = None) -> TableOracle:
    """The California housing table oracle: 8 features -> median house value (100k USD)."""
    X, y, source = load_california(path)
    oracle = TableOracle(X=X, y=y, input_names=FEATURES, output_names=TARGET, name="california", source=source)
    oracle.description = "California housing (StatLib): 8 sklearn features -> median house value / 100k"
    return oracle
