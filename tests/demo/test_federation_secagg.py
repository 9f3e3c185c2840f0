"""What the hub receives: masked uploads that never equal or decode to any one silo's vector."""

from __future__ import annotations

import numpy as np
import pytest

from fedsql.demo.federation import DemoFederation
from fedsql.query_terms import encoding_for
from fedsql.secagg.encoding import encode
from fedsql.silo.vector import dense_vector
from fedsql.sql import plan_query
from fedsql.sql.plan import SALT_PARAM
from fedsql.transport.messages import MaskedUpload, UnmaskResponse
from tests.demo.conftest import hub_messages

SQL = "SELECT sex, diabetic, COUNT(*), SUM(bmi), AVG(age) FROM patients GROUP BY sex, diabetic"


def _true_vectors(fed: DemoFederation) -> dict[str, np.ndarray]:
    """Each silo's encoded partial vector without noise or masks, computed at the silo."""
    out = {}
    for silo_id, agent in fed.silos.items():
        plan = plan_query(SQL, None, fed.contract, agent.policy.shared)
        names, rows = agent.engine.run(plan.partial_sql, {SALT_PARAM: 7}, 30)
        values = dense_vector(plan, names, rows)
        encoding = encoding_for(fed.contract, plan, None, len(fed.silos))
        out[silo_id] = encode(values, encoding, plan.cells)
    return out


def test_hub_never_holds_a_single_silos_vector(
    oracle_federation: DemoFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = hub_messages(oracle_federation, monkeypatch, SQL)
    uploads = [m for m in received if isinstance(m, MaskedUpload)]
    responses = [m for m in received if isinstance(m, UnmaskResponse)]
    assert len(uploads) == 4 and len(responses) == 4

    truth = _true_vectors(oracle_federation)
    masked = {u.silo_id: np.frombuffer(u.y, dtype="<u8").view(np.int64) for u in uploads}
    for x in truth.values():
        assert np.any(x != 0)
        for y in masked.values():
            assert len(y) == len(x)
            # No upload equals, or agrees in more than a sliver of coordinates with, any vector.
            assert np.mean(y == x) < 0.01
            assert not np.allclose(y.astype(float), x.astype(float), rtol=1e-3)
    # Even the sum of all uploads is still hidden by self-masks until round 2 reveals their seeds.
    total = sum((v.view(np.uint64) for v in masked.values()), start=np.zeros(len(x), np.uint64))
    assert np.mean(total.view(np.int64) == sum(truth.values())) < 0.01
    # Round 2 released seed shares of survivors only, and no pairwise mask key (no one dropped).
    for r in responses:
        assert not r.mask_keys
        assert {owner for owner, _ in r.seed_shares} <= set(truth) - {r.silo_id}
        assert all(len(share) == 66 for _, share in r.seed_shares)
