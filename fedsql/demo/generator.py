"""Deterministic synthetic data for the four demo clinics, cached as one DuckDB file per clinic.

Every clinic holds the contract's tables ``patients``, ``visits`` and ``labs`` (exactly the
columns and types of ``policies/demo/contract.toml``) and one private table the contract does not
name. The data follows a known ground truth, so federated answers can be checked against it:

- ``diabetic`` is drawn from a logistic model in age and BMI whose true coefficients are
  DIABETES_INTERCEPT, DIABETES_COEF_AGE and DIABETES_COEF_BMI (see :func:`diabetes_probability`);
- HbA1c results are higher for diabetics (HBA1C_MEAN);
- no patient has more visits or lab results than the contract's ``max_rows_per_unit`` (ROW_CAPS),
  and some have exactly that many;
- every value lies within the contract's bounds except about COST_OUTLIER_RATE of visit costs,
  which lie above COST_UPPER_BOUND on purpose, so clamping has something to do.

Generation is vectorised (numpy, Arrow into DuckDB) and seeded per clinic from SEED; the same
GENERATOR_VERSION and library versions give the same data. Files are cached under
``$FEDSQL_CACHE_DIR`` (default ``~/.cache/fedsql``) in a folder named GENERATOR_VERSION, written
atomically under a file lock, so concurrent processes build them once (:mod:`fedsql.demo.cache`).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fedsql.demo.cache import (
    MANIFEST,
    cache_root,
    data_checksum,
    ensure_built,
    expected_header,
    read_manifest_in,
)
from fedsql.errors import ConfigError

__all__ = [
    "CLINICS",
    "GENERATOR_VERSION",
    "MANIFEST",
    "SEED",
    "TABLE_COLUMNS",
    "Clinic",
    "clinic",
    "data_checksum",
    "demo_cache_dir",
    "demo_files",
    "diabetes_probability",
    "ensure_demo_data",
    "generate_clinic",
    "read_manifest",
]

#: Change this whenever the generated data changes; it names the cache folder.
GENERATOR_VERSION = "demo-v1"
#: Root seed; clinic i draws from numpy's SeedSequence([SEED, i]).
SEED = 20_240_607

#: True diabetes model: logit P(diabetic) = intercept + age_coef * age + bmi_coef * bmi,
#: with age in whole years and BMI in kg/m2 exactly as stored.
DIABETES_INTERCEPT = -8.0
DIABETES_COEF_AGE = 0.05
DIABETES_COEF_BMI = 0.12

#: Contract tables and columns, in contract order, with their SQL types.
TABLE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "patients": (
        ("patient_id", "BIGINT"),
        ("name", "VARCHAR"),
        ("age", "INTEGER"),
        ("sex", "VARCHAR"),
        ("zip", "VARCHAR"),
        ("bmi", "DOUBLE"),
        ("diabetic", "BOOLEAN"),
    ),
    "visits": (
        ("visit_id", "BIGINT"),
        ("patient_id", "BIGINT"),
        ("visit_date", "DATE"),
        ("cost", "DOUBLE"),
    ),
    "labs": (
        ("patient_id", "BIGINT"),
        ("test", "VARCHAR"),
        ("value", "DOUBLE"),
        ("taken_at", "DATE"),
    ),
}
#: The contract's max_rows_per_unit (k) of each table; the data never exceeds it.
ROW_CAPS: dict[str, int] = {"patients": 1, "visits": 20, "labs": 24}
#: Every visit and lab date lies in [DATE_FIRST, DATE_LAST].
DATE_FIRST = dt.date(2020, 1, 1)
DATE_LAST = dt.date(2024, 12, 31)
#: Ages and BMIs as generated (within the contract bounds [0, 110] and [10, 70]).
AGE_RANGE = (18, 98)
BMI_RANGE = (13.0, 60.0)
#: The contract's upper bound of visits.cost and the share of visits generated above it.
COST_UPPER_BOUND = 5000.0
COST_OUTLIER_RATE = 0.001
#: Lab tests (the contract's domain of labs.test), how often each is ordered, their mean values.
LAB_TESTS: tuple[str, ...] = ("HbA1c", "LDL", "SBP", "eGFR")
LAB_TEST_SHARES: tuple[float, ...] = (0.3, 0.25, 0.3, 0.15)
#: Mean HbA1c (%) of non-diabetic and diabetic patients.
HBA1C_MEAN: dict[bool, float] = {False: 5.4, True: 7.6}

_EPOCH_DAY = (DATE_FIRST - dt.date(1970, 1, 1)).days
_DAYS = (DATE_LAST - DATE_FIRST).days + 1


@dataclass(frozen=True)
class Clinic:
    """One synthetic clinic: its id (the silo id), display name, size and population profile."""

    id: str
    name: str
    patients: int
    first_patient_id: int
    age_mean: float
    bmi_mean: float
    female_share: float
    visits_mean: float
    labs_mean: float
    zip_range: tuple[int, int]
    zip_width: int
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    private_table: str


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: The four demo clinics, largest first; patient ids are 1..250,000, one block per clinic.
# fmt: off
CLINICS: tuple[Clinic, ...] = (
    Clinic(
        id="san-francisco", name="San Francisco", patients=110_000, first_patient_id=1,
        age_mean=46.0, bmi_mean=26.5, female_share=0.51, visits_mean=5.0, labs_mean=7.0,
        zip_range=(94102, 94188), zip_width=5, private_table="staff_notes",
        first_names=_words("Ava Liam Sofia Noah Mia Ethan Maya Lucas Chloe Diego Grace"),
        last_names=_words("Nguyen Garcia Smith Chen Johnson Lopez Kim Brown Patel Wong"),
    ),
    Clinic(
        id="mumbai", name="Mumbai", patients=92_000, first_patient_id=110_001,
        age_mean=39.0, bmi_mean=24.0, female_share=0.48, visits_mean=4.0, labs_mean=6.0,
        zip_range=(400001, 400104), zip_width=6, private_table="billing",
        first_names=_words("Aarav Ananya Vihaan Diya Arjun Isha Rohan Kavya Aditya Priya"),
        last_names=_words("Sharma Patel Iyer Desai Kulkarni Mehta Joshi Nair Rao Shah"),
    ),
    Clinic(
        id="sydney", name="Sydney", patients=44_000, first_patient_id=202_001,
        age_mean=52.0, bmi_mean=27.5, female_share=0.52, visits_mean=5.5, labs_mean=8.0,
        zip_range=(2000, 2234), zip_width=4, private_table="referrals",
        first_names=_words("Oliver Charlotte Jack Amelia William Isla Henry Olivia Ruby"),
        last_names=_words("Smith Jones Williams Brown Wilson Taylor Martin White Kelly"),
    ),
    Clinic(
        id="seoul", name="Seoul", patients=4_000, first_patient_id=246_001,
        age_mean=56.0, bmi_mean=23.5, female_share=0.53, visits_mean=6.0, labs_mean=9.0,
        zip_range=(1000, 8866), zip_width=5, private_table="appointments",
        first_names=_words("Minjun Seoyeon Jiho Jiwoo Hajun Seoyun Doyun Hayoon Eunwoo"),
        last_names=_words("Kim Lee Park Choi Jung Kang Cho Yoon Jang Lim Han"),
    ),
)
# fmt: on


def clinic(silo_id: str) -> Clinic:
    """The demo clinic with id ``silo_id``.

    Args:
        silo_id: A clinic id such as ``"mumbai"``.

    Returns:
        The Clinic.

    Raises:
        ConfigError: for an id that is not a demo clinic.
    """
    for item in CLINICS:
        if item.id == silo_id:
            return item
    known = ", ".join(c.id for c in CLINICS)
    raise ConfigError(f"{silo_id!r} is not a demo clinic; use one of: {known}", key="silo.data")


def diabetes_probability(age: npt.ArrayLike, bmi: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The true probability of diabetes at the given ages and BMIs (the generator's model).

    >>> round(float(diabetes_probability(50, 27.0)), 4)
    0.0945
    """
    logit = (
        DIABETES_INTERCEPT
        + DIABETES_COEF_AGE * np.asarray(age, dtype=np.float64)
        + DIABETES_COEF_BMI * np.asarray(bmi, dtype=np.float64)
    )
    return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)


def generate_clinic(which: Clinic | str) -> dict[str, pa.Table]:
    """Generate one clinic's tables in memory (deterministic for a given clinic).

    Args:
        which: The clinic or its id.

    Returns:
        Table name -> Arrow table: the three contract tables, then the private table.

    Raises:
        ConfigError: for an unknown clinic id.
    """
    spec = clinic(which) if isinstance(which, str) else which
    index = next(i for i, c in enumerate(CLINICS) if c.id == spec.id)
    rng = np.random.default_rng(np.random.SeedSequence([SEED, index]))
    patients, age, diabetic = _patients(spec, rng)
    ids = patients.column("patient_id").to_numpy()
    tables = {
        "patients": patients,
        "visits": _visits(spec, rng, ids, age, diabetic),
        "labs": _labs(spec, rng, ids, age, diabetic),
    }
    tables[spec.private_table] = _private(spec, rng, ids)
    return tables


def _patients(
    spec: Clinic, rng: np.random.Generator
) -> tuple[pa.Table, npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
    n = spec.patients
    lo, hi = AGE_RANGE
    share = (spec.age_mean - lo) / (hi - lo)
    age = (lo + np.rint((hi - lo) * rng.beta(6 * share, 6 * (1 - share), n))).astype(np.int32)
    female = rng.random(n) < spec.female_share
    noise = rng.normal(0.0, 4.5, n)
    bmi = np.round(np.clip(spec.bmi_mean + 0.05 * (age - 45) - 0.5 * female + noise, *BMI_RANGE), 1)
    diabetic = rng.random(n) < diabetes_probability(age, bmi)
    first = pa.array(spec.first_names).take(pa.array(rng.integers(0, len(spec.first_names), n)))
    last = pa.array(spec.last_names).take(pa.array(rng.integers(0, len(spec.last_names), n)))
    zips = pc.cast(pa.array(rng.integers(spec.zip_range[0], spec.zip_range[1] + 1, n)), pa.string())
    table = pa.table(
        {
            "patient_id": np.arange(
                spec.first_patient_id, spec.first_patient_id + n, dtype=np.int64
            ),
            "name": pc.binary_join_element_wise(first, last, " "),
            "age": age,
            "sex": pa.array(["M", "F"]).take(pa.array(female.astype(np.int8))),
            "zip": pc.utf8_lpad(zips, spec.zip_width, "0"),
            "bmi": bmi,
            "diabetic": diabetic,
        }
    )
    return table, age, diabetic


def _row_counts(
    rng: np.random.Generator, mean: npt.NDArray[np.floating[Any]], minimum: int, cap: int
) -> npt.NDArray[np.int64]:
    """Overdispersed counts per patient (negative binomial) with the given means, capped at k."""
    extra = np.maximum(mean - minimum, 1e-3)
    counts = np.asarray(rng.negative_binomial(2, 2.0 / (2.0 + extra)), dtype=np.int64)
    return np.minimum(counts + minimum, cap)


def _dates(rng: np.random.Generator, owners: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    """Uniform days in [DATE_FIRST, DATE_LAST], sorted within each owner (owners are sorted)."""
    key = owners * _DAYS + rng.integers(0, _DAYS, owners.size)
    key.sort()
    return (key % _DAYS + _EPOCH_DAY).astype(np.int32)


def _visits(
    spec: Clinic,
    rng: np.random.Generator,
    ids: npt.NDArray[np.int64],
    age: npt.NDArray[np.int32],
    diabetic: npt.NDArray[np.bool_],
) -> pa.Table:
    mean = spec.visits_mean * (1.0 + 0.8 * diabetic + 0.012 * (age - 45.0))
    counts = _row_counts(rng, mean, 1, ROW_CAPS["visits"])
    owner = np.repeat(np.arange(ids.size, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    seq = np.arange(owner.size, dtype=np.int64) - starts[owner] + 1
    patient = ids[owner]
    median = 140.0 * (1.0 + 0.4 * diabetic[owner]) * (1.0 + 0.01 * (age[owner] - 45))
    cost = np.round(np.exp(np.log(median) + rng.normal(0.0, 0.9, owner.size)), 2)
    outlier = rng.random(owner.size) < COST_OUTLIER_RATE
    cost[outlier] = np.round(
        rng.uniform(COST_UPPER_BOUND + 1, 4 * COST_UPPER_BOUND, outlier.sum()), 2
    )
    return pa.table(
        {
            "visit_id": patient * 100 + seq,
            "patient_id": patient,
            "visit_date": pa.array(_dates(rng, owner), type=pa.date32()),
            "cost": cost,
        }
    )


def _labs(
    spec: Clinic,
    rng: np.random.Generator,
    ids: npt.NDArray[np.int64],
    age: npt.NDArray[np.int32],
    diabetic: npt.NDArray[np.bool_],
) -> pa.Table:
    mean = spec.labs_mean * (1.0 + 0.6 * diabetic)
    counts = _row_counts(rng, mean, 0, ROW_CAPS["labs"])
    owner = np.repeat(np.arange(ids.size, dtype=np.int64), counts)
    m = owner.size
    test = rng.choice(len(LAB_TESTS), size=m, p=LAB_TEST_SHARES)
    a = age[owner].astype(np.float64)
    d = diabetic[owner]
    noise = rng.standard_normal(m)
    hba1c = np.where(d, HBA1C_MEAN[True] + 1.1 * noise, HBA1C_MEAN[False] + 0.35 * noise)
    ldl = 115.0 + 0.3 * (a - 45) + 30.0 * noise
    sbp = 112.0 + 0.45 * a + 4.0 * d + 13.0 * noise
    egfr = 115.0 - 0.75 * a - 8.0 * d + 12.0 * noise
    value = np.choose(
        test,
        [
            np.clip(hba1c, 4.0, 14.0),
            np.clip(ldl, 40, 240),
            np.clip(sbp, 85, 210),
            np.clip(egfr, 8, 130),
        ],
    )
    return pa.table(
        {
            "patient_id": ids[owner],
            "test": pa.array(LAB_TESTS).take(pa.array(test)),
            "value": np.round(value, 1),
            "taken_at": pa.array(_dates(rng, owner), type=pa.date32()),
        }
    )


def _private(spec: Clinic, rng: np.random.Generator, ids: npt.NDArray[np.int64]) -> pa.Table:
    """The clinic's own table that the contract does not name (never shared)."""
    n = max(1, ids.size // 10)
    who = np.sort(rng.choice(ids, size=n, replace=False))
    day = pa.array((rng.integers(0, _DAYS, n) + _EPOCH_DAY).astype(np.int32), type=pa.date32())
    row_id = np.arange(1, n + 1, dtype=np.int64)
    pick = pa.array(rng.integers(0, 3, n))
    if spec.private_table == "staff_notes":
        notes = pa.array(["follow up in 3 months", "refer to dietitian", "declined screening"])
        columns = {
            "note_id": row_id,
            "patient_id": who,
            "note": notes.take(pick),
            "written_at": day,
        }
    elif spec.private_table == "billing":
        insurers = pa.array(["self-pay", "public", "private"])
        amount = np.round(rng.uniform(200, 50_000, n), 2)
        columns = {"invoice_id": row_id, "patient_id": who, "amount_inr": amount}
        columns["insurer"] = insurers.take(pick)
    elif spec.private_table == "referrals":
        specialty = pa.array(["cardiology", "endocrinology", "nephrology"]).take(pick)
        columns = {"referral_id": row_id, "patient_id": who, "specialty": specialty}
        columns["referred_on"] = day
    else:
        status = pa.array(["booked", "attended", "missed"]).take(pick)
        columns = {"appointment_id": row_id, "patient_id": who, "status": status}
        columns["scheduled_for"] = day
    return pa.table(columns)


def demo_cache_dir(cache_dir: Path | None = None) -> Path:
    """The folder holding the demo files of this GENERATOR_VERSION.

    Args:
        cache_dir: The cache root; by default ``$FEDSQL_CACHE_DIR``, else ``~/.cache/fedsql``.

    Returns:
        ``<cache root>/<GENERATOR_VERSION>`` (not created here).
    """
    return cache_root(cache_dir) / GENERATOR_VERSION


def ensure_demo_data(cache_dir: Path | None = None) -> dict[str, Path]:
    """Make sure every demo clinic's DuckDB file exists for this version; build what is missing.

    Safe when several processes call it at once: building happens under an exclusive file lock,
    each file is written to a temporary name and renamed into place, and the manifest (written
    last) is what marks the set complete (see :mod:`fedsql.demo.cache`). A manifest from other
    library versions triggers a rebuild, since the random streams may differ.

    Args:
        cache_dir: The cache root; by default ``$FEDSQL_CACHE_DIR``, else ``~/.cache/fedsql``.

    Returns:
        Silo id -> DuckDB file, in CLINICS order.
    """
    return ensure_built(
        demo_cache_dir(cache_dir),
        expected_header(GENERATOR_VERSION, SEED),
        [c.id for c in CLINICS],
        generate_clinic,
        TABLE_COLUMNS,
    )


def read_manifest(cache_dir: Path | None = None) -> dict[str, Any] | None:
    """The manifest of the current demo build, or None if there is none (or it is unreadable)."""
    return read_manifest_in(demo_cache_dir(cache_dir))


def demo_files() -> Path:
    """The folder holding the demo contract (``contract.toml``) and the four clinic policies.

    Looks at ``$FEDSQL_DEMO_DIR`` first, else at ``policies/demo`` in the source tree the
    package was installed from.

    Returns:
        The folder.

    Raises:
        ConfigError: if the folder has no ``contract.toml``.
    """
    env = os.environ.get("FEDSQL_DEMO_DIR", "").strip()
    folder = (
        Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "policies" / "demo"
    )
    if not (folder / "contract.toml").is_file():
        where = "FEDSQL_DEMO_DIR" if env else "the source tree's policies/demo"
        raise ConfigError(
            f"the demo contract.toml was not found in {where}; set FEDSQL_DEMO_DIR to the "
            "folder holding contract.toml and the clinic policies"
        )
    return folder
