"""Hypothesis strategies that draw every transport message, valid in shape, with awkward values."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from fedsql.transport import messages as m
from fedsql.transport.shapes import (
    DIGEST_BYTES,
    MASK_KEY_BYTES,
    QID_BYTES,
    SIGNATURE_BYTES,
    WORD_BYTES,
    X25519_PUBLIC_BYTES,
)

U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=40)
IDS = st.text(min_size=1, max_size=12)
NON_NEGATIVE = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)


def fixed(size: int) -> st.SearchStrategy[bytes]:
    """Bytes of exactly ``size``."""
    return st.binary(min_size=size, max_size=size)


QID = fixed(QID_BYTES)
DIGEST = fixed(DIGEST_BYTES)
X25519 = fixed(X25519_PUBLIC_BYTES)
SIGNATURE = st.one_of(st.just(b""), fixed(SIGNATURE_BYTES))
WORDS = st.integers(1, 16).flatmap(lambda n: fixed(WORD_BYTES * n))


def unique_ids(min_size: int = 0) -> st.SearchStrategy[tuple[str, ...]]:
    """Distinct silo ids."""
    return st.lists(IDS, min_size=min_size, max_size=6, unique=True).map(tuple)


def pairs(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[tuple[tuple[str, bytes], ...]]:
    """(silo_id, bytes) pairs with distinct ids."""
    return st.lists(st.tuples(IDS, data), max_size=6, unique_by=lambda pair: pair[0]).map(tuple)


def _roster() -> st.SearchStrategy[tuple[m.RosterEntry, ...]]:
    def entries(names: tuple[str, ...]) -> st.SearchStrategy[tuple[m.RosterEntry, ...]]:
        n = len(names)
        return st.tuples(
            st.lists(st.integers(1, 2**32 - 1), min_size=n, max_size=n, unique=True),
            st.lists(X25519, min_size=n, max_size=n),
        ).map(
            lambda drawn: tuple(
                m.RosterEntry(silo_id=s, index=i, x25519_public=k)
                for s, i, k in zip(names, drawn[0], drawn[1], strict=True)
            )
        )

    return unique_ids().flatmap(entries)


def _encoding() -> st.SearchStrategy[tuple[tuple[m.EncodingEntry, ...], tuple[float, ...]]]:
    entry = st.builds(
        m.EncodingEntry,
        bound=NON_NEGATIVE,
        frac_bits=U32,
        sigma_total=NON_NEGATIVE,
        limbs=st.integers(1, 2**32 - 1),
    )
    return st.integers(0, 4).flatmap(
        lambda k: st.tuples(
            st.lists(entry, min_size=k, max_size=k).map(tuple),
            st.lists(NON_NEGATIVE, min_size=k, max_size=k).map(tuple),
        )
    )


def _query_request() -> st.SearchStrategy[m.QueryRequest]:
    def build(encoding: tuple[tuple[m.EncodingEntry, ...], tuple[float, ...]]) -> Any:
        return st.builds(
            m.QueryRequest,
            version=U32,
            fed_id=TEXT,
            roster_version=U64,
            epoch=U64,
            qid=QID,
            cohort=unique_ids(min_size=1),
            threshold=U32,
            n_min=U32,
            dimension=U64,
            cells=U64,
            encoding=st.just(encoding[0]),
            sigma_loc=st.just(encoding[1]),
            rho_charge=TEXT,
            epsilon_charge=TEXT,
            analyst=TEXT,
            plan_hash=TEXT,
            sql=st.text(max_size=200),
            params_json=TEXT,
            deadline_ms=I64,
            signature=SIGNATURE,
        )

    return _encoding().flatmap(build)


#: One strategy per top-level transport message class.
MESSAGES: dict[type[Any], st.SearchStrategy[Any]] = {
    m.Hello: st.builds(
        m.Hello,
        silo_id=IDS,
        name=TEXT,
        version=TEXT,
        contract_fingerprint=TEXT,
        x25519_public=X25519,
        min_group_size=U32,
        max_epsilon_per_query=TEXT,
        shared=st.lists(
            st.tuples(IDS, st.lists(TEXT, max_size=4).map(tuple)),
            max_size=4,
            unique_by=lambda pair: pair[0],
        ).map(tuple),
        test_mode=st.booleans(),
        allow_per_clinic=st.booleans(),
    ),
    m.MaskedUpload: st.builds(
        m.MaskedUpload,
        qid=QID,
        silo_id=IDS,
        hq=DIGEST,
        y=WORDS,
        commit=DIGEST,
        shares=pairs(st.binary(max_size=90)),
        signature=SIGNATURE,
    ),
    m.UnmaskResponse: st.builds(
        m.UnmaskResponse,
        qid=QID,
        silo_id=IDS,
        request_digest=DIGEST,
        seed_shares=pairs(st.binary(max_size=70)),
        mask_keys=pairs(fixed(MASK_KEY_BYTES)),
        signature=SIGNATURE,
        extra=st.one_of(st.just(b""), WORDS),
    ),
    m.Refusal: st.builds(
        m.Refusal, qid=QID, silo_id=IDS, code=TEXT, reason=TEXT, budget_remaining=TEXT
    ),
    m.Accepted: st.builds(m.Accepted, qid=QID, silo_id=IDS, budget_remaining=TEXT),
    m.Held: st.builds(m.Held, qid=QID, silo_id=IDS, reason=TEXT),
    m.Heartbeat: st.builds(m.Heartbeat, silo_id=IDS, at_ms=I64),
    m.Welcome: st.builds(
        m.Welcome,
        fed_id=TEXT,
        roster_version=U64,
        epoch=U64,
        roster=_roster(),
        hub_version=TEXT,
    ),
    m.QueryRequest: _query_request(),
    m.UnmaskRequest: st.builds(
        m.UnmaskRequest,
        qid=QID,
        hq=DIGEST,
        survivors=unique_ids(min_size=1),
        dropped=unique_ids(),
        forwarded=pairs(st.binary(max_size=90)),
        signature=SIGNATURE,
    ),
    m.Abort: st.builds(m.Abort, qid=QID, reason=TEXT, signature=SIGNATURE),
    m.ExecuteRequest: st.builds(
        m.ExecuteRequest,
        sql=st.text(max_size=200),
        params_json=TEXT,
        epsilon=TEXT,
        analyst=TEXT,
        explain_only=st.booleans(),
    ),
    m.ExecuteReply: st.builds(
        m.ExecuteReply,
        result_ipc=st.binary(max_size=200),
        stats_ipc=st.binary(max_size=200),
        report_json=TEXT,
        explain=st.lists(TEXT, max_size=4).map(tuple),
        epsilon_spent=TEXT,
        silos=st.lists(
            st.builds(m.SiloStatus, silo_id=IDS, status=TEXT, reason=TEXT, budget_remaining=TEXT),
            max_size=4,
        ).map(tuple),
    ),
    m.StatusRequest: st.just(m.StatusRequest()),
    m.StatusReply: st.builds(
        m.StatusReply,
        silos=st.lists(
            st.builds(
                m.ConnectedSilo,
                silo_id=IDS,
                name=TEXT,
                version=TEXT,
                connected_since_ms=I64,
                last_seen_ms=I64,
            ),
            max_size=4,
        ).map(tuple),
        fed_id=TEXT,
    ),
    m.ExecuteProgress: unique_ids()
    .flatmap(
        lambda ids: st.tuples(
            *(st.builds(m.SiloStatus, silo_id=st.just(i), status=TEXT, reason=TEXT) for i in ids)
        )
    )
    .map(lambda silos: m.ExecuteProgress(silos=silos)),
    m.CatalogRequest: st.just(m.CatalogRequest()),
    m.BudgetReport: st.builds(
        m.BudgetReport,
        request_id=QID,
        silo_id=IDS,
        analyst=TEXT,
        spent=TEXT,
        budget=TEXT,
        left=TEXT,
        queries=I64,
    ),
    m.BudgetQuery: st.builds(m.BudgetQuery, request_id=QID, analyst=TEXT),
    m.BudgetRequest: st.builds(m.BudgetRequest, analyst=TEXT),
    m.BudgetReply: st.builds(
        m.BudgetReply,
        fed_id=TEXT,
        analyst=TEXT,
        clinics=st.lists(
            st.builds(
                m.ClinicBudget,
                silo_id=IDS,
                reported=st.booleans(),
                spent=TEXT,
                budget=TEXT,
                left=TEXT,
                queries=I64,
            ),
            max_size=4,
        ).map(tuple),
    ),
    m.CatalogReply: st.builds(
        m.CatalogReply,
        fed_id=TEXT,
        description=TEXT,
        tables=unique_ids().flatmap(
            lambda names: st.tuples(
                *(
                    st.builds(
                        m.CatalogTable,
                        name=st.just(name),
                        description=TEXT,
                        columns=unique_ids().flatmap(
                            lambda cols: st.tuples(
                                *(
                                    st.builds(
                                        m.CatalogColumn,
                                        name=st.just(col),
                                        type=st.sampled_from(["INTEGER", "DOUBLE", "VARCHAR"]),
                                        description=TEXT,
                                        groupable=st.booleans(),
                                        aggregable=st.booleans(),
                                    )
                                    for col in cols
                                )
                            )
                        ),
                    )
                    for name in names
                )
            )
        ),
    ),
}

SILO_MESSAGES = st.one_of(
    *(
        MESSAGES[cls]
        for cls in (
            m.Hello,
            m.MaskedUpload,
            m.UnmaskResponse,
            m.Refusal,
            m.Held,
            m.Accepted,
            m.Heartbeat,
            m.BudgetReport,
        )
    )
)
HUB_MESSAGES = st.one_of(
    *(MESSAGES[cls] for cls in (m.Welcome, m.QueryRequest, m.UnmaskRequest, m.Abort, m.BudgetQuery))
)
