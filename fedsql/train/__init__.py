"""Federated model training on top of secure sums: linear and logistic regression.

The planner (``fedsql.sql.regression``) turns ``LINEAR_REGRESSION`` and ``LOGISTIC_REGRESSION``
into plans whose measures are bounded sums; this package reads the noisy totals back into
models: least squares in one round, Newton's method (IRLS) over rounds, standard errors that
count both sampling and the privacy noise, and a small model object that predicts locally.
"""

from __future__ import annotations

from fedsql.train.fit import CellFit
from fedsql.train.linear import fit_linear
from fedsql.train.logistic import RoundTotals, fit_logistic
from fedsql.train.model import Model, models_from_table
from fedsql.train.result import model_table

__all__ = [
    "CellFit",
    "Model",
    "RoundTotals",
    "fit_linear",
    "fit_logistic",
    "model_table",
    "models_from_table",
]
