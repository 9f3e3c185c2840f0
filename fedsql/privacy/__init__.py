"""Differential privacy for fedsql: noise shares, calibration, accounting, accuracy and budgets.

The formulas are in PRIVACY.md. This is the only package that uses opendp.
"""

from __future__ import annotations

from fedsql.privacy.accounting import (
    MAX_MICRO,
    MICRO,
    epsilon_for_rho,
    epsilon_to_micro,
    micro_to_epsilon,
    rho_for_epsilon,
    rho_for_epsilon_closed_form,
)
from fedsql.privacy.accuracy import Z95, delta_method_ratio, interval, z_for
from fedsql.privacy.calibrate import (
    MAX_FRAC_BITS,
    MIN_SIGMA_LOCAL,
    TARGET_SIGMA_FRACTIONAL,
    MeasureNoise,
    MeasureSpec,
    NoisePlan,
    plan_noise,
)
from fedsql.privacy.ledger import Ledger, LedgerEntry
from fedsql.privacy.noise import sample_discrete_gaussian

__all__ = [
    "MAX_FRAC_BITS",
    "MAX_MICRO",
    "MICRO",
    "MIN_SIGMA_LOCAL",
    "TARGET_SIGMA_FRACTIONAL",
    "Z95",
    "Ledger",
    "LedgerEntry",
    "MeasureNoise",
    "MeasureSpec",
    "NoisePlan",
    "delta_method_ratio",
    "epsilon_for_rho",
    "epsilon_to_micro",
    "interval",
    "micro_to_epsilon",
    "plan_noise",
    "rho_for_epsilon",
    "rho_for_epsilon_closed_form",
    "sample_discrete_gaussian",
    "z_for",
]
