"""The sign rule and pairwise masks: they cancel over any cohort."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsql.errors import ProtocolError
from fedsql.secagg import keys, masks

from .harness import keypair_for

QID = bytes(range(16))
HQ = hashlib.sha256(b"descriptor").digest()
silo_ids = st.text(min_size=1, max_size=12)


def _pairwise_mask_sum(ids: list[str], d: int) -> np.ndarray:
    """Sum over every silo of its pairwise masks with every other silo, from real keys."""
    kp = {sid: keypair_for(f"masks/{sid}") for sid in ids}
    total = np.zeros(d, dtype=np.uint64)
    for own in ids:
        mask_keys = []
        for peer in ids:
            if peer == own:
                continue
            pair = keys.pair_key(
                kp[own].private_bytes, kp[peer].public_bytes, "fed", 1, own, peer,
                kp[own].public_bytes, kp[peer].public_bytes,
            )  # fmt: skip
            mask_keys.append((peer, keys.mask_key(pair, QID, HQ)))
        masks.apply_pairwise_masks(total, own, mask_keys)
    return total


@given(a=silo_ids, b=silo_ids)
def test_sign_is_antisymmetric_and_follows_string_order(a: str, b: str) -> None:
    if a == b:
        with pytest.raises(ProtocolError):
            masks.mask_sign(a, b)
        return
    assert masks.mask_sign(a, b) == -masks.mask_sign(b, a)
    assert (masks.mask_sign(a, b) == 1) == (a < b)


@given(ids=st.lists(silo_ids, min_size=2, max_size=8, unique=True))
def test_signs_over_a_cohort_sum_to_zero(ids: list[str]) -> None:
    assert sum(masks.mask_sign(i, j) for i, j in itertools.permutations(ids, 2)) == 0


@settings(max_examples=25, deadline=None)
@given(ids=st.lists(silo_ids, min_size=2, max_size=6, unique=True))
def test_pairwise_masks_from_real_keys_cancel_for_random_ids(ids: list[str]) -> None:
    assert not _pairwise_mask_sum(ids, 64).any()


@pytest.mark.parametrize("n", [2, 3, 10])
def test_sum_of_all_pairwise_masks_is_the_zero_vector(n: int) -> None:
    ids = [f"clinic-{i}" for i in range(n)]
    assert not _pairwise_mask_sum(ids, 1000).any()


def test_a_single_silos_pairwise_masks_do_not_cancel_alone() -> None:
    acc = np.zeros(100, dtype=np.uint64)
    masks.apply_pairwise_masks(acc, "a", [("b", b"k" * 16), ("c", b"j" * 16)])
    assert int((acc == 0).sum()) == 0


def test_negated_masks_undo_the_masks() -> None:
    acc = np.arange(10, dtype=np.uint64)
    pairs = [("b", b"k" * 16), ("0", b"j" * 16)]
    masks.apply_pairwise_masks(acc, "a", pairs)
    masks.apply_pairwise_masks(acc, "a", pairs, negate=True)
    assert acc.tolist() == list(range(10))


def test_commitment_binds_query_silo_and_seed() -> None:
    seed = bytes(range(16))
    base = masks.seed_commitment(QID, "alice", seed)
    assert base == hashlib.sha256(b"commit" + QID + b"\x00\x00\x00\x05alice" + seed).digest()
    assert masks.seed_commitment(bytes(16), "alice", seed) != base
    assert masks.seed_commitment(QID, "alicf", seed) != base
    assert masks.seed_commitment(QID, "alice", bytes(16)) != base
    with pytest.raises(ProtocolError):
        masks.seed_commitment(QID, "alice", seed[:8])
