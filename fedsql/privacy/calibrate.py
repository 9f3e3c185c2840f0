"""Noise calibration: from a query's (epsilon, delta) and its measures to each silo's noise share.

One query has one epsilon, converted once to rho (``fedsql.privacy.accounting``). The rho is
split across the query's measures in proportion to their ``share`` (``rho_j = rho * share_j /
sum_i share_i``; equal shares split it equally). The planner chooses the shares to minimise the
error of what the analyst asked for (``fedsql.sql.budget_split``: ``share_j = sqrt(w_j) *
Delta_j`` minimises ``sum_j w_j sigma_j²``). For each measure j the released total must carry
discrete Gaussian noise of standard deviation ``sigma_j = Delta_j / sqrt(2 rho_j)`` in encoded
integer units, where ``Delta_j`` is the measure's L2 sensitivity after fixed-point encoding.
Costs add up (zCDP composition): ``sum_j Delta_j² / (2 sigma_j²) = rho``.

The noise is distributed: each silo adds ``N_Z(0, sigma_local²)`` with
``sigma_local = sigma_j / sqrt(m_min)``, where ``m_min`` is the minimum number of honest silos
whose shares are guaranteed to be in a released total (SECAGG.md section 2). The sum of
independent discrete Gaussians is not exactly a discrete Gaussian; Kairouz, Liu and Steinke
(ICML 2021) bound the difference, which is negligible once ``sigma_local >= 2`` encoded units,
so that is enforced.

Each share is drawn in two independent parts ("add then remove"): a base part of scale
``sigma_base = sigma_j / sqrt(m_all)`` with ``m_all = n - c_max`` (the honest silos guaranteed
when every cohort member's upload is in the total), and an extra part of scale
``sigma_extra = sqrt(sigma_j²/m_min - sigma_j²/m_all)``, so ``sigma_base² + sigma_extra² =
sigma_local²``. When every cohort member answers, the sum of the extras is removed
(:mod:`fedsql.secagg.extra`) and the released total carries ``n·sigma_base²``, which is at least
``sigma_j²`` from the honest silos alone; otherwise it carries ``|S|·sigma_local²`` as before.
The base part is the one that always remains, so it is the one held to ``>= 2`` encoded units.
When ``m_min == m_all`` there is no extra part.

Fixed point: integral measures are sent as integers (2^0) unless their base share would fall
below 2 units; other measures use the fewest fraction bits that give a base share of at least
64 units, so rounding is negligible next to the noise that remains. Rounding can move each
cell one unit, so encoded sensitivity adds ``sqrt(min(row_cap, cells))`` (the number of cells
one unit can touch) unless the measure is integral and sent unscaled.

Everything here is pure, deterministic float arithmetic: hub and silos compute the same plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from fedsql.errors import DataError, QueryRejected
from fedsql.privacy.accounting import rho_for_epsilon

__all__ = [
    "MAX_FRAC_BITS",
    "MIN_SIGMA_LOCAL",
    "TARGET_SIGMA_FRACTIONAL",
    "MeasureNoise",
    "MeasureSpec",
    "NoisePlan",
    "plan_noise",
]

#: Smallest noise share, in encoded units, for which the distributed discrete Gaussian is safe.
MIN_SIGMA_LOCAL = 2.0
#: Noise share, in encoded units, that fractional measures aim for so rounding is negligible.
TARGET_SIGMA_FRACTIONAL = 64.0
#: Most fraction bits a measure is given.
MAX_FRAC_BITS = 24


@dataclass(frozen=True)
class MeasureSpec:
    """What calibration needs to know about one measure of a query.

    Attributes:
        name: The measure's name, unique within the query.
        sensitivity: L2 sensitivity in value units of the measure's whole cell vector, for one
            privacy unit (k for COUNT, k·B for SUM, ...).
        clip: The largest magnitude one row adds (1 for counts, B for sums).
        integral: True when every per-row value is an integer, so unscaled sums are exact.
        cells: Number of cells of the vector (the size of the public key space).
        row_cap: Most rows one unit may contribute (k).
        share: Relative share of the query's rho for this measure (positive; only the
            ratios between the measures of one query matter).
        group: Measures with the same non-empty group are one vector (e.g. the bins of a
            histogram): ``sensitivity`` is the L2 sensitivity of the whole group, which is
            noised as one Gaussian mechanism and costs the sum of its members' shares.
    """

    name: str
    sensitivity: float
    clip: float
    integral: bool
    cells: int
    row_cap: int
    share: float = 1.0
    group: str = ""


@dataclass(frozen=True)
class MeasureNoise:
    """The calibrated noise of one measure.

    Attributes:
        name: The measure's name.
        rho: The share of the query's rho spent on this measure (for a member of a group,
            its part of the group's rho; the noise is calibrated to the group's whole rho).
        frac_bits: Fixed-point fraction bits f: values are sent as round(x·2^f).
        sensitivity_encoded: L2 sensitivity in encoded units, rounding included.
        sigma_total: Standard deviation, in value units, of the released total when exactly
            ``m_min`` shares are in it: ``sigma_local_encoded·sqrt(m_min)/2^f``.
        sigma_local_encoded: Each silo's whole noise share, in encoded units: the scale the
            silo uploads, ``sqrt(sigma_base_encoded² + sigma_extra_encoded²)``.
        sigma_base_encoded: The part of the share that stays in the total when every cohort
            member answers, ``sigma_j / sqrt(m_all)`` in encoded units (>= 2).
        sigma_extra_encoded: The part removed when every cohort member answers,
            ``sqrt(sigma_j²/m_min - sigma_j²/m_all)``; 0.0 when ``m_min == m_all``.
    """

    name: str
    rho: float
    frac_bits: int
    sensitivity_encoded: float
    sigma_total: float
    sigma_local_encoded: float
    sigma_base_encoded: float
    sigma_extra_encoded: float


@dataclass(frozen=True)
class NoisePlan:
    """The noise of one query: its privacy cost and every measure's calibration.

    Attributes:
        epsilon: The query's epsilon.
        delta: The federation's delta.
        rho: The zCDP cost of the query, the sum of the measures' rho.
        m_min: Minimum number of noise shares guaranteed in a released total.
        measures: One entry per measure, in the order given to ``plan_noise``.
        m_all: Honest shares guaranteed when every cohort member answers (``n - c_max``).
    """

    epsilon: float
    delta: float
    rho: float
    m_min: int
    measures: tuple[MeasureNoise, ...]
    m_all: int

    @property
    def has_extra(self) -> bool:
        """Whether the shares have an extra part, removed when every cohort member answers."""
        return self.m_all > self.m_min

    def measure(self, name: str) -> MeasureNoise:
        """The calibration of the measure called ``name``.

        Args:
            name: A measure name of this plan.

        Returns:
            Its ``MeasureNoise``.

        Raises:
            DataError: The plan has no such measure.
        """
        for m in self.measures:
            if m.name == name:
                return m
        raise DataError(f"the noise plan has no measure named {name!r}")

    def sigma_released(self, name: str, survivors: int, *, all_answered: bool = False) -> float:
        """Standard deviation, in value units, of the noise in a total over ``survivors`` silos.

        Every surviving silo added one share, so the total's noise has variance
        ``survivors·sigma_local_encoded²`` in encoded units; when every cohort member
        answered and the extras were removed (``all_answered``), ``survivors·sigma_base²``.

        Args:
            name: A measure name of this plan.
            survivors: Number of silos whose shares are in the total, at least 1.
            all_answered: True when the extra parts of the shares were removed from the total.

        Returns:
            ``sqrt(survivors)·sigma/2^f`` with sigma the base or the whole share.

        Raises:
            DataError: Unknown measure, or ``survivors`` is not a positive integer.
        """
        if isinstance(survivors, bool) or not isinstance(survivors, int) or survivors < 1:
            raise DataError("the number of survivors must be a positive integer")
        m = self.measure(name)
        share = m.sigma_base_encoded if all_answered else m.sigma_local_encoded
        return math.ldexp(math.sqrt(survivors) * share, -m.frac_bits)


def _encoded_sensitivity(spec: MeasureSpec, frac_bits: int) -> float:
    """L2 sensitivity after encoding with ``frac_bits``, including rounding of touched cells."""
    scaled = math.ldexp(spec.sensitivity, frac_bits)
    if spec.integral and frac_bits == 0:
        return scaled
    return scaled + math.sqrt(min(spec.row_cap, spec.cells))


def _check_spec(spec: MeasureSpec) -> None:
    """Refuse a measure whose declared bounds cannot be calibrated."""
    label = f"measure {spec.name!r}"
    for field, value in (("sensitivity", spec.sensitivity), ("clip", spec.clip)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise QueryRejected(f"{label}: {field} must be a number")
        if not math.isfinite(value):
            raise QueryRejected(f"{label}: {field} is not finite; declare finite bounds")
    if spec.sensitivity <= 0.0:
        raise QueryRejected(
            f"{label}: sensitivity must be positive; widen the column's bounds or drop it"
        )
    if spec.clip < 0.0:
        raise QueryRejected(f"{label}: clip must not be negative")
    if spec.sensitivity < spec.clip:
        raise QueryRejected(
            f"{label}: sensitivity is below what a single row adds (clip); it cannot be right"
        )
    share = spec.share
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not share > 0.0:
        raise QueryRejected(f"{label}: share must be a positive number")
    if not math.isfinite(share):
        raise QueryRejected(f"{label}: share is not finite")
    for field, count in (("cells", spec.cells), ("row_cap", spec.row_cap)):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise QueryRejected(f"{label}: {field} must be a positive integer")


def _calibrate(
    spec: MeasureSpec, rho_j: float, m_min: int, m_all: int, epsilon: float
) -> MeasureNoise:
    """Choose fraction bits and noise for one measure given its share of rho.

    The fraction bits are chosen for the base share, the noise that always remains.
    """
    root_m = math.sqrt(m_min)
    denom = math.sqrt(2.0 * rho_j)
    target = MIN_SIGMA_LOCAL if spec.integral else TARGET_SIGMA_FRACTIONAL
    chosen: tuple[int, float, float] | None = None
    for frac_bits in range(MAX_FRAC_BITS + 1):
        sens = _encoded_sensitivity(spec, frac_bits)
        sigma_total_enc = sens / denom
        chosen = (frac_bits, sens, sigma_total_enc)
        if sigma_total_enc / math.sqrt(m_all) >= target:
            break
    assert chosen is not None
    frac_bits, sens, sigma_total_enc = chosen
    sigma_local = sigma_total_enc / root_m
    sigma_base = sigma_total_enc / math.sqrt(m_all) if m_all > m_min else sigma_local
    sigma_extra = 0.0
    if m_all > m_min:
        sigma_extra = math.sqrt(sigma_total_enc**2 / m_min - sigma_total_enc**2 / m_all)
    if sigma_base < MIN_SIGMA_LOCAL:
        raise QueryRejected(
            f"epsilon {epsilon:g} is too large to add safe noise to measure {spec.name!r}; "
            "lower epsilon"
        )
    return MeasureNoise(
        name=spec.name,
        rho=rho_j,
        frac_bits=frac_bits,
        sensitivity_encoded=sens,
        sigma_total=math.ldexp(sigma_local * root_m, -frac_bits),
        sigma_local_encoded=sigma_local,
        sigma_base_encoded=sigma_base,
        sigma_extra_encoded=sigma_extra,
    )


def plan_noise(
    epsilon: float,
    delta: float,
    measures: Sequence[MeasureSpec],
    m_min: int,
    m_all: int | None = None,
) -> NoisePlan:
    """Calibrate every measure of a query to spend exactly its epsilon at ``delta``.

    Args:
        epsilon: The query's epsilon, positive.
        delta: The federation's delta, in (0, 1).
        measures: The query's measures (at least one, unique names).
        m_min: Minimum number of honest silos whose noise shares are in any released total.
        m_all: Honest silos guaranteed when every cohort member answers (``n - c_max``), at
            least ``m_min``; None (or ``m_min``) gives shares without an extra part.

    Returns:
        The ``NoisePlan``: rho = ``rho_for_epsilon(epsilon, delta)``, split in proportion to
        the measures' shares.

    Raises:
        QueryRejected: ``epsilon`` is not positive, there are no measures, two measures share a
            name, a measure's bounds cannot be calibrated, or epsilon is too large for safe
            noise.
        DataError: ``delta`` is not in (0, 1), ``m_min`` is not a positive integer or
            ``m_all`` is not an integer of at least ``m_min``.

    >>> spec = MeasureSpec("n", sensitivity=1.0, clip=1.0, integral=True, cells=3, row_cap=1)
    >>> plan = plan_noise(1.0, 1e-6, [spec], m_min=1)
    >>> plan.measures[0].frac_bits, round(plan.measures[0].sigma_local_encoded, 4)
    (0, 4.5309)
    >>> split = plan_noise(0.1, 1e-6, [spec], m_min=2, m_all=3).measures[0]
    >>> round(split.sigma_base_encoded**2 + split.sigma_extra_encoded**2, 6) == round(
    ...     split.sigma_local_encoded**2, 6)
    True
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        raise QueryRejected("epsilon must be a number")
    eps = float(epsilon)
    if not (eps > 0.0) or not math.isfinite(eps):
        raise QueryRejected("epsilon must be positive and finite")
    if isinstance(m_min, bool) or not isinstance(m_min, int) or m_min < 1:
        raise DataError("m_min must be a positive integer")
    if m_all is None:
        m_all = m_min
    if isinstance(m_all, bool) or not isinstance(m_all, int) or m_all < m_min:
        raise DataError("m_all must be an integer of at least m_min")
    specs = tuple(measures)
    if not specs:
        raise QueryRejected("the query has no measures to release")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise QueryRejected("two measures of the query share a name")
    for spec in specs:
        _check_spec(spec)
    rho = rho_for_epsilon(eps, delta)
    total_share = math.fsum(float(spec.share) for spec in specs)
    groups: dict[str, list[MeasureSpec]] = {}
    for spec in specs:
        if spec.group:
            groups.setdefault(spec.group, []).append(spec)
    for name, members in groups.items():
        if len({m.sensitivity for m in members}) != 1:
            raise QueryRejected(f"the measures of group {name!r} declare different sensitivities")
    noises = []
    for spec in specs:
        rho_j = rho * float(spec.share) / total_share
        if not spec.group:
            noises.append(_calibrate(spec, rho_j, m_min, m_all, eps))
            continue
        members = groups[spec.group]
        rho_group = rho * math.fsum(float(m.share) for m in members) / total_share
        # the group is one vector: rounding touches at most min(k, cells * members) coordinates
        joint = replace(spec, cells=spec.cells * len(members))
        noises.append(replace(_calibrate(joint, rho_group, m_min, m_all, eps), rho=rho_j))
    return NoisePlan(
        epsilon=eps,
        delta=float(delta),
        rho=rho,
        m_min=m_min,
        measures=tuple(noises),
        m_all=m_all,
    )
