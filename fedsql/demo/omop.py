"""Deterministic synthetic OMOP CDM data for the five clinics of the OMOP example (cached).

Every clinic holds the OMOP tables ``person``, ``observation_period``, ``visit_occurrence``,
``condition_occurrence``, ``drug_exposure`` and ``measurement`` (a contract-friendly subset of
their columns, exactly those of ``examples/omop/contract.toml``) and a ``note`` table that the
contract does not name. Concept ids are real OMOP standard concepts
(:mod:`fedsql.demo.omop_concepts`). The data follow a known ground truth:

- each person has one observation period inside 2015..2024, and every event of the person lies
  inside it;
- chronic conditions are drawn from the logistic models of ``CHRONIC_MODEL`` (age, latent BMI,
  sex and earlier conditions: type 2 diabetes raises hypertension, CAD and CKD), so prevalence
  rises with age and differs between clinics as their populations do;
- drugs follow their indications (``DRUG_MODEL``: metformin for 75% of people with type 2
  diabetes, ...); HbA1c is higher with diabetes (``HBA1C_MEAN``), blood pressure with
  hypertension, creatinine with chronic kidney disease;
- no person has more rows in a table than the contract's ``max_rows_per_unit`` (``ROW_CAPS``),
  and every measurement value lies within the contract's bounds.

Generation is vectorised (numpy, Arrow into DuckDB) and seeded per clinic from SEED. Files are
cached under ``$FEDSQL_CACHE_DIR`` (default ``~/.cache/fedsql``) in a folder named
GENERATOR_VERSION, by :mod:`fedsql.demo.cache`, exactly like the demo's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fedsql.demo import omop_concepts as oc
from fedsql.demo.cache import (
    cache_root,
    ensure_built,
    expected_header,
    read_manifest_in,
)
from fedsql.errors import ConfigError

__all__ = [
    "CLINICS",
    "GENERATOR_VERSION",
    "SEED",
    "TABLE_COLUMNS",
    "OmopClinic",
    "chronic_probabilities",
    "clinic",
    "ensure_omop_data",
    "generate_clinic",
    "omop_cache_dir",
    "omop_files",
    "read_omop_manifest",
]

#: Change this whenever the generated data changes; it names the cache folder.
GENERATOR_VERSION = "omop-v1"
#: Root seed; clinic i draws from numpy's SeedSequence([SEED, i]).
SEED = 20_250_301

#: Contract tables and columns, in contract order, with their SQL types.
TABLE_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "person": (
        ("person_id", "BIGINT"),
        ("gender_concept_id", "INTEGER"),
        ("year_of_birth", "INTEGER"),
        ("race_concept_id", "INTEGER"),
        ("ethnicity_concept_id", "INTEGER"),
        ("person_source_value", "VARCHAR"),
    ),
    "observation_period": (
        ("observation_period_id", "BIGINT"),
        ("person_id", "BIGINT"),
        ("observation_period_start_date", "DATE"),
        ("observation_period_end_date", "DATE"),
    ),
    "visit_occurrence": (
        ("visit_occurrence_id", "BIGINT"),
        ("person_id", "BIGINT"),
        ("visit_concept_id", "INTEGER"),
        ("visit_start_date", "DATE"),
        ("visit_end_date", "DATE"),
    ),
    "condition_occurrence": (
        ("condition_occurrence_id", "BIGINT"),
        ("person_id", "BIGINT"),
        ("condition_concept_id", "INTEGER"),
        ("condition_start_date", "DATE"),
    ),
    "drug_exposure": (
        ("drug_exposure_id", "BIGINT"),
        ("person_id", "BIGINT"),
        ("drug_concept_id", "INTEGER"),
        ("drug_exposure_start_date", "DATE"),
        ("drug_exposure_end_date", "DATE"),
        ("days_supply", "INTEGER"),
    ),
    "measurement": (
        ("measurement_id", "BIGINT"),
        ("person_id", "BIGINT"),
        ("measurement_concept_id", "INTEGER"),
        ("measurement_date", "DATE"),
        ("value_as_number", "DOUBLE"),
        ("unit_concept_id", "INTEGER"),
    ),
}

_EPOCH = np.datetime64("1970-01-01", "D")
_FIRST = int((np.datetime64(oc.DATE_FIRST, "D") - _EPOCH).astype(int))
_LAST = int((np.datetime64(oc.DATE_LAST, "D") - _EPOCH).astype(int))
_LAST_START = int((np.datetime64(oc.LAST_START, "D") - _EPOCH).astype(int))

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class OmopClinic:
    """One synthetic OMOP clinic: id (the silo id), display name, size and population profile.

    ``race_shares`` are the shares of ``omop_concepts.RACES`` (0: race not recorded);
    ``hispanic_share`` is None where ethnicity is not recorded (concept 0).
    """

    id: str
    name: str
    persons: int
    first_person_id: int
    age_mean: float
    female_share: float
    bmi_mean: float
    race_shares: tuple[float, float, float, float]
    hispanic_share: float | None
    visit_rate: float


#: The five clinics, largest first; person ids are 1..200,000, one block per clinic.
# fmt: off
CLINICS: tuple[OmopClinic, ...] = (
    OmopClinic(id="boston", name="Boston", persons=80_000, first_person_id=1,
               age_mean=47.0, female_share=0.52, bmi_mean=27.5,
               race_shares=(0.08, 0.10, 0.14, 0.68), hispanic_share=0.10, visit_rate=0.8),
    OmopClinic(id="lyon", name="Lyon", persons=55_000, first_person_id=80_001,
               age_mean=50.0, female_share=0.51, bmi_mean=25.5,
               race_shares=(0.96, 0.01, 0.01, 0.02), hispanic_share=None, visit_rate=0.7),
    OmopClinic(id="nairobi", name="Nairobi", persons=35_000, first_person_id=135_001,
               age_mean=38.0, female_share=0.55, bmi_mean=24.5,
               race_shares=(0.02, 0.03, 0.93, 0.02), hispanic_share=None, visit_rate=0.5),
    OmopClinic(id="sao-paulo", name="Sao Paulo", persons=22_000, first_person_id=170_001,
               age_mean=42.0, female_share=0.53, bmi_mean=26.5,
               race_shares=(0.43, 0.02, 0.10, 0.45), hispanic_share=None, visit_rate=0.6),
    OmopClinic(id="kyoto", name="Kyoto", persons=8_000, first_person_id=192_001,
               age_mean=58.0, female_share=0.53, bmi_mean=23.0,
               race_shares=(0.02, 0.97, 0.0, 0.01), hispanic_share=None, visit_rate=1.0),
)
# fmt: on


def clinic(silo_id: str) -> OmopClinic:
    """The OMOP example clinic with id ``silo_id``.

    Raises:
        ConfigError: for an id that is not an OMOP example clinic.
    """
    for item in CLINICS:
        if item.id == silo_id:
            return item
    known = ", ".join(c.id for c in CLINICS)
    raise ConfigError(f"{silo_id!r} is not an OMOP example clinic; use one of: {known}")


def chronic_probabilities(
    age: npt.ArrayLike, bmi: npt.ArrayLike, female: npt.ArrayLike, has: dict[int, BoolArray]
) -> dict[int, FloatArray]:
    """The true probability of each chronic condition (the generator's model, CHRONIC_MODEL).

    Args:
        age: Ages at the reference year.
        bmi: Latent BMIs (kg/m2).
        female: True for women.
        has: Conditions already drawn (those a later condition depends on); a condition missing
            here counts as absent.

    Returns:
        Condition concept -> probability per person.

    >>> p = chronic_probabilities([50], [27.0], [False], {})
    >>> round(float(p[201826][0]), 4)
    0.0945
    """
    age_a = np.asarray(age, dtype=np.float64)
    feats: dict[str | int, FloatArray] = {
        "age": age_a,
        "bmi": np.asarray(bmi, dtype=np.float64),
        "female": np.asarray(female, dtype=np.float64),
        "male": 1.0 - np.asarray(female, dtype=np.float64),
    }
    zero = np.zeros_like(age_a)

    def feature(name: str | int) -> FloatArray:
        if isinstance(name, str):
            return feats[name]
        return has[name].astype(np.float64) if name in has else zero

    out: dict[int, FloatArray] = {}
    for concept, intercept, coefs in oc.CHRONIC_MODEL:
        logit = zero + intercept
        for name, coef in coefs.items():
            logit = logit + coef * feature(name)
        out[concept] = np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)
    return out


@dataclass
class _People:
    """One clinic's persons as arrays (index i is the clinic's i-th person)."""

    ids: IntArray
    age: IntArray
    female: BoolArray
    bmi: FloatArray
    start: IntArray
    end: IntArray
    has: dict[int, BoolArray]

    @property
    def n(self) -> int:
        return int(self.ids.size)


def generate_clinic(which: OmopClinic | str) -> dict[str, pa.Table]:
    """Generate one clinic's OMOP tables in memory (deterministic for a given clinic).

    Args:
        which: The clinic or its id.

    Returns:
        Table name -> Arrow table: the six contract tables, then the private ``note`` table.

    Raises:
        ConfigError: for an unknown clinic id.
    """
    spec = clinic(which) if isinstance(which, str) else which
    index = next(i for i, c in enumerate(CLINICS) if c.id == spec.id)
    rng = np.random.default_rng(np.random.SeedSequence([SEED, index]))
    people, person = _persons(spec, rng)
    conditions = _conditions(rng, people)
    drugs, treated = _drugs(rng, people)
    return {
        "person": person,
        "observation_period": pa.table(
            {
                "observation_period_id": people.ids,
                "person_id": people.ids,
                "observation_period_start_date": _dates(people.start),
                "observation_period_end_date": _dates(people.end),
            }
        ),
        "visit_occurrence": _visits(spec, rng, people),
        "condition_occurrence": conditions,
        "drug_exposure": drugs,
        "measurement": _measurements(rng, people, treated),
        "note": _notes(rng, people),
    }


def _f(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64)


def _dates(days: npt.NDArray[np.integer[Any]]) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.date32())


def _persons(spec: OmopClinic, rng: np.random.Generator) -> tuple[_People, pa.Table]:
    n = spec.persons
    lo, hi = oc.AGE_RANGE
    share = (spec.age_mean - lo) / (hi - lo)
    age = (lo + np.rint((hi - lo) * rng.beta(5 * share, 5 * (1 - share), n))).astype(np.int64)
    female = rng.random(n) < spec.female_share
    bmi = np.clip(
        spec.bmi_mean + 0.05 * (age - 45) - 0.5 * female + rng.normal(0.0, 4.5, n), 15.0, 55.0
    )
    race = np.asarray(oc.RACES, dtype=np.int32)[rng.choice(len(oc.RACES), n, p=spec.race_shares)]
    if spec.hispanic_share is None:
        ethnicity = np.zeros(n, dtype=np.int32)
    else:
        hispanic = rng.random(n) < spec.hispanic_share
        ethnicity = np.where(hispanic, oc.ETHNICITIES[1], oc.ETHNICITIES[2]).astype(np.int32)
    start = rng.integers(_FIRST, _LAST_START + 1, n)
    open_ended = rng.random(n) < oc.OPEN_SHARE
    end = np.where(open_ended, _LAST, rng.integers(np.minimum(start + 365, _LAST), _LAST + 1))
    has: dict[int, BoolArray] = {}
    for concept, _, _ in oc.CHRONIC_MODEL:
        prob = chronic_probabilities(age, bmi, female, has)[concept]
        has[concept] = rng.random(n) < prob
    ids = np.arange(spec.first_person_id, spec.first_person_id + n, dtype=np.int64)
    prefix = spec.id[:3].upper()
    person = pa.table(
        {
            "person_id": ids,
            "gender_concept_id": np.where(female, oc.FEMALE, oc.MALE).astype(np.int32),
            "year_of_birth": (oc.REFERENCE_YEAR - age).astype(np.int32),
            "race_concept_id": race,
            "ethnicity_concept_id": ethnicity,
            "person_source_value": pa.array([f"{prefix}-{i:07d}" for i in range(1, n + 1)]),
        }
    )
    return _People(ids, age, female, bmi, start, end, has), person


def _within(rng: np.random.Generator, lo: IntArray, hi: IntArray) -> IntArray:
    """One uniform day in [lo, hi] per element."""
    return np.asarray(lo + np.floor(rng.random(lo.size) * (hi - lo + 1)), dtype=np.int64)


def _keep(
    rng: np.random.Generator, owner: IntArray, priority: IntArray, cap: int
) -> npt.NDArray[np.intp]:
    """Indices of the rows kept when each owner keeps at most ``cap``, lowest priority first.

    Returns them sorted by owner; within an owner the order is random.
    """
    order = np.lexsort((rng.random(owner.size), priority, owner))
    owners = owner[order]
    first = np.searchsorted(owners, owners, side="left")
    rank = np.arange(owners.size) - first
    return order[rank < cap]


def _ids(
    owner_ids: IntArray, owner: IntArray, day: IntArray, tie: IntArray
) -> tuple[npt.NDArray[np.intp], IntArray]:
    """Row order by (owner, day, tie) and row ids ``person_id * 100 + n`` numbered by date."""
    order = np.lexsort((tie, day, owner))
    owners = owner[order]
    seq = np.arange(owners.size) - np.searchsorted(owners, owners, side="left") + 1
    return order, owner_ids[owners] * 100 + seq


def _conditions(rng: np.random.Generator, people: _People) -> pa.Table:
    owners: list[IntArray] = []
    concepts: list[IntArray] = []
    days: list[IntArray] = []
    priority: list[IntArray] = []
    years = (people.end - people.start + 1) / 365.25
    for concept, _, _ in oc.CHRONIC_MODEL:
        who = np.flatnonzero(people.has[concept]).astype(np.int64)
        first = _within(rng, people.start[who], people.end[who])
        repeats = rng.poisson(oc.CHRONIC_REPEAT_MEAN, who.size)
        again = np.repeat(np.arange(who.size), repeats)
        later = _within(rng, first[again], people.end[who][again])
        owners += [who, who[again]]
        days += [first, later]
        concepts += [np.full(who.size + again.size, concept, dtype=np.int64)]
        priority += [np.zeros(who.size, np.int64), np.ones(again.size, np.int64)]
    for concept, rate in oc.ACUTE_RATES.items():
        episodes = rng.poisson(rate * years)
        who = np.repeat(np.arange(people.n, dtype=np.int64), episodes)
        owners.append(who)
        days.append(_within(rng, people.start[who], people.end[who]))
        concepts.append(np.full(who.size, concept, dtype=np.int64))
        priority.append(np.ones(who.size, np.int64))
    owner, concept_all = np.concatenate(owners), np.concatenate(concepts)
    day, prio = np.concatenate(days), np.concatenate(priority)
    kept = _keep(rng, owner, prio, oc.ROW_CAPS["condition_occurrence"])
    owner, concept_all, day = owner[kept], concept_all[kept], day[kept]
    for acute in oc.ACUTE_RATES:
        has = np.zeros(people.n, dtype=bool)
        has[owner[concept_all == acute]] = True
        people.has[acute] = has
    order, row_ids = _ids(people.ids, owner, day, concept_all)
    return pa.table(
        {
            "condition_occurrence_id": row_ids,
            "person_id": people.ids[owner[order]],
            "condition_concept_id": concept_all[order].astype(np.int32),
            "condition_start_date": _dates(day[order]),
        }
    )


def _drugs(rng: np.random.Generator, people: _People) -> tuple[pa.Table, dict[int, BoolArray]]:
    owners, concepts, days, supplies, priority = [], [], [], [], []
    treated: dict[int, BoolArray] = {}
    for drug, indications, share, supply in oc.DRUG_MODEL:
        indicated = np.zeros(people.n, dtype=bool)
        for condition in indications:
            indicated |= people.has[condition]
        treated[drug] = indicated & (rng.random(people.n) < share)
        who = np.flatnonzero(treated[drug]).astype(np.int64)
        count = 1 + rng.poisson(oc.DRUG_REFILL_MEAN, who.size)
        rows = np.repeat(who, count)
        owners.append(rows)
        days.append(_within(rng, people.start[rows], people.end[rows]))
        concepts.append(np.full(rows.size, drug, dtype=np.int64))
        supplies.append(np.full(rows.size, supply, dtype=np.int64))
        first = np.zeros(rows.size, np.int64)
        first[np.cumsum(count) - count] = -1
        priority.append(first + 1)
    owner, concept_all = np.concatenate(owners), np.concatenate(concepts)
    day, supply_all = np.concatenate(days), np.concatenate(supplies)
    kept = _keep(rng, owner, np.concatenate(priority), oc.ROW_CAPS["drug_exposure"])
    owner, concept_all, day, supply_all = (
        owner[kept],
        concept_all[kept],
        day[kept],
        supply_all[kept],
    )
    order, row_ids = _ids(people.ids, owner, day, concept_all)
    start = day[order]
    return (
        pa.table(
            {
                "drug_exposure_id": row_ids,
                "person_id": people.ids[owner[order]],
                "drug_concept_id": concept_all[order].astype(np.int32),
                "drug_exposure_start_date": _dates(start),
                "drug_exposure_end_date": _dates(start + supply_all[order] - 1),
                "days_supply": supply_all[order].astype(np.int32),
            }
        ),
        treated,
    )


def _visits(spec: OmopClinic, rng: np.random.Generator, people: _People) -> pa.Table:
    years = (people.end - people.start + 1) / 365.25
    chronic = sum(people.has[c].astype(np.float64) for c, _, _ in oc.CHRONIC_MODEL)
    mean = spec.visit_rate * years * (1.0 + oc.VISIT_CHRONIC_FACTOR * chronic)
    count = np.minimum(1 + rng.poisson(mean), oc.ROW_CAPS["visit_occurrence"])
    owner = np.repeat(np.arange(people.n, dtype=np.int64), count)
    p_in = np.full(people.n, oc.INPATIENT_BASE)
    for condition, extra in oc.INPATIENT_EXTRA.items():
        p_in = p_in + extra * people.has[condition]
    u = rng.random(owner.size)
    inpatient = u < p_in[owner]
    emergency = ~inpatient & (u < p_in[owner] + oc.EMERGENCY_SHARE)
    concept = np.where(inpatient, oc.INPATIENT, np.where(emergency, oc.EMERGENCY, oc.OUTPATIENT))
    start = _within(rng, people.start[owner], people.end[owner])
    stay = np.where(inpatient, 1 + rng.poisson(oc.LOS_EXTRA_MEAN, owner.size), 0)
    end = np.minimum(start + stay, people.end[owner])
    order, row_ids = _ids(people.ids, owner, start, concept)
    return pa.table(
        {
            "visit_occurrence_id": row_ids,
            "person_id": people.ids[owner[order]],
            "visit_concept_id": concept[order].astype(np.int32),
            "visit_start_date": _dates(start[order]),
            "visit_end_date": _dates(end[order]),
        }
    )


def _measurements(
    rng: np.random.Generator, people: _People, treated: dict[int, BoolArray]
) -> pa.Table:
    n, age, has = people.n, people.age.astype(np.float64), people.has
    t2d, htn, ckd = has[oc.T2D], has[oc.HYPERTENSION], has[oc.CKD]
    parts: list[tuple[int, IntArray, FloatArray, IntArray | None]] = []

    # HbA1c: every person with diabetes, a quarter of the others once.
    count = np.where(t2d, 1 + rng.poisson(oc.HBA1C_TESTS_MEAN, n), rng.random(n) < 0.25)
    who = np.repeat(np.arange(n, dtype=np.int64), count)
    d = t2d[who]
    mean = np.where(d, oc.HBA1C_MEAN[True], oc.HBA1C_MEAN[False])
    sd = np.where(d, oc.HBA1C_SD[True], oc.HBA1C_SD[False])
    value = _f(np.round(np.clip(mean + sd * rng.standard_normal(who.size), 4.0, 14.0), 1))
    parts.append((oc.HBA1C, who, _f(value), None))

    # LDL: 60% of persons, lower on a statin.
    count = (rng.random(n) < 0.6) * (1 + rng.poisson(0.8, n))
    who = np.repeat(np.arange(n, dtype=np.int64), count)
    statin = treated[oc.ATORVASTATIN][who]
    value = _f(120.0 + 0.3 * (age[who] - 50) - 25.0 * statin + 30.0 * rng.standard_normal(who.size))
    parts.append((oc.LDL, who, _f(np.round(np.clip(value, 40.0, 240.0))), None))

    # Blood pressure: systolic and diastolic taken together.
    count = 1 + rng.poisson(1.5, n)
    who = np.repeat(np.arange(n, dtype=np.int64), count)
    day = _within(rng, people.start[who], people.end[who])
    h = htn[who]
    sbp = 122.0 + 0.35 * (age[who] - 50) + oc.SBP_HYPERTENSION_EFFECT * h
    sbp = sbp + 12.0 * rng.standard_normal(who.size)
    dbp = 76.0 + 0.1 * (age[who] - 50) + 6.0 * h + 8.0 * rng.standard_normal(who.size)
    parts.append((oc.SYSTOLIC_BP, who, _f(np.round(np.clip(sbp, 85.0, 210.0))), day))
    parts.append((oc.DIASTOLIC_BP, who, _f(np.round(np.clip(dbp, 45.0, 130.0))), day))

    # BMI around the person's latent BMI.
    count = 1 + rng.poisson(1.0, n)
    who = np.repeat(np.arange(n, dtype=np.int64), count)
    value = _f(people.bmi[who] + 0.8 * rng.standard_normal(who.size))
    parts.append((oc.BMI, who, _f(np.round(np.clip(value, 15.0, 60.0), 1)), None))

    # Creatinine: everyone with CKD, half of the others once.
    count = np.where(ckd, 1 + rng.poisson(1.5, n), rng.random(n) < 0.5)
    who = np.repeat(np.arange(n, dtype=np.int64), count)
    c = ckd[who]
    base = np.where(people.female[who], oc.CREATININE_MEAN["female"], oc.CREATININE_MEAN["male"])
    mean = np.where(c, oc.CREATININE_MEAN["ckd"], base)
    value = _f(mean + np.where(c, 0.5, 0.15) * rng.standard_normal(who.size))
    parts.append((oc.CREATININE, who, _f(np.round(np.clip(value, 0.3, 8.0), 2)), None))

    owner = np.concatenate([p[1] for p in parts])
    concept = np.concatenate([np.full(p[1].size, p[0], dtype=np.int64) for p in parts])
    value_all = np.concatenate([p[2] for p in parts])
    day_all = np.concatenate(
        [
            p[3] if p[3] is not None else _within(rng, people.start[p[1]], people.end[p[1]])
            for p in parts
        ]
    )
    kept = _keep(rng, owner, np.zeros(owner.size, np.int64), oc.ROW_CAPS["measurement"])
    owner, concept, value_all, day_all = owner[kept], concept[kept], value_all[kept], day_all[kept]
    order, row_ids = _ids(people.ids, owner, day_all, concept)
    codes = np.array(sorted(oc.MEASUREMENTS), dtype=np.int64)
    units = np.array([oc.MEASUREMENTS[int(c)][1] for c in codes], dtype=np.int32)
    unit = units[np.searchsorted(codes, concept[order])]
    return pa.table(
        {
            "measurement_id": row_ids,
            "person_id": people.ids[owner[order]],
            "measurement_concept_id": concept[order].astype(np.int32),
            "measurement_date": _dates(day_all[order]),
            "value_as_number": value_all[order],
            "unit_concept_id": unit,
        }
    )


def _notes(rng: np.random.Generator, people: _People) -> pa.Table:
    """The clinic's free-text notes: an OMOP table the contract does not name (never shared)."""
    m = max(1, people.n // 10)
    who = np.sort(rng.choice(people.n, size=m, replace=False))
    titles = pa.array(["discharge summary", "progress note", "referral letter"])
    return pa.table(
        {
            "note_id": np.arange(1, m + 1, dtype=np.int64),
            "person_id": people.ids[who],
            "note_date": _dates(_within(rng, people.start[who], people.end[who])),
            "note_title": titles.take(pa.array(rng.integers(0, 3, m))),
        }
    )


def omop_cache_dir(cache_dir: Path | None = None) -> Path:
    """The folder holding the OMOP example's files of this GENERATOR_VERSION (not created here).

    Args:
        cache_dir: The cache root; by default ``$FEDSQL_CACHE_DIR``, else ``~/.cache/fedsql``.
    """
    return cache_root(cache_dir) / GENERATOR_VERSION


def ensure_omop_data(cache_dir: Path | None = None) -> dict[str, Path]:
    """Make sure every OMOP clinic's DuckDB file exists for this version; build what is missing.

    Safe when several processes call it at once (see :mod:`fedsql.demo.cache`).

    Args:
        cache_dir: The cache root; by default ``$FEDSQL_CACHE_DIR``, else ``~/.cache/fedsql``.

    Returns:
        Silo id -> DuckDB file, in CLINICS order.
    """
    return ensure_built(
        omop_cache_dir(cache_dir),
        expected_header(GENERATOR_VERSION, SEED),
        [c.id for c in CLINICS],
        generate_clinic,
        TABLE_COLUMNS,
    )


def read_omop_manifest(cache_dir: Path | None = None) -> dict[str, Any] | None:
    """The manifest of the current OMOP build, or None if there is none (or it is unreadable)."""
    return read_manifest_in(omop_cache_dir(cache_dir))


def omop_files() -> Path:
    """The folder holding the OMOP example's contract, clinic policies and queries.

    Looks at ``$FEDSQL_OMOP_DIR`` first, else at ``examples/omop`` in the source tree the package
    was installed from.

    Raises:
        ConfigError: if the folder has no ``contract.toml``.
    """
    env = os.environ.get("FEDSQL_OMOP_DIR", "").strip()
    folder = (
        Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "examples" / "omop"
    )
    if not (folder / "contract.toml").is_file():
        where = "FEDSQL_OMOP_DIR" if env else "the source tree's examples/omop"
        raise ConfigError(
            f"the OMOP example's contract.toml was not found in {where}; set FEDSQL_OMOP_DIR to "
            "the folder holding contract.toml and the clinic policies"
        )
    return folder
