"""Fixed-point encoding of partial-aggregate vectors into Z_2^64, with limbs and the overflow band.

Layout (the one rule, which :func:`dimension` and :func:`columns` state in code): every cell
holds ``w = sum(spec.limbs)`` coordinates, the measures in order and each measure's limbs side
by side (high limb first); the vector is cell-major, ``cells * w`` coordinates long. Every
function here takes the per-measure specs and the cell count and works on a ``(cells, w)``
view, so it is vectorised whatever ``d`` is. With one limb per measure, coordinate ``j``
belongs to cell ``j // m`` and measure ``j % m``.

Integer bound of a measure: ``L = ceil(bound * 2^frac_bits)``, the largest magnitude one silo's
clipped and rounded value can take. A one-limb measure sends ``X`` itself; its total over ``n``
silos lies in the band ``n * L + k * sigma_total`` with ``k = 8``. A two-limb measure (SECAGG.md
section 4, "Limbs for big values") sends ``hi = X >> 32`` (floor, signed) and
``lo = X mod 2^32`` (in ``[0, 2^32)``) as two coordinates, and its noise share on ``lo`` only;
the bands are ``n * ceil(L / 2^32) + n`` for ``hi`` and ``n * 2^32 + k * sigma_total`` for
``lo``. The plan-time check requires every band to fit ``2^62``; decoding rejects any total
coordinate outside its band, then recombines ``sum_hi * 2^32 + sum_lo`` with Python integers
before scaling to float64, so a total up to about 2^93 is exact until that last rounding.
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
    "LIMB_BITS",
    "MAX_FRAC_BITS",
    "MAX_LIMBS",
    "OVERFLOW_SIGMAS",
    "CoordinateSpec",
    "band",
    "check_plan",
    "columns",
    "coordinate_bands",
    "coordinate_name",
    "decode",
    "dimension",
    "encode",
    "limb_bands",
    "noise_coordinates",
]

_Scalar = TypeVar("_Scalar", bound=np.generic)

#: Largest allowed |total| of any coordinate (one bit below the int64 half-range).
HEADROOM = 2**62
#: k: noise standard deviations allowed on top of the data bound before declaring overflow.
OVERFLOW_SIGMAS = 8
#: Largest number of fraction bits a measure may use.
MAX_FRAC_BITS = 62
#: Width of the low limb of a two-limb measure.
LIMB_BITS = 32
#: Most coordinates one measure may be split into.
MAX_LIMBS = 2
_INT64_MAX = 2**63 - 1
_LIMB_NAMES = {2: ("high", "low")}


@dataclass(frozen=True)
class CoordinateSpec:
    """How one measure's coordinates are encoded (the same spec for every cell).

    Attributes:
        bound: Largest magnitude of one silo's value in value units (B_j * R_j).
        frac_bits: Fraction bits f_j; a value x is encoded as round(x * 2^f_j).
        sigma_total: Standard deviation of the noise summed over the cohort, in encoded
            units (sqrt(n) * sigma_loc). Zero when noise is off.
        limbs: Coordinates per cell: 1 sends X, 2 sends X >> 32 and X mod 2^32.
    """

    bound: float
    frac_bits: int
    sigma_total: float = 0.0
    limbs: int = 1

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
        if isinstance(self.limbs, bool) or self.limbs not in range(1, MAX_LIMBS + 1):
            raise ProtocolError(f"an encoding spec has limbs outside 1..{MAX_LIMBS}")

    @property
    def limit(self) -> int:
        """L = ceil(bound * 2^frac_bits): the largest |X| of one silo's encoded value.

        >>> CoordinateSpec(bound=2.3, frac_bits=2).limit
        10
        """
        return math.ceil(math.ldexp(float(self.bound), self.frac_bits))


def columns(specs: Sequence[CoordinateSpec]) -> tuple[tuple[int, int], ...]:
    """The coordinates of one cell, in order, as (measure, limb) pairs (limb 0 is the highest).

    Args:
        specs: One spec per measure.

    Returns:
        One pair per coordinate of a cell; its length is the cell's width ``sum(limbs)``.

    >>> columns([CoordinateSpec(1.0, 0), CoordinateSpec(2.0**70, 0, limbs=2)])
    ((0, 0), (1, 0), (1, 1))
    """
    return tuple((pos, limb) for pos, spec in enumerate(specs) for limb in range(spec.limbs))


def dimension(specs: Sequence[CoordinateSpec], cells: int) -> int:
    """Vector length d for ``cells`` cells of the given measures.

    Args:
        specs: One spec per measure.
        cells: Number of cells (1 without GROUP BY).

    Returns:
        ``cells * sum(spec.limbs for spec in specs)``.

    Raises:
        ProtocolError: If there are no measures or ``cells`` is not positive.

    >>> dimension([CoordinateSpec(1.0, 0), CoordinateSpec(5.0, 3)], cells=4)
    8
    >>> dimension([CoordinateSpec(1.0, 0), CoordinateSpec(5.0, 3, limbs=2)], cells=4)
    12
    """
    if not specs:
        raise ProtocolError("an encoding has no measures")
    if isinstance(cells, bool) or not isinstance(cells, int) or cells < 1:
        raise ProtocolError("an encoding needs a positive number of cells")
    return cells * len(columns(specs))


def limb_bands(
    spec: CoordinateSpec, n: int, k: int = OVERFLOW_SIGMAS, sigma: float | None = None
) -> tuple[int, ...]:
    """The overflow band of each of a measure's limbs, summed over ``n`` silos.

    Args:
        spec: The measure's encoding spec.
        n: Number of silos whose vectors are summed.
        k: Noise standard deviations of allowance.
        sigma: Noise standard deviation of the sum in encoded units (default: the spec's
            ``sigma_total``; a silo checking its own upload passes its ``sigma_loc``).

    Returns:
        The largest accepted |total| of each limb, high limb first, as Python ints: one limb
        ``n * L + ceil(k * sigma)``; two limbs ``n * ceil(L / 2^32) + n`` and
        ``n * 2^32 + ceil(k * sigma)``.

    >>> limb_bands(CoordinateSpec(bound=10.0, frac_bits=0, sigma_total=2.5), n=3)
    (50,)
    >>> limb_bands(CoordinateSpec(bound=2.0**40, frac_bits=0, sigma_total=2.5, limbs=2), n=3)
    (771, 12884901908)
    """
    noise = math.ceil(k * (spec.sigma_total if sigma is None else sigma))
    if spec.limbs == 1:
        return (n * spec.limit + noise,)
    return (n * -(-spec.limit >> LIMB_BITS) + n, (n << LIMB_BITS) + noise)


def band(spec: CoordinateSpec, n: int, k: int = OVERFLOW_SIGMAS) -> int:
    """The widest overflow band of one measure's limbs over ``n`` silos (see :func:`limb_bands`).

    Args:
        spec: The measure's encoding spec.
        n: Number of silos whose vectors are summed.
        k: Noise standard deviations of allowance.

    Returns:
        The largest |total| that is accepted in any of its coordinates, as a Python int.

    >>> band(CoordinateSpec(bound=10.0, frac_bits=0, sigma_total=2.5), n=3)
    50
    """
    return max(limb_bands(spec, n, k))


def coordinate_bands(
    specs: Sequence[CoordinateSpec], n: int, sigmas: Sequence[float], k: int = OVERFLOW_SIGMAS
) -> NDArray[np.int64]:
    """The band of every coordinate of a cell, in :func:`columns` order, capped at 2^63 - 1.

    Args:
        specs: One spec per measure.
        n: Number of silos whose vectors are summed (1 for one silo's upload).
        sigmas: One noise standard deviation per measure, in encoded units.
        k: Noise standard deviations of allowance.

    Returns:
        An int64 array of the cell's width.

    >>> coordinate_bands([CoordinateSpec(10.0, 0)], n=1, sigmas=[2.5]).tolist()
    [30]
    """
    per_measure = [limb_bands(s, n, k, sig) for s, sig in zip(specs, sigmas, strict=True)]
    return np.array([min(b, _INT64_MAX) for bands in per_measure for b in bands], dtype=np.int64)


def check_plan(specs: Sequence[CoordinateSpec], n: int, k: int = OVERFLOW_SIGMAS) -> None:
    """Plan-time check that every coordinate's total over ``n`` silos stays within 2^62.

    Args:
        specs: One spec per measure, in vector order.
        n: Cohort size (the largest number of silos that may be summed).
        k: Noise standard deviations of allowance.

    Raises:
        QueryRejected: If some limb's band exceeds 2^62; the message names the measure (and
            limb) and what to change.

    >>> check_plan([CoordinateSpec(bound=1e6, frac_bits=12, sigma_total=100.0)], n=100)
    >>> check_plan([CoordinateSpec(bound=1e12 * 1e7, frac_bits=0, limbs=2)], n=100)
    """
    if n < 1:
        raise QueryRejected("secure aggregation needs at least one silo in the cohort")
    for pos, spec in enumerate(specs):
        for limb, need in enumerate(limb_bands(spec, n, k)):
            if need <= HEADROOM:
                continue
            where = f"measure {pos} (of {len(specs)}) cannot be summed over {n} silos"
            if spec.limbs == 1:
                raise QueryRejected(
                    f"{where} without overflow: its encoded range needs 2^{math.log2(need):.1f} "
                    "but at most 2^62 fits; lower epsilon, narrow the column bounds or the row "
                    "cap, or use fewer fraction bits"
                )
            advice = (
                "narrow the column bounds or the row cap, or use fewer fraction bits"
                if limb == 0
                else "its noise is too large: raise epsilon or narrow the column bounds"
            )
            raise QueryRejected(
                f"{where} without overflow even split into {MAX_LIMBS} limbs: its "
                f"{_LIMB_NAMES[spec.limbs][limb]} limb needs 2^{math.log2(need):.1f} but at most "
                f"2^62 fits; {advice}"
            )


def _as_matrix(values: NDArray[_Scalar], w: int, cells: int, what: str) -> NDArray[_Scalar]:
    """View a flat vector of length cells * w as (cells, w); raise if the length is wrong."""
    flat = values
    if flat.ndim != 1 or flat.shape[0] != cells * w:
        raise ProtocolError(
            f"{what} has length {flat.shape[0] if flat.ndim == 1 else flat.shape}, "
            f"expected {cells * w} ({cells} cells x {w} coordinates)"
        )
    return flat.reshape(cells, w)


def _value_name(j: int, m: int) -> str:
    """Name coordinate ``j`` of a value vector (one value per measure and cell)."""
    return f"coordinate {j} (cell {j // m}, measure {j % m})"


def coordinate_name(j: int, specs: Sequence[CoordinateSpec]) -> str:
    """Name coordinate ``j`` of an encoded vector, with its limb when the measure has two.

    Args:
        j: A coordinate index of the encoded vector.
        specs: One spec per measure.

    Returns:
        Where the coordinate is, never what it holds.

    >>> coordinate_name(4, [CoordinateSpec(1.0, 0), CoordinateSpec(2.0**70, 0, limbs=2)])
    'coordinate 4 (cell 1, measure 1, high limb)'
    """
    cols = columns(specs)
    pos, limb = cols[j % len(cols)]
    part = f", {_LIMB_NAMES[specs[pos].limbs][limb]} limb" if specs[pos].limbs > 1 else ""
    return f"coordinate {j} (cell {j // len(cols)}, measure {pos}{part})"


def _split(scaled: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Split integral floats X into hi = floor(X / 2^32) and lo = X - hi * 2^32, exactly.

    Scaling by a power of two and flooring are exact in float64, and ``lo`` is an integer in
    [0, 2^32) that the subtraction of two floats agreeing above bit 32 yields exactly.
    """
    hi = np.floor(np.ldexp(scaled, -LIMB_BITS))
    lo = scaled - np.ldexp(hi, LIMB_BITS)
    return hi.astype(np.int64), lo.astype(np.int64)


def encode(
    values: NDArray[np.floating] | NDArray[np.integer],
    specs: Sequence[CoordinateSpec],
    cells: int,
    *,
    clip: bool = True,
    noise: NDArray[np.int64] | None = None,
) -> NDArray[np.int64]:
    """Clip each value to its bound, encode it as round(x * 2^f) and lay it out in limbs.

    ``X = round(x * 2^f)`` is computed in float64, where it is an exact integer of up to 2^94
    (scaling a float by a power of two is exact), and split into limbs exactly.

    Args:
        values: Flat vector of length ``cells * len(specs)`` (one value per measure and cell),
            cell-major, in value units.
        specs: One spec per measure.
        cells: Number of cells.
        clip: Clip out-of-bound values to ``±bound`` (the default). With False, any value
            outside its bound is refused instead.
        noise: This silo's integer noise share, laid out like ``values``; each entry is added
            to its measure's last (lowest) limb.

    Returns:
        The encoded vector (int64, ``dimension(specs, cells)`` long), laid out as in
        :func:`columns`, each |X| <= L of its measure before noise.

    Raises:
        DataError: If a value is NaN, or (with ``clip=False``) outside its bound; the message
            names the coordinate only.
        ProtocolError: If a length does not match the layout or a spec cannot be encoded
            in its limbs at all.

    >>> encode(np.array([1.5, -7.0]), [CoordinateSpec(bound=2.0, frac_bits=1)], cells=2)
    array([ 3, -4])
    >>> encode(np.array([-1.0]), [CoordinateSpec(bound=2.0**40, frac_bits=0, limbs=2)], 1)
    array([        -1, 4294967295])
    """
    m = len(specs)
    check_dim = dimension(specs, cells)
    for pos, spec in enumerate(specs):
        if spec.limit > HEADROOM << (LIMB_BITS * (spec.limbs - 1)):
            raise ProtocolError(
                f"measure {pos} has an encoded bound above 2^{62 + LIMB_BITS * (spec.limbs - 1)}"
            )
    x = _as_matrix(np.asarray(values, dtype=np.float64), m, cells, "the value vector")
    bounds = np.array([float(s.bound) for s in specs], dtype=np.float64)
    scales = np.array([math.ldexp(1.0, s.frac_bits) for s in specs], dtype=np.float64)
    # float(L) is exact: L < 2^53, or L is the (integral) float bound * 2^f itself.
    limits = np.array([float(s.limit) for s in specs], dtype=np.float64)

    nan = np.isnan(x)
    if nan.any():
        j = int(np.flatnonzero(nan.ravel())[0])
        raise DataError(f"{_value_name(j, m)} is NaN and cannot be encoded")
    if clip:
        x = np.clip(x, -bounds, bounds)
    else:
        out = np.abs(x) > bounds
        if out.any():
            j = int(np.flatnonzero(out.ravel())[0])
            raise DataError(f"{_value_name(j, m)} is outside its declared bound")
    scaled = np.rint(x * scales)
    bad = np.abs(scaled) > limits
    if bad.any():  # cannot happen after clipping; kept as the refusal the protocol requires
        j = int(np.flatnonzero(bad.ravel())[0])
        raise DataError(f"{_value_name(j, m)} encodes outside its declared bound")
    encoded = np.empty((cells, check_dim // cells), dtype=np.int64)
    col = 0
    for pos, spec in enumerate(specs):
        if spec.limbs == 1:
            encoded[:, col] = scaled[:, pos].astype(np.int64)
        else:
            encoded[:, col], encoded[:, col + 1] = _split(scaled[:, pos])
        col += spec.limbs
    flat: NDArray[np.int64] = encoded.reshape(check_dim)
    if noise is not None:
        flat += noise_coordinates(noise, specs, cells)
    return flat


def noise_coordinates(
    noise: NDArray[np.int64], specs: Sequence[CoordinateSpec], cells: int
) -> NDArray[np.int64]:
    """A noise share laid out as vector coordinates: on each measure's lowest limb, 0 elsewhere.

    Args:
        noise: One integer per measure and cell, cell-major (like ``encode``'s values).
        specs: One spec per measure.
        cells: Number of cells.

    Returns:
        An int64 vector of ``dimension(specs, cells)``; ``encode(v, noise=e)`` equals
        ``encode(v) + noise_coordinates(e)``.

    Raises:
        ProtocolError: If ``noise`` does not match the layout.

    >>> specs = [CoordinateSpec(1.0, 0), CoordinateSpec(2.0**40, 0, limbs=2)]
    >>> noise_coordinates(np.array([5, -3]), specs, cells=1).tolist()
    [5, 0, -3]
    """
    m = len(specs)
    shares = _as_matrix(np.asarray(noise, dtype=np.int64), m, cells, "the noise vector")
    out = np.zeros((cells, dimension(specs, cells) // cells), dtype=np.int64)
    out[:, np.cumsum([s.limbs for s in specs]) - 1] = shares
    laid_out: NDArray[np.int64] = out.reshape(-1)
    return laid_out


def _recombine(hi: NDArray[np.int64], lo: NDArray[np.int64], frac_bits: int) -> list[float]:
    """(hi * 2^32 + lo) / 2^f per cell, summed exactly as Python ints and rounded once."""
    return [
        math.ldexp(float((h << LIMB_BITS) + low), -frac_bits)
        for h, low in zip(hi.tolist(), lo.tolist(), strict=True)
    ]


def decode(
    total: NDArray[np.uint64],
    specs: Sequence[CoordinateSpec],
    cells: int,
    n: int,
    k: int = OVERFLOW_SIGMAS,
) -> NDArray[np.float64]:
    """Read a masked-sum total as signed limbs, check every band, recombine and rescale.

    Args:
        total: The aggregate over ``n`` silos, as uint64 (sum mod 2^64), laid out as in
            :func:`columns`.
        specs: One spec per measure.
        cells: Number of cells.
        n: Number of silos whose vectors were summed (the survivors).
        k: Noise standard deviations of allowance.

    Returns:
        One value per measure and cell, ``(sum_hi * 2^32 + sum_lo) / 2^f`` for two limbs and
        ``z / 2^f`` for one (float64, cell-major, ``cells * len(specs)`` long).

    Raises:
        OverflowDetected: If some coordinate lies outside its band (:func:`limb_bands`); the
            message names the first such coordinate and how many there are, never a value.
        ProtocolError: If the length does not match the layout.

    >>> t = np.array([5, 2**64 - 3], dtype=np.uint64)
    >>> decode(t, [CoordinateSpec(bound=2.0, frac_bits=1)], cells=2, n=2)
    array([ 2.5, -1.5])
    """
    m = len(specs)
    d = dimension(specs, cells)
    arr = np.ascontiguousarray(np.asarray(total, dtype=np.uint64))
    z = _as_matrix(arr.view(np.int64), d // cells, cells, "the aggregate")
    bands = coordinate_bands(specs, n, [s.sigma_total for s in specs], k)
    # Compare both sides without abs(): abs(-2^63) overflows int64.
    outside = (z > bands) | (z < -bands)
    if outside.any():
        hits = np.flatnonzero(outside.ravel())
        raise OverflowDetected(
            f"{coordinate_name(int(hits[0]), specs)} of the aggregate is outside its "
            f"overflow band ({hits.size} coordinate(s) in all); the result is rejected: a silo "
            "sent out-of-bound input or the sum wrapped around"
        )
    out = np.empty((cells, m), dtype=np.float64)
    col = 0
    for pos, spec in enumerate(specs):
        if spec.limbs == 1:
            out[:, pos] = z[:, col].astype(np.float64) * math.ldexp(1.0, -spec.frac_bits)
        else:
            out[:, pos] = _recombine(z[:, col], z[:, col + 1], spec.frac_bits)
        col += spec.limbs
    flat: NDArray[np.float64] = out.reshape(cells * m)
    return flat
