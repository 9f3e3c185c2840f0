"""The silo's computation of an admitted query: partial SQL, dense vector, encoding, noise share."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping

import numpy as np

from fedsql.privacy.calibrate import MIN_SIGMA_LOCAL
from fedsql.privacy.noise import sample_discrete_gaussian
from fedsql.secagg.encoding import encode, noise_coordinates
from fedsql.silo.guard import Admission
from fedsql.silo.source_engines import QueryEngine
from fedsql.silo.vector import dense_vector
from fedsql.sql.silo_key import bind_silo


def partial_sql(admission: Admission, within_cap: Mapping[str, bool], silo_id: str) -> str:
    """The partial query to run: without the per-unit cap only where it could drop no row.

    The ``silo`` key, when the plan has one, is bound to ``silo_id``, this silo's own id, so
    every row falls in this silo's own cells.
    """
    plan = admission.plan
    sql = plan.partial_sql
    if plan.partial_sql_uncapped and all(within_cap.get(t, False) for t in plan.tables):
        sql = plan.partial_sql_uncapped
    return bind_silo(sql, silo_id) if plan.per_silo else sql


def noised_vector(
    engine: QueryEngine,
    admission: Admission,
    within_cap: Mapping[str, bool],
    timeout_s: float,
    silo_id: str,
    on_run: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the partial query and return the encoded vector with this silo's noise share added.

    The rows never leave this function: they are laid out over the public key space, clamped
    and encoded to fixed point (in two limbs where the encoding says so), and noised before the
    caller masks the vector. The noise share is two independent discrete Gaussians per value, a
    base part (``sigma_base_encoded``) and, when the plan has one, an extra part
    (``sigma_extra_encoded``), both added to each measure's lowest limb. The extra part is also
    returned, in the vector's layout, so the secure-aggregation session can remove it when every
    cohort member answers (:mod:`fedsql.secagg.extra`). ``silo_id`` is this silo's own id (the
    value of the ``silo`` key). ``on_run`` is called as soon as the partial query has run
    (whatever happens next).

    Returns:
        The noised encoded vector, and the extra part of its noise (None when there is none).

    Raises:
        QueryTimeout: The partial query ran past ``timeout_s``.
    """
    plan = admission.plan
    sql = partial_sql(admission, within_cap, silo_id)
    names, rows = engine.run(sql, plan.run_params(sql, secrets.randbits(63)), timeout_s)
    if on_run is not None:
        on_run()
    values = dense_vector(plan, names, rows)
    noise = admission.noise
    if noise is None:
        encoded = encode(values, admission.encoding, plan.cells)
        del values, rows
        return encoded, None
    base_parts, extra_parts = [], []
    for mn in noise.measures:
        base = mn.sigma_base_encoded
        assert base >= MIN_SIGMA_LOCAL - 1e-9 and math.isfinite(base)
        base_parts.append(sample_discrete_gaussian(base, plan.cells))
        if noise.has_extra:
            assert mn.sigma_extra_encoded > 0.0 and math.isfinite(mn.sigma_extra_encoded)
            extra_parts.append(sample_discrete_gaussian(mn.sigma_extra_encoded, plan.cells))
    base_noise = np.column_stack(base_parts).reshape(-1)  # cell-major, like the values
    if not extra_parts:
        encoded = encode(values, admission.encoding, plan.cells, noise=base_noise)
        del values, rows
        return encoded, None
    extra_noise = np.column_stack(extra_parts).reshape(-1)
    # the extra part as it sits in the encoded vector (on each measure's lowest limb)
    extra = noise_coordinates(extra_noise, admission.encoding, plan.cells)
    encoded = encode(values, admission.encoding, plan.cells, noise=base_noise) + extra
    del values, rows
    return encoded, extra
