"""The silo's computation of an admitted query: partial SQL, dense vector, encoding, noise share."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping

import numpy as np

from fedsql.privacy.noise import sample_discrete_gaussian
from fedsql.secagg.encoding import encode
from fedsql.silo.guard import Admission
from fedsql.silo.source_engines import QueryEngine
from fedsql.silo.vector import dense_vector


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
) -> np.ndarray:
    """Run the partial query and return the encoded vector with this silo's noise share added.

    The rows never leave this function: they are laid out over the public key space, clamped
    and encoded to fixed point (in two limbs where the encoding says so), and noised with
    discrete Gaussian noise of the plan's local standard deviation (in encoded units, on each
    measure's lowest limb) before the caller masks the vector. ``on_run`` is
    called as soon as the partial query has run (whatever happens next).

    Raises:
        QueryTimeout: The partial query ran past ``timeout_s``.
    """
    plan = admission.plan
    sql = partial_sql(admission, within_cap)
    names, rows = engine.run(sql, plan.run_params(sql, secrets.randbits(63)), timeout_s)
    if on_run is not None:
        on_run()
    values = dense_vector(plan, names, rows)
    noise = None
    if admission.noise is not None:
        shares = []
        for mn in admission.noise.measures:
            assert mn.sigma_local_encoded >= 2.0 - 1e-9 and math.isfinite(mn.sigma_local_encoded)
            shares.append(sample_discrete_gaussian(mn.sigma_local_encoded, plan.cells))
        noise = np.column_stack(shares).reshape(-1)  # cell-major, like the values
    encoded = encode(values, admission.encoding, plan.cells, noise=noise)
    del values, rows
    return encoded
