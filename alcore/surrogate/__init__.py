"""Using a campaign's surrogate: ``load_surrogate(store, model="best") -> Surrogate``.

Modules (one job each):

* :mod:`~alcore.surrogate.choice` — which checkpoint "best" / "last" / N means (pure; also
  used by the report and the Prefect summary so that all name the same model);
* :mod:`~alcore.surrogate.inputs` — checking and ordering user inputs, the extrapolation flag;
* :mod:`~alcore.surrogate.calibration` — the calibrated std (the merge seam with
  ``DropoutMLP.predict_with_std``);
* :mod:`~alcore.surrogate.surrogate` — ``Surrogate`` and ``load_surrogate``.

Importing this package does not import torch; loading a model does.
"""
from __future__ import annotations

from .choice import ModelChoice, SurrogateError, choose_model, parse_model_spec
from .inputs import ExtrapolationWarning, InputError
from .surrogate import Surrogate, load_surrogate

__all__ = ["ExtrapolationWarning", "InputError", "ModelChoice", "Surrogate", "SurrogateError",
           "choose_model", "load_surrogate", "parse_model_spec"]
