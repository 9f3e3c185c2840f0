"""One silo's masked upload looks uniform whatever it hides, and is bound to its query."""

from __future__ import annotations

import numpy as np
import pytest

from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.messages import vector_from_bytes

from .harness import (
    byte_histogram_pvalue,
    chi2_sf,
    make_descriptor,
    make_federation,
    qid_for,
    two_sample_pvalue,
)

D = 100_000
BOUND = 2**40
SPEC = CoordinateSpec(bound=float(BOUND), frac_bits=0)
P_MIN = 1e-3


def _masked(label: str, x: np.ndarray, *, federation_label: str = "uniform") -> np.ndarray:
    """The masked vector clinic-000 uploads for input x in a fresh 3-silo query."""
    fed = make_federation(3, label=federation_label)
    desc = make_descriptor(fed, cells=x.shape[0], specs=(SPEC,), qid=qid_for(label))
    return vector_from_bytes(fed.sessions["clinic-000"].upload(desc, x).y, x.shape[0])


def test_chi_square_helper_matches_known_critical_values() -> None:
    assert chi2_sf(293.248, 255) == pytest.approx(0.05, rel=1e-3)
    assert chi2_sf(330.520, 255) == pytest.approx(0.001, rel=1e-2)
    assert chi2_sf(3.841, 1) == pytest.approx(0.05, rel=1e-3)
    assert chi2_sf(18.307, 10) == pytest.approx(0.05, rel=1e-3)


@pytest.mark.parametrize("kind", ["zero", "plus-bound"])
@pytest.mark.parametrize("shift", [56, 0])
def test_masked_vector_bytes_are_uniform(kind: str, shift: int) -> None:
    x = np.zeros(D, dtype=np.int64) if kind == "zero" else np.full(D, BOUND, dtype=np.int64)
    y = _masked(f"uniform/{kind}", x)
    assert byte_histogram_pvalue(y, shift) > P_MIN


@pytest.mark.parametrize("shift", [56, 0])
def test_the_histogram_test_detects_unmasked_and_half_masked_vectors(shift: int) -> None:
    x = np.full(D, BOUND, dtype=np.int64).view(np.uint64)
    assert byte_histogram_pvalue(x, shift) < 1e-12
    y = _masked("uniform/half", np.zeros(D, dtype=np.int64))
    half = y.copy()
    half[: D // 2] = 0  # half the words carry no mask
    assert byte_histogram_pvalue(half, shift) < 1e-12


@pytest.mark.parametrize("shift", [56, 0])
def test_masked_vectors_of_zero_and_bound_are_indistinguishable(shift: int) -> None:
    zero = _masked("uniform/two-sample/a", np.zeros(D, dtype=np.int64))
    bound = _masked("uniform/two-sample/b", np.full(D, BOUND, dtype=np.int64))
    assert two_sample_pvalue(zero, bound, shift) > P_MIN


def test_masked_vector_is_uncorrelated_with_its_input() -> None:
    rng = np.random.default_rng(21)
    x = rng.integers(-BOUND, BOUND + 1, size=D, dtype=np.int64)
    y = _masked("uniform/correlation", x)
    r = np.corrcoef(x.astype(np.float64), (y >> np.uint64(11)).astype(np.float64))[0, 1]
    assert abs(r) < 4 / np.sqrt(D)
    # The same statistic does see a leak of x into y.
    leaky = (y >> np.uint64(1)) + (x.view(np.uint64) >> np.uint64(1))
    r_leak = np.corrcoef(x.astype(np.float64), (leaky >> np.uint64(11)).astype(np.float64))[0, 1]
    assert abs(r_leak) > 20 / np.sqrt(D)


def test_changing_only_the_qid_changes_every_word() -> None:
    x = np.zeros(D, dtype=np.int64)
    a = _masked("uniform/qid-a", x)
    b = _masked("uniform/qid-b", x)
    assert int((a == b).sum()) == 0


def test_identical_inputs_keys_and_seeds_reproduce_the_upload() -> None:
    x = np.arange(1000, dtype=np.int64)
    fed_a, fed_b = make_federation(3, label="same"), make_federation(3, label="same")
    desc = make_descriptor(fed_a, cells=1000, specs=(SPEC,), qid=qid_for("uniform/determinism"))
    up_a = fed_a.sessions["clinic-001"].upload(desc, x)
    up_b = fed_b.sessions["clinic-001"].upload(desc, x)
    assert up_a == up_b
    other = make_federation(3, label="other-keys")
    up_c = other.sessions["clinic-001"].upload(
        make_descriptor(other, cells=1000, specs=(SPEC,), qid=qid_for("uniform/determinism")), x
    )
    assert int((vector_from_bytes(up_a.y, 1000) == vector_from_bytes(up_c.y, 1000)).sum()) == 0
