"""Fixed-point encoding of partial-aggregate vectors into Z_2^64, with the overflow band check.

Layout: a vector has ``cells * len(specs)`` coordinates, cell-major, so coordinate ``j`` belongs
to cell ``j // m`` and measure ``j % m`` (``m = len(specs)``). Every function here takes the
per-measure specs and the cell count and works on an ``(cells, m)`` view, so it is vectorised
whatever ``d`` is.

Integer bound of a measure: ``L = ceil(bound * 2^frac_bits)``, the largest magnitude one silo's
clipped and rounded coordinate can take. The plan-time check (SECAGG.md section 4) is
``n * L + k * sigma_total <= 2^62`` with ``k = 8``; decoding rejects any total coordinate ``z``
with ``|z| > n * L + k * sigma_total`` (the overflow band).

Extension point, two-limb encoding (not implemented): a measure whose band does not fit would
be sent as two coordinates (``hi = X >> 32`` signed, ``lo = X mod 2^32``, noise on ``lo``)
recombined with Python ints at decode time. It would add a ``limbs`` field to
:class:`CoordinateSpec`; :func:`dimension` is the single place that maps specs and cells to a
vector length, and :func:`encode` / :func:`decode` are the only places that would then split
and recombine limbs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from fedsql.errors import DataError, OverflowDetected, ProtocolError, QueryRejected

__all__ = [
    "HEADROOM",
    "MAX_FRAC_BITS",
    "OVERFLOW_SIGMAS",
    "CoordinateSpec",
    "band",
    "check_plan",
    "decode",
    "dimension",
    "encode",
]

_Scalar = TypeVar("_Scalar", bound=np.generic)

#: Largest allowed |total| of any coordinate (one bit below the int64 half-range).
HEADROOM = 2**62
#: k: noise standard deviations allowed on top of the data bound before declaring overflow.
OVERFLOW_SIGMAS = 8
#: Largest number of fraction bits a measure may use.
MAX_FRAC_BITS = 62


@dataclass(frozen=True)
class CoordinateSpec:
    """How one measure's coordinates are encoded (the same spec for every cell).

    Attributes:
        bound: Largest magnitude of one silo's coordinate in value units (B_j * R_j).
        frac_bits: Fraction bits f_j; a value x is encoded as round(x * 2^f_j).
        sigma_total: Standard deviation of the noise summed over the cohort, in encoded
            units (sqrt(n) * sigma_loc). Zero when noise is off.
    """

    bound: float
    frac_bits: int
    sigma_total: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.bound, int | float) and math.isfinite(self.bound)):
            raise ProtocolError("an encoding spec has a bound that is not a finite number")
        if self.bound < 0:
            raise ProtocolError("an encoding spec has a negative bound")
        if isinstance(self.frac_bits, bool) or not isinstance(self.frac_bits, int):
            raise ProtocolError("an encoding spec has non-integer frac_bits")
        if not 0 <= self.frac_bits <= MAX_FRAC_BITS:
            raise ProtocolError(f"an encoding spec has frac_bits outside 0..{MAX_FRAC_BITS}")
        if not (isinstance(self.sigma_total, int | float) and math.isfinite(self.sigma_total)):
            raise ProtocolError("an encoding spec has a sigma_total that is not a finite number")
        if self.sigma_total < 0:
            raise ProtocolError("an encoding spec has a negative sigma_total")

    @property
    def limit(self) -> int:
        """L = ceil(bound * 2^frac_bits): the largest |X| of one silo's encoded coordinate.

        >>> CoordinateSpec(bound=2.3, frac_bits=2).limit
        10
        """
        return math.ceil(math.ldexp(float(self.bound), self.frac_bits))


def dimension(specs: Sequence[CoordinateSpec], cells: int) -> int:
    """Vector length d for ``cells`` cells of the given measures.

    Args:
        specs: One spec per measure.
        cells: Number of cells (1 without GROUP BY).

    Returns:
        ``cells * len(specs)``.

    Raises:
        ProtocolError: If there are no measures or ``cells`` is not positive.

    >>> dimension([CoordinateSpec(1.0, 0), CoordinateSpec(5.0, 3)], cells=4)
    8
    """
    if not specs:
        raise ProtocolError("an encoding has no measures")
    if isinstance(cells, bool) or not isinstance(cells, int) or cells < 1:
        raise ProtocolError("an encoding needs a positive number of cells")
    return cells * len(specs)


def band(spec: CoordinateSpec, n: int, k: int = OVERFLOW_SIGMAS) -> int:
    """The overflow band of one measure's total over ``n`` silos: n * L + ceil(k * sigma_total).

    Args:
        spec: The measure's encoding spec.
        n: Number of silos whose vectors are summed.
        k: Noise standard deviations of allowance.

    Returns:
        The largest |total| that is accepted, as a Python int.

    >>> band(CoordinateSpec(bound=10.0, frac_bits=0, sigma_total=2.5), n=3)
    50
    """
    return n * spec.limit + math.ceil(k * spec.sigma_total)


def check_plan(specs: Sequence[CoordinateSpec], n: int, k: int = OVERFLOW_SIGMAS) -> None:
    """Plan-time check that every measure's total over ``n`` silos stays within 2^62.

    Args:
        specs: One spec per measure, in vector order.
        n: Cohort size (the largest number of silos that may be summed).
        k: Noise standard deviations of allowance.

    Raises:
        QueryRejected: If some measure's band ``n * L + k * sigma_total`` exceeds 2^62; the
            message names the measure and what to change.

    >>> check_plan([CoordinateSpec(bound=1e6, frac_bits=12, sigma_total=100.0)], n=100)
    """
    if n < 1:
        raise QueryRejected("secure aggregation needs at least one silo in the cohort")
    for pos, spec in enumerate(specs):
        need = band(spec, n, k)
        if need > HEADROOM:
            raise QueryRejected(
                f"measure {pos} (of {len(specs)}) cannot be summed over {n} silos without "
                f"overflow: its encoded range needs 2^{math.log2(need):.1f} but at most 2^62 "
                "fits; lower epsilon, narrow the column bounds or the row cap, "
                "or use fewer fraction bits"
            )


def _as_matrix(values: NDArray[_Scalar], m: int, cells: int, what: str) -> NDArray[_Scalar]:
    """View a flat vector of length cells * m as (cells, m); raise if the length is wrong."""
    flat = values
    if flat.ndim != 1 or flat.shape[0] != cells * m:
        raise ProtocolError(
            f"{what} has length {flat.shape[0] if flat.ndim == 1 else flat.shape}, "
            f"expected {cells * m} ({cells} cells x {m} measures)"
        )
    return flat.reshape(cells, m)


def _coordinate_name(j: int, m: int) -> str:
    return f"coordinate {j} (cell {j // m}, measure {j % m})"


def encode(
    values: NDArray[np.floating] | NDArray[np.integer],
    specs: Sequence[CoordinateSpec],
    cells: int,
    *,
    clip: bool = True,
) -> NDArray[np.int64]:
    """Clip each coordinate to its bound and encode it as round(x * 2^f) in int64.

    Args:
        values: Flat vector of length ``cells * len(specs)``, cell-major, in value units.
        specs: One spec per measure.
        cells: Number of cells.
        clip: Clip out-of-bound values to ``±bound`` (the default). With False, any value
            outside its bound is refused instead.

    Returns:
        The encoded vector (int64), each |X_j| <= L of its measure.

    Raises:
        DataError: If a value is NaN, or (with ``clip=False``) outside its bound; the message
            names the coordinate only.
        ProtocolError: If the length does not match the layout or a spec cannot be encoded
            in int64 at all.

    >>> encode(np.array([1.5, -7.0]), [CoordinateSpec(bound=2.0, frac_bits=1)], cells=2)
    array([ 3, -4])
    """
    m = len(specs)
    check_dim = dimension(specs, cells)
    for pos, spec in enumerate(specs):
        if spec.limit > HEADROOM:
            raise ProtocolError(f"measure {pos} has an encoded bound above 2^62")
    x = _as_matrix(np.asarray(values, dtype=np.float64), m, cells, "the value vector")
    bounds = np.array([float(s.bound) for s in specs], dtype=np.float64)
    scales = np.array([math.ldexp(1.0, s.frac_bits) for s in specs], dtype=np.float64)
    limits = np.array([s.limit for s in specs], dtype=np.int64)

    nan = np.isnan(x)
    if nan.any():
        j = int(np.flatnonzero(nan.ravel())[0])
        raise DataError(f"{_coordinate_name(j, m)} is NaN and cannot be encoded")
    if clip:
        x = np.clip(x, -bounds, bounds)
    else:
        out = np.abs(x) > bounds
        if out.any():
            j = int(np.flatnonzero(out.ravel())[0])
            raise DataError(f"{_coordinate_name(j, m)} is outside its declared bound")
    encoded = np.rint(x * scales).astype(np.int64)
    bad = np.abs(encoded) > limits
    if bad.any():  # cannot happen after clipping; kept as the refusal the protocol requires
        j = int(np.flatnonzero(bad.ravel())[0])
        raise DataError(f"{_coordinate_name(j, m)} encodes outside its declared bound")
    flat: NDArray[np.int64] = encoded.reshape(check_dim)
    return flat


def decode(
    total: NDArray[np.uint64],
    specs: Sequence[CoordinateSpec],
    cells: int,
    n: int,
    k: int = OVERFLOW_SIGMAS,
) -> NDArray[np.float64]:
    """Read a masked-sum total as signed values, check the overflow band and rescale.

    Args:
        total: The aggregate over ``n`` silos, as uint64 (sum mod 2^64).
        specs: One spec per measure.
        cells: Number of cells.
        n: Number of silos whose vectors were summed (the survivors).
        k: Noise standard deviations of allowance.

    Returns:
        The decoded vector ``z / 2^f`` (float64), cell-major.

    Raises:
        OverflowDetected: If some coordinate lies outside ``±(n * L + k * sigma_total)``;
            the message names the first such coordinate and how many there are, never a value.
        ProtocolError: If the length does not match the layout.

    >>> t = np.array([5, 2**64 - 3], dtype=np.uint64)
    >>> decode(t, [CoordinateSpec(bound=2.0, frac_bits=1)], cells=2, n=2)
    array([ 2.5, -1.5])
    """
    m = len(specs)
    dimension(specs, cells)
    arr = np.ascontiguousarray(np.asarray(total, dtype=np.uint64))
    z = _as_matrix(arr.view(np.int64), m, cells, "the aggregate")
    bands = np.array([min(band(s, n, k), 2**63 - 1) for s in specs], dtype=np.int64)
    # Compare both sides without abs(): abs(-2^63) overflows int64.
    outside = (z > bands) | (z < -bands)
    if outside.any():
        hits = np.flatnonzero(outside.ravel())
        raise OverflowDetected(
            f"{_coordinate_name(int(hits[0]), m)} of the aggregate is outside its overflow "
            f"band ({hits.size} coordinate(s) in all); the result is rejected: a silo sent "
            "out-of-bound input or the sum wrapped around"
        )
    scales = np.array([math.ldexp(1.0, -s.frac_bits) for s in specs], dtype=np.float64)
    out: NDArray[np.float64] = (z.astype(np.float64) * scales).reshape(cells * m)
    return out


#: Largest fraction precision used when no noise is added (test mode).
EXACT_FRAC_BITS = 40


def spec_for_measure(
    clip: float,
    integral: bool,
    rows_per_silo: int,
    n: int,
    frac_bits: int | None,
    sigma_local: float,
) -> CoordinateSpec:
    """The encoding of one measure, as hub and silos both derive it from the plan.

    Args:
        clip: Largest |value| one row adds (1 for counts, B for sums).
        integral: Rows add whole numbers.
        rows_per_silo: The contract's bound on rows a silo may sum.
        n: Cohort size.
        frac_bits: Fraction bits chosen by noise calibration, or None when no noise is added; then
            integral measures use 0 and others the finest precision the overflow bound allows.
        sigma_local: Each silo's noise scale in encoded units (0 without noise).

    Returns:
        The coordinate spec, with the total noise of ``n`` shares.

    >>> spec_for_measure(1.0, True, 1000, 4, None, 0.0).frac_bits
    0
    >>> spec_for_measure(70.0, False, 10**8, 4, None, 0.0).frac_bits
    26
    """
    bound = clip * rows_per_silo
    sigma_total = math.sqrt(n) * sigma_local
    if frac_bits is not None:
        return CoordinateSpec(bound=bound, frac_bits=frac_bits, sigma_total=sigma_total)
    if integral:
        return CoordinateSpec(bound=bound, frac_bits=0, sigma_total=sigma_total)
    room = math.floor(math.log2(HEADROOM / (n * bound))) - 1 if n * bound > 0 else EXACT_FRAC_BITS
    return CoordinateSpec(
        bound=bound, frac_bits=max(0, min(EXACT_FRAC_BITS, room)), sigma_total=sigma_total
    )
