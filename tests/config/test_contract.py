"""Loading federation contracts: valid files build the catalog, every mistake names file and key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from fedsql.catalog import Bounds, Domain, SecAggParams
from fedsql.config import load_contract, parse_contract
from fedsql.errors import ConfigError

FILE = "contract.toml"

GOOD = """
[federation]
id = "test-fed"
description = "a test federation"
delta = 1e-7
default_epsilon = 0.5

[secagg]
n_min = 4
c_max = 2
threshold = 3
max_rows_per_silo = 1000

[tables.Patients]
unit = "Patient_ID"
max_rows_per_unit = 1
description = "one row per patient"

[tables.Patients.columns]
Patient_ID = { type = "bigint" }
age = { type = "INTEGER", bounds = [0, 110], domain = { range = [0, 100], step = 10 } }
sex = { type = "VARCHAR", domain = { values = ["F", "M"] }, description = "recorded sex" }
bmi = { type = "DOUBLE", bounds = [10.0, 70.0] }
diabetic = { type = "BOOLEAN", domain = { values = [false, true] } }

[tables.visits]
unit = "patient_id"
max_rows_per_unit = 20

[tables.visits.columns]
patient_id = { type = "BIGINT" }
visit_date = { type = "DATE", domain = { dates = [2020-01-01, "2020-01-29"], step_days = 7 } }
holiday = { type = "DATE", domain = { values = [2020-12-25, "2021-01-01"] } }
cost = { type = "DOUBLE", bounds = [-5, 5000] }
"""

MINIMAL_FEDERATION = '[federation]\nid = "f"\n'
PATIENTS = """
[tables.patients]
unit = "patient_id"
max_rows_per_unit = 1
[tables.patients.columns]
patient_id = { type = "BIGINT" }
"""


def contract_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_contract(text, file=FILE)
    return caught.value


def with_column(spec: str, name: str = "c") -> str:
    return MINIMAL_FEDERATION + PATIENTS + f"{name} = {spec}\n"


def test_good_contract_builds_tables_columns_bounds_and_domains() -> None:
    contract = parse_contract(GOOD, file=FILE)
    assert contract.federation_id == "test-fed"
    assert contract.description == "a test federation"
    assert contract.delta == 1e-7
    assert contract.default_epsilon == 0.5
    assert contract.secagg == SecAggParams(n_min=4, c_max=2, threshold=3, max_rows_per_silo=1000)
    patients = contract.table("patients")
    assert patients is not None
    assert patients.unit == "patient_id"
    assert patients.description == "one row per patient"
    assert patients.column_names == ("patient_id", "age", "sex", "bmi", "diabetic")
    assert patients.columns[0].type == "BIGINT"
    age = patients.column("age")
    assert age is not None and age.bounds == Bounds(0.0, 110.0)
    assert age.domain == Domain("int_range", lo=0, hi=100, step=10)
    assert age.domain.keys() == (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
    sex = patients.column("sex")
    assert sex is not None and sex.domain == Domain("enum", values=("F", "M"))
    assert sex.description == "recorded sex"
    diabetic = patients.column("diabetic")
    assert diabetic is not None and diabetic.domain is not None
    assert diabetic.domain.values == (False, True)
    visits = contract.table("visits")
    assert visits is not None and visits.max_rows_per_unit == 20
    visit_date = visits.column("visit_date")
    assert visit_date is not None
    assert visit_date.domain == Domain("date_range", lo="2020-01-01", hi="2020-01-29", step=7)
    assert visit_date.domain.size == 5
    holiday = visits.column("holiday")
    assert holiday is not None and holiday.domain is not None
    assert holiday.domain.values == (dt.date(2020, 12, 25), dt.date(2021, 1, 1))
    cost = visits.column("cost")
    assert cost is not None and cost.bounds is not None and cost.bounds.magnitude == 5000.0


def test_defaults_apply_when_optional_sections_are_absent() -> None:
    contract = parse_contract(MINIMAL_FEDERATION + PATIENTS, file=FILE)
    assert contract.secagg == SecAggParams()
    assert contract.delta == 1e-6
    assert contract.default_epsilon == 1.0
    assert contract.description == ""


def test_equal_files_have_equal_fingerprints_and_a_changed_bound_changes_it() -> None:
    first = parse_contract(GOOD, file=FILE)
    second = parse_contract(GOOD, file="other.toml")
    changed = parse_contract(GOOD.replace("[-5, 5000]", "[-5, 5001]"), file=FILE)
    assert first.fingerprint == second.fingerprint
    assert first.fingerprint != changed.fingerprint


def test_load_contract_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "fed.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert load_contract(path).federation_id == "test-fed"
    path.write_text(GOOD.replace("max_rows_per_unit = 20", "max_rows_per_unit = -2"))
    with pytest.raises(ConfigError) as caught:
        load_contract(path)
    assert str(caught.value).startswith(f"{path}: tables.visits.max_rows_per_unit: ")
    assert caught.value.file == str(path)


def test_missing_and_non_utf8_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_contract(tmp_path / "absent.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00id")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_contract(binary)
    with pytest.raises(ConfigError, match="is a folder"):
        load_contract(tmp_path)


# (name, text, key, fragment): each text has exactly one problem, at ``key``.
MALFORMED: list[tuple[str, str, str, str]] = [
    (
        "unknown key with a suggestion",
        MINIMAL_FEDERATION + 'descripton = "x"\n' + PATIENTS,
        "federation.descripton",
        'unknown key (did you mean "description"?); remove it or use one of: default_epsilon',
    ),
    (
        "unknown top-level section",
        MINIMAL_FEDERATION + "[table.patients]\nunit = 1\n" + PATIENTS,
        "table",
        'unknown key (did you mean "tables"?)',
    ),
    (
        "missing federation",
        PATIENTS,
        "federation",
        'missing; add [federation] with id = "my-federation"',
    ),
    (
        "missing tables",
        MINIMAL_FEDERATION,
        "tables",
        "missing; add one [tables.<name>] section per table",
    ),
    (
        "empty tables",
        MINIMAL_FEDERATION + "[tables]\n",
        "tables",
        "no tables declared; add a [tables.<name>] section",
    ),
    (
        "invalid federation id",
        '[federation]\nid = "My Fed"\n' + PATIENTS,
        "federation.id",
        '"My Fed" is not a valid id; use lower-case letters, digits and inner hyphens '
        '(at most 63 characters), e.g. id = "my-fed"',
    ),
    (
        "wrong value type",
        MINIMAL_FEDERATION + 'delta = "small"\n' + PATIENTS,
        "federation.delta",
        "expected a number, got a string; write delta = 1e-6",
    ),
    (
        "delta outside (0, 1)",
        MINIMAL_FEDERATION + "delta = 1.5\n" + PATIENTS,
        "federation.delta",
        "delta must lie strictly between 0 and 1, got 1.5",
    ),
    (
        "delta of zero",
        MINIMAL_FEDERATION + "delta = 0\n" + PATIENTS,
        "federation.delta",
        "strictly between 0 and 1, got 0",
    ),
    (
        "non-positive default epsilon",
        MINIMAL_FEDERATION + "default_epsilon = 0\n" + PATIENTS,
        "federation.default_epsilon",
        "epsilon must be above 0, got 0; write default_epsilon = 1.0",
    ),
    (
        "epsilon finer than a millionth",
        MINIMAL_FEDERATION + "default_epsilon = 0.1234567\n" + PATIENTS,
        "federation.default_epsilon",
        "0.1234567 has more than 6 decimal places",
    ),
    (
        "infinite epsilon",
        MINIMAL_FEDERATION + "default_epsilon = inf\n" + PATIENTS,
        "federation.default_epsilon",
        "inf is not a finite number",
    ),
    (
        "n_min below c_max + 2",
        MINIMAL_FEDERATION + "[secagg]\nn_min = 2\nc_max = 1\n" + PATIENTS,
        "secagg.n_min",
        "n_min 2 is below max(2, c_max + 2) = 3; raise n_min to at least 3 or lower c_max",
    ),
    (
        "c_max raised above the default n_min",
        MINIMAL_FEDERATION + "[secagg]\nc_max = 2\n" + PATIENTS,
        "secagg.n_min",
        "the default n_min 3 is below max(2, c_max + 2) = 4; add n_min = 4",
    ),
    (
        "threshold below c_max + 1",
        MINIMAL_FEDERATION + "[secagg]\nthreshold = 1\n" + PATIENTS,
        "secagg.threshold",
        "threshold 1 is below c_max + 1 = 2",
    ),
    (
        "negative c_max",
        MINIMAL_FEDERATION + "[secagg]\nc_max = -1\n" + PATIENTS,
        "secagg.c_max",
        "c_max must be 0 or more, got -1",
    ),
    (
        "bad type name with an alias",
        with_column('{ type = "FLOAT" }', "cost"),
        "tables.patients.columns.cost.type",
        'unknown type "FLOAT" (did you mean "DOUBLE"?); use one of: INTEGER, BIGINT, DOUBLE, '
        "VARCHAR, DATE, TIMESTAMP, BOOLEAN",
    ),
    (
        "bad type name with a misspelling",
        with_column('{ type = "VARCHR" }'),
        "tables.patients.columns.c.type",
        'unknown type "VARCHR" (did you mean "VARCHAR"?)',
    ),
    (
        "column without a type",
        with_column("{ bounds = [0, 1] }"),
        "tables.patients.columns.c.type",
        'missing; add type = "INTEGER"',
    ),
    (
        "column written as a bare type",
        with_column('"int"', "age"),
        "tables.patients.columns.age",
        'expected an inline table, got a string; write age = { type = "INTEGER" }',
    ),
    (
        "bounds on a text column",
        with_column('{ type = "VARCHAR", bounds = [0, 1] }'),
        "tables.patients.columns.c.bounds",
        "bounds apply only to numeric columns (INTEGER, BIGINT, DOUBLE), this one is VARCHAR; "
        "remove bounds",
    ),
    (
        "bounds in the wrong order",
        with_column('{ type = "DOUBLE", bounds = [100, 0] }', "cost"),
        "tables.patients.columns.cost.bounds",
        "lower bound 100 is above upper bound 0; write bounds = [lo, hi] with lo <= hi",
    ),
    (
        "bounds with three values",
        with_column('{ type = "DOUBLE", bounds = [0, 1, 2] }'),
        "tables.patients.columns.c.bounds",
        "expected 2 values, got 3; write bounds = [lo, hi]",
    ),
    (
        "bounds with a text value",
        with_column('{ type = "DOUBLE", bounds = [0, "10"] }'),
        "tables.patients.columns.c.bounds[1]",
        "expected a number, got a string",
    ),
    (
        "text domain value for a VARCHAR column",
        with_column('{ type = "VARCHAR", domain = { values = ["F", 2] } }'),
        "tables.patients.columns.c.domain.values[1]",
        'expected a string for a VARCHAR column, got an integer; write it as "text"',
    ),
    (
        "string domain values for a BOOLEAN column",
        with_column('{ type = "BOOLEAN", domain = { values = ["yes"] } }'),
        "tables.patients.columns.c.domain.values[0]",
        "expected a boolean for a BOOLEAN column, got a string; write it as true or false",
    ),
    (
        "boolean domain value for an INTEGER column",
        with_column('{ type = "INTEGER", domain = { values = [1, true] } }'),
        "tables.patients.columns.c.domain.values[1]",
        "expected an integer for a INTEGER column, got a boolean",
    ),
    (
        "integer too large for INTEGER",
        with_column('{ type = "INTEGER", domain = { values = [3000000000] } }'),
        "tables.patients.columns.c.domain.values[0]",
        "3000000000 does not fit in INTEGER",
    ),
    (
        "a value listed twice",
        with_column('{ type = "VARCHAR", domain = { values = ["F", "M", "F"] } }'),
        "tables.patients.columns.c.domain.values[2]",
        '"F" is listed twice; list each value once',
    ),
    (
        "empty value list",
        with_column('{ type = "VARCHAR", domain = { values = [] } }'),
        "tables.patients.columns.c.domain.values",
        "the list is empty",
    ),
    (
        "domain on a DOUBLE column",
        with_column('{ type = "DOUBLE", domain = { values = [1] } }'),
        "tables.patients.columns.c.domain.values",
        "a DOUBLE column cannot have a domain",
    ),
    (
        "a range that misses its last step",
        with_column('{ type = "INTEGER", domain = { range = [0, 115], step = 10 } }', "age"),
        "tables.patients.columns.age.domain.range",
        "range [0, 115] does not end on a multiple of step 10 from 0; write range = [0, 110] "
        "or [0, 120]",
    ),
    (
        "a range upside down",
        with_column('{ type = "INTEGER", domain = { range = [10, 0] } }'),
        "tables.patients.columns.c.domain.range",
        "lower end 10 is above upper end 0",
    ),
    (
        "a step of zero",
        with_column('{ type = "INTEGER", domain = { range = [0, 10], step = 0 } }'),
        "tables.patients.columns.c.domain.step",
        "step must be at least 1, got 0",
    ),
    (
        "a range on a DATE column",
        with_column('{ type = "DATE", domain = { range = [0, 10] } }'),
        "tables.patients.columns.c.domain.range",
        "range fits only INTEGER and BIGINT columns, this one is DATE; write domain = "
        '{ dates = ["2020-01-01", "2024-12-31"], step_days = 1 }',
    ),
    (
        "dates on a VARCHAR column",
        with_column('{ type = "VARCHAR", domain = { dates = ["2020-01-01", "2020-01-02"] } }'),
        "tables.patients.columns.c.domain.dates",
        "dates fits only DATE columns, this one is VARCHAR; write domain = { values = [...] }",
    ),
    (
        "an impossible date",
        with_column('{ type = "DATE", domain = { dates = ["2020-01-01", "2020-02-30"] } }'),
        "tables.patients.columns.c.domain.dates[1]",
        '"2020-02-30" is not an ISO date',
    ),
    (
        "dates that miss their last step",
        with_column(
            '{ type = "DATE", domain = { dates = ["2020-01-01", "2020-01-10"], step_days = 7 } }'
        ),
        "tables.patients.columns.c.domain.dates",
        'write dates = ["2020-01-01", "2020-01-08"] or ["2020-01-01", "2020-01-15"]',
    ),
    (
        "step with dates",
        with_column(
            '{ type = "DATE", domain = { dates = ["2020-01-01", "2020-01-02"], step = 1 } }'
        ),
        "tables.patients.columns.c.domain.step",
        "step belongs with range; remove it (dates use step_days)",
    ),
    (
        "two domain forms at once",
        with_column('{ type = "INTEGER", domain = { values = [1], range = [0, 1] } }'),
        "tables.patients.columns.c.domain",
        "domain has more than one of values, range and dates; give exactly one",
    ),
    (
        "an empty domain",
        with_column('{ type = "INTEGER", domain = {} }'),
        "tables.patients.columns.c.domain",
        "domain has none of values, range and dates",
    ),
    (
        "a domain too large to aggregate",
        with_column('{ type = "BIGINT", domain = { range = [0, 1000000] } }'),
        "tables.patients.columns.c.domain.range",
        "the domain has 1000001 keys, more than the limit of 100000",
    ),
    (
        "a domain on the unit column",
        MINIMAL_FEDERATION
        + PATIENTS.replace('{ type = "BIGINT" }', '{ type = "BIGINT", domain = { values = [1] } }'),
        "tables.patients.columns.patient_id.domain",
        "the privacy unit column can never be a group key; remove its domain",
    ),
    (
        "unit column not declared",
        MINIMAL_FEDERATION + PATIENTS.replace('unit = "patient_id"', 'unit = "patient_idd"'),
        "tables.patients.unit",
        '"patient_idd" is not a column of this table (did you mean "patient_id"?)',
    ),
    (
        "unit column of a type that cannot identify a person",
        MINIMAL_FEDERATION + PATIENTS.replace('"BIGINT"', '"DOUBLE"'),
        "tables.patients.unit",
        'unit column "patient_id" is DOUBLE; a unit identifies one person',
    ),
    (
        "k below one",
        MINIMAL_FEDERATION + PATIENTS.replace("max_rows_per_unit = 1", "max_rows_per_unit = 0"),
        "tables.patients.max_rows_per_unit",
        "must be at least 1, got 0; write max_rows_per_unit = 1 or more",
    ),
    (
        "k missing",
        MINIMAL_FEDERATION + PATIENTS.replace("max_rows_per_unit = 1", ""),
        "tables.patients.max_rows_per_unit",
        "missing; add max_rows_per_unit = 1",
    ),
    (
        "k not an integer",
        MINIMAL_FEDERATION + PATIENTS.replace("max_rows_per_unit = 1", "max_rows_per_unit = 1.5"),
        "tables.patients.max_rows_per_unit",
        "expected an integer, got a float",
    ),
    (
        "a table without columns",
        MINIMAL_FEDERATION + PATIENTS.split("patient_id = {")[0],
        "tables.patients.columns",
        "no columns declared",
    ),
    (
        "a column name that differs only in case",
        with_column('{ type = "INTEGER" }', "Patient_Id"),
        "tables.patients.columns.Patient_Id",
        'column "Patient_Id" repeats "patient_id" (names are case-insensitive)',
    ),
    (
        "a reserved word as a column name",
        with_column('{ type = "INTEGER" }', "select"),
        "tables.patients.columns.select",
        'name "select" is a reserved SQL word; choose another name',
    ),
    (
        "a name that is not an identifier",
        with_column('{ type = "INTEGER" }', '"2nd visit"'),
        'tables.patients.columns."2nd visit"',
        'name "2nd visit" is not an SQL identifier',
    ),
    (
        "a name in fedsql's reserved prefix",
        with_column('{ type = "INTEGER" }', "__cell"),
        "tables.patients.columns.__cell",
        "starts with __, which fedsql reserves",
    ),
    (
        "a table that is a plain value",
        MINIMAL_FEDERATION + PATIENTS + "[tables]\nvisits = 3\n",
        "tables.visits",
        "expected a table, got an integer",
    ),
    (
        "an empty silos list",
        '[federation]\nid = "f"\nsilos = []\n' + PATIENTS,
        "federation.silos",
        "the list is empty; list every clinic's id",
    ),
    (
        "silos as a string",
        '[federation]\nid = "f"\nsilos = "a"\n' + PATIENTS,
        "federation.silos",
        "expected an array, got a string",
    ),
    (
        "a silo id that is not a slug",
        '[federation]\nid = "f"\nsilos = ["a", "Clinic B"]\n' + PATIENTS,
        "federation.silos[1]",
        '"Clinic B" is not a valid silo id; use lower-case letters, digits and inner hyphens',
    ),
    (
        "a silo listed twice",
        '[federation]\nid = "f"\nsilos = ["a", "b", "a"]\n' + PATIENTS,
        "federation.silos[2]",
        '"a" is listed twice',
    ),
    (
        "a silo id that is a number",
        '[federation]\nid = "f"\nsilos = [1]\n' + PATIENTS,
        "federation.silos[0]",
        "expected a clinic id (a string), got an integer",
    ),
    (
        "a column named silo beside a silos list",
        '[federation]\nid = "f"\nsilos = ["a"]\n' + PATIENTS + 'silo = { type = "VARCHAR" }\n',
        "tables.patients.columns.silo",
        "clashes with the per-clinic pseudo-column silo that [federation] silos declares; "
        "rename the column",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_contract_is_reported_with_file_key_and_fix(
    text: str, key: str, fragment: str
) -> None:
    error = contract_error(text)
    assert [k for k, _ in error.problems] == [key], str(error)
    assert f"{FILE}: {key}: " in str(error)
    assert fragment in str(error)
    assert error.file == FILE


def test_an_empty_table_section_reports_each_missing_key() -> None:
    error = contract_error(MINIMAL_FEDERATION + PATIENTS + "[tables.extra]\n")
    assert {k for k, _ in error.problems} == {
        "tables.extra.unit",
        "tables.extra.max_rows_per_unit",
        "tables.extra.columns",
    }


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = """
[federation]
id = "fed"
delta = 2

[tables.visits]
unit = "patient_id"
max_rows_per_unit = 0

[tables.visits.columns]
patient_id = { type = "BIGINT" }
cost = { type = "DOUBLE", bounds = [100, 0] }
kind = { type = "TEXT" }
"""
    error = contract_error(text)
    keys = [k for k, _ in error.problems]
    assert keys == [
        "federation.delta",
        "tables.visits.max_rows_per_unit",
        "tables.visits.columns.cost.bounds",
        "tables.visits.columns.kind.type",
    ]
    lines = str(error).splitlines()
    assert lines[0] == f"{FILE}: 4 problems; each is listed below with its key and fix"
    for line, key in zip(lines[1:], keys, strict=True):
        assert line.startswith(f"  - {FILE}: {key}: ")
    assert "lower bound 100 is above upper bound 0" in str(error)
    assert 'unknown type "TEXT" (did you mean "VARCHAR"?)' in str(error)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[federation]\nid = "f"\nid = "g"\n', "line 3"),
        ('[federation]\nid = "f"\n[tables.p]\nunit = patient_id\n', "line 4, column 8"),
        ('[federation]\nid = "f"\n[tables.p\n', "line 3"),
        ('[federation]\nid = "f" delta = 1\n', "only one key = value pair fits on a line"),
    ],
    ids=["key defined twice", "unquoted string", "unclosed header", "two pairs on a line"],
)
def test_toml_syntax_errors_name_the_line(text: str, fragment: str) -> None:
    error = contract_error(text)
    assert str(error).startswith(f"{FILE}: TOML syntax error at line ")
    assert fragment in str(error)
    assert "fix the file there" in str(error)


def test_key_defined_twice_is_explained_in_plain_words() -> None:
    error = contract_error('[federation]\nid = "f"\nid = "g"')
    assert "a key is defined twice; keep one definition" in str(error)
    assert "at line 3 (end of file)" in str(error)


def test_silos_list_the_clinic_ids_in_file_order_and_a_silo_column_needs_no_list() -> None:
    contract = parse_contract('[federation]\nid = "f"\nsilos = ["b", "a"]\n' + PATIENTS, file=FILE)
    assert contract.silos == ("b", "a")
    without = parse_contract(MINIMAL_FEDERATION + PATIENTS, file=FILE)
    assert without.silos == ()
    # Without a silos list, silo is free for a real column (queries then read that column).
    plain = parse_contract(
        MINIMAL_FEDERATION + PATIENTS + 'silo = { type = "VARCHAR" }\n', file=FILE
    )
    assert plain.table("patients") is not None
    assert plain.table("patients").column("silo") is not None  # type: ignore[union-attr]


def test_a_contract_without_silos_keeps_its_fingerprint() -> None:
    contract = parse_contract(MINIMAL_FEDERATION + PATIENTS, file=FILE)
    listed = parse_contract('[federation]\nid = "f"\nsilos = ["a"]\n' + PATIENTS, file=FILE)
    assert listed.fingerprint != contract.fingerprint
    # The canonical rendering of a contract without the list has no silos entry at all.
    assert dataclasses.replace(listed, silos=()).fingerprint == contract.fingerprint
    rendering = json.dumps(
        {k: v for k, v in dataclasses.asdict(contract).items() if k != "silos"},
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    assert contract.fingerprint == hashlib.sha256(rendering.encode()).hexdigest()
