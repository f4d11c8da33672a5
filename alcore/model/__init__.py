"""alflow's surrogate: the network, its training, its state format, and the one fit function.

* :mod:`alcore.model.activations` — the one activation table (state codes);
* :mod:`alcore.model.network` — stacked MLPs (ensemble members, CV folds) and their training
  with torch autograd + AdamW;
* :mod:`alcore.model.dropout_mlp` — `DropoutMLP`, the public model (fit / predict / sample /
  predict_with_std / get_state / from_state / load_state);
* :mod:`alcore.model.state` — the state format (plain numpy arrays);
* :mod:`alcore.model.threads` — thread settings for training;
* :mod:`alcore.model.calibration`, :mod:`alcore.model.selection`, :mod:`alcore.model.fit` —
  post-hoc std calibration, K-fold model selection, and `fit_surrogate`, the function that the
  campaign's train step and the study both call.
"""
from alcore.model.activations import ACTIVATION_TABLE, ACTIVATIONS, get_activation
from alcore.model.dropout_mlp import DROPOUT_LAYERS, LR_SCHEDULES, CrossValidation, DropoutMLP, FitReport
from alcore.model.state import STATE_FORMAT_VERSION

__all__ = ["ACTIVATIONS", "ACTIVATION_TABLE", "get_activation", "DropoutMLP", "FitReport", "CrossValidation",
           "LR_SCHEDULES", "DROPOUT_LAYERS", "STATE_FORMAT_VERSION"]
