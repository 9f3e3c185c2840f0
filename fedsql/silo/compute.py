"""The silo's computation of an admitted query: partial SQL, dense vector, encoding, noise share."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping

import numpy as np

from fedsql.privacy.calibrate import MIN_SIGMA_LOCAL
from fedsql.privacy.noise import sample_discrete_gaussian
from fedsql.secagg.encoding import encode
from fedsql.silo.guard import Admission
from fedsql.silo.source_engines import QueryEngine
from fedsql.silo.vector import dense_vector
from fedsql.sql.plan import SALT_PARAM


def salted(sql: str, salt: int) -> dict[str, object]:
    """The partial query's parameters: the salt of its row-capping hash, when it has one."""
    return {SALT_PARAM: salt} if f"${SALT_PARAM}" in sql else {}


def partial_sql(admission: Admission, within_cap: Mapping[str, bool]) -> str:
    """The partial query to run: without the per-unit cap only where it could drop no row."""
    plan = admission.plan
    if plan.partial_sql_uncapped and all(within_cap.get(t, False) for t in plan.tables):
        return plan.partial_sql_uncapped
    return plan.partial_sql


def noised_vector(
    engine: QueryEngine,
    admission: Admission,
    within_cap: Mapping[str, bool],
    timeout_s: float,
    on_run: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the partial query and return the encoded vector with this silo's noise share added.

    The rows never leave this function: they are laid out over the public key space, clamped
    and encoded to fixed point, and noised before the caller masks the vector. The noise share
    is two independent discrete Gaussians per coordinate, a base part (``sigma_base_encoded``)
    and, when the plan has one, an extra part (``sigma_extra_encoded``), which is also returned
    so the secure-aggregation session can remove it when every cohort member answers
    (:mod:`fedsql.secagg.extra`). ``on_run`` is called as soon as the partial query has run
    (whatever happens next).

    Returns:
        The noised encoded vector, and the extra part of its noise (None when there is none).

    Raises:
        QueryTimeout: The partial query ran past ``timeout_s``.
    """
    plan = admission.plan
    sql = partial_sql(admission, within_cap)
    names, rows = engine.run(sql, salted(sql, secrets.randbits(63)), timeout_s)
    if on_run is not None:
        on_run()
    values = dense_vector(plan, names, rows)
    encoded = encode(values, admission.encoding, plan.cells)
    del values, rows
    noise = admission.noise
    if noise is None:
        return encoded, None
    n_measures = len(plan.measures)
    extra = np.zeros_like(encoded) if noise.has_extra else None
    for j, mn in enumerate(noise.measures):
        base = mn.sigma_base_encoded
        assert base >= MIN_SIGMA_LOCAL - 1e-9 and math.isfinite(base)
        encoded[j::n_measures] += sample_discrete_gaussian(base, plan.cells)
        if extra is not None:
            assert mn.sigma_extra_encoded > 0.0 and math.isfinite(mn.sigma_extra_encoded)
            extra[j::n_measures] = sample_discrete_gaussian(mn.sigma_extra_encoded, plan.cells)
    if extra is not None:
        encoded += extra
    return encoded, extra
