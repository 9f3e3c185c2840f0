"""Silo policies for the tests: a small contract, a good policy and a table of malformed ones.

Each malformed policy has exactly one problem; the table gives its key and the words of the
message. ``SCHEMA_CATCHES`` names the cases the JSON Schema rejects as well (the others need
the contract, or a check a schema cannot express).
"""

from __future__ import annotations

from fedsql.config import parse_contract

FILE = "clinic.toml"
CONTRACT = parse_contract(
    """
[federation]
id = "test-fed"

[tables.patients]
unit = "patient_id"
max_rows_per_unit = 1
[tables.patients.columns]
patient_id = { type = "BIGINT" }
name = { type = "VARCHAR" }
age = { type = "INTEGER", bounds = [0, 110] }
sex = { type = "VARCHAR", domain = { values = ["F", "M"] } }

[tables.visits]
unit = "patient_id"
max_rows_per_unit = 20
[tables.visits.columns]
patient_id = { type = "BIGINT" }
cost = { type = "DOUBLE", bounds = [0, 5000] }
""",
    file="contract.toml",
)

SILO = '[silo]\nid = "clinic-a"\ndata = "demo:clinic-a"\n'
SHARE = '[share]\npatients = ["patient_id", "age"]\n'

GOOD = """
[silo]
id = "clinic-a"
name = "Clinic A"
data = "data/clinic-a.duckdb"

[share]
visits = ["cost", "PATIENT_ID"]
patients = ["sex", "patient_id", "age"]

[privacy]
max_epsilon_per_query = 0.5
budget_epsilon = 12.25
min_group_size = 20

[privacy.analysts]
alice = 30.0
"bob@example.org" = 2

[limits]
query_timeout_s = 12.5

[approval]
mode = "manual"
"""


# (name, text, key, fragment): each text has exactly one problem, at ``key``.
MALFORMED: list[tuple[str, str, str, str]] = [
    (
        "a table the contract does not declare",
        SILO + SHARE + 'patient = ["patient_id"]\n',
        "share.patient",
        'table "patient" is not in the contract (did you mean "patients"?); share only tables '
        "the contract declares: patients, visits",
    ),
    (
        "a column the contract does not declare",
        SILO + '[share]\npatients = ["patient_id", "agee"]\n',
        "share.patients[1]",
        'column "agee" is not in contract table patients (did you mean "age"?); share only its '
        "columns: patient_id, name, age, sex",
    ),
    (
        "the unit column left out",
        SILO + '[share]\npatients = ["age", "sex"]\n',
        "share.patients",
        'the unit column "patient_id" of patients is not shared; add it to the list',
    ),
    (
        "an empty column list",
        SILO + SHARE + "visits = []\n",
        "share.visits",
        "the list is empty; list the columns to share, or remove visits to share none of it",
    ),
    (
        "a column list that is a string",
        SILO + SHARE + 'visits = "cost"\n',
        "share.visits",
        'expected an array of column names, got a string; write visits = ["patient_id", ...]',
    ),
    (
        "a column listed twice",
        SILO + '[share]\npatients = ["patient_id", "age", "AGE"]\n',
        "share.patients[2]",
        'column "AGE" is listed twice; list it once',
    ),
    (
        "a table listed twice in different case",
        SILO + SHARE + 'Patients = ["patient_id"]\n',
        "share.Patients",
        'table "Patients" repeats "patients" (names are case-insensitive); merge the two lists',
    ),
    (
        "nothing shared",
        SILO + "[share]\n",
        "share",
        "the silo shares no table",
    ),
    (
        "no share section",
        SILO,
        "share",
        "missing; add [share] with one table = [columns] line per table",
    ),
    (
        "an upper-case silo id",
        SILO.replace('"clinic-a"', '"Clinic A"', 1) + SHARE,
        "silo.id",
        '"Clinic A" is not a valid silo id; use lower-case letters, digits and inner hyphens '
        '(at most 63 characters), e.g. id = "clinic-a"',
    ),
    (
        "no data",
        '[silo]\nid = "clinic-a"\n' + SHARE,
        "silo.data",
        'missing; add data = "clinic.duckdb"',
    ),
    (
        "an empty data path",
        SILO.replace("demo:clinic-a", "") + SHARE,
        "silo.data",
        "the path is empty",
    ),
    (
        "a demo value without a clinic",
        SILO.replace("demo:clinic-a", "demo:") + SHARE,
        "silo.data",
        '"demo:" does not name a demo clinic; write data = "demo:<clinic id>"',
    ),
    (
        "a negative budget",
        SILO + SHARE + "[privacy]\nbudget_epsilon = -1\n",
        "privacy.budget_epsilon",
        "epsilon must be above 0, got -1; write budget_epsilon = 10.0",
    ),
    (
        "a zero per-query cap",
        SILO + SHARE + "[privacy]\nmax_epsilon_per_query = 0.0\n",
        "privacy.max_epsilon_per_query",
        "epsilon must be above 0, got 0; write max_epsilon_per_query = 1.0",
    ),
    (
        "a budget finer than a millionth",
        SILO + SHARE + "[privacy]\nbudget_epsilon = 1.0000001\n",
        "privacy.budget_epsilon",
        "1.0000001 has more than 6 decimal places",
    ),
    (
        "a negative group size",
        SILO + SHARE + "[privacy]\nmin_group_size = -1\n",
        "privacy.min_group_size",
        "min_group_size must be 0 or more, got -1",
    ),
    (
        "a fractional group size",
        SILO + SHARE + "[privacy]\nmin_group_size = 2.5\n",
        "privacy.min_group_size",
        "expected an integer, got a float; write min_group_size = 10",
    ),
    (
        "a misspelt privacy key",
        SILO + SHARE + "[privacy]\nbudget = 3.0\n",
        "privacy.budget",
        'unknown key (did you mean "budget_epsilon"?)',
    ),
    (
        "an analyst budget that is text",
        SILO + SHARE + '[privacy.analysts]\nalice = "lots"\n',
        "privacy.analysts.alice",
        "expected a number, got a string; write alice = 10.0",
    ),
    (
        "an analyst name with a space",
        SILO + SHARE + '[privacy.analysts]\n"alice smith" = 3.0\n',
        'privacy.analysts."alice smith"',
        "an analyst name cannot be empty or contain spaces",
    ),
    (
        "an unknown approval mode",
        SILO + SHARE + '[approval]\nmode = "automatic"\n',
        "approval.mode",
        'unknown approval mode "automatic" (did you mean "auto"?); use one of: auto, manual, deny',
    ),
    (
        "a zero timeout",
        SILO + SHARE + "[limits]\nquery_timeout_s = 0\n",
        "limits.query_timeout_s",
        "query_timeout_s must be above 0 seconds, got 0",
    ),
    (
        "limits that are not a table",
        "limits = 5\n" + SILO + SHARE,
        "limits",
        "expected a table, got an integer; write [limits] with query_timeout_s",
    ),
    (
        "a key that belongs to another section",
        SILO + "mode = 'auto'\n" + SHARE,
        "silo.mode",
        "unknown key; remove it or use one of: data, id, name",
    ),
    (
        "an unknown top-level section",
        SILO + SHARE + "[aproval]\nmode = 'auto'\n",
        "aproval",
        'unknown key (did you mean "approval"?)',
    ),
]

# The keys added for governance: budget renewal, what queries may do, rate limits.
MALFORMED += [
    (
        "a renewal period of zero days",
        SILO + SHARE + "[privacy]\nbudget_renewal_days = 0\n",
        "privacy.budget_renewal_days",
        "budget_renewal_days must be between 1 and 36500, got 0; write budget_renewal_days = 365, "
        "or remove it for lifetime budgets",
    ),
    (
        "a fractional renewal period",
        SILO + SHARE + "[privacy]\nbudget_renewal_days = 30.5\n",
        "privacy.budget_renewal_days",
        "expected an integer, got a float; write budget_renewal_days = 365",
    ),
    (
        "an aggregate the planner does not know",
        SILO + SHARE + '[queries]\naggregates = ["COUNT", "MEDIAN"]\n',
        "queries.aggregates[1]",
        'unknown aggregate "MEDIAN"; use some of: COUNT, SUM, AVG',
    ),
    (
        "a misspelt aggregate",
        SILO + SHARE + '[queries]\naggregates = ["cuont"]\n',
        "queries.aggregates[0]",
        'unknown aggregate "cuont" (did you mean "COUNT"?)',
    ),
    (
        "no aggregate allowed",
        SILO + SHARE + "[queries]\naggregates = []\n",
        "queries.aggregates",
        "the list is empty, so no query could run; allow at least one",
    ),
    (
        "an aggregate listed twice",
        SILO + SHARE + '[queries]\naggregates = ["count", "COUNT"]\n',
        "queries.aggregates[1]",
        '"COUNT" is listed twice; list it once',
    ),
    (
        "aggregates as a string",
        SILO + SHARE + '[queries]\naggregates = "COUNT"\n',
        "queries.aggregates",
        'expected an array, got a string; write aggregates = ["COUNT", "SUM", "AVG"]',
    ),
    (
        "an unknown use of the unit",
        SILO + SHARE + '[queries]\nunit_uses = ["where"]\n',
        "queries.unit_uses[0]",
        'unknown unit use "where"; use some of: filter, join, count_distinct',
    ),
    (
        "a unit use that is not a name",
        SILO + SHARE + "[queries]\nunit_uses = [1]\n",
        "queries.unit_uses[0]",
        "expected a name (a string), got an integer",
    ),
    (
        "a key space of zero cells",
        SILO + SHARE + "[queries]\nmax_cells = 0\n",
        "queries.max_cells",
        "max_cells must be 1 or more, got 0; write max_cells = 10000",
    ),
    (
        "a key space that is text",
        SILO + SHARE + '[queries]\nmax_cells = "many"\n',
        "queries.max_cells",
        "expected an integer, got a string; write max_cells = 10000",
    ),
    (
        "a misspelt queries key",
        SILO + SHARE + '[queries]\naggregate = ["COUNT"]\n',
        "queries.aggregate",
        'unknown key (did you mean "aggregates"?)',
    ),
    (
        "queries that are not a table",
        "queries = 1\n" + SILO + SHARE,
        "queries",
        "expected a table, got an integer",
    ),
    (
        "a rate limit in words",
        SILO + SHARE + '[limits]\nrate_limit = "60 per hour"\n',
        "limits.rate_limit",
        '"60 per hour" is not a rate limit; write queries/window with a window of second, '
        'minute, hour, day, e.g. rate_limit = "60/hour"',
    ),
    (
        "a rate limit over an unknown window",
        SILO + SHARE + '[limits]\nrate_limit = "60/fortnight"\n',
        "limits.rate_limit",
        'unknown window "fortnight"',
    ),
    (
        "a rate limit of zero",
        SILO + SHARE + '[limits]\nrate_limit = "0/hour"\n',
        "limits.rate_limit",
        "a rate limit of 0 queries would refuse every query",
    ),
    (
        "a rate limit that is a number",
        SILO + SHARE + "[limits]\nrate_limit = 60\n",
        "limits.rate_limit",
        'expected a string, got an integer; write rate_limit = "60/hour"',
    ),
    (
        "per-clinic breakdowns allowed without a silos list in the contract",
        SILO + SHARE + "[queries]\nallow_per_clinic = true\n",
        "queries.allow_per_clinic",
        "the contract declares no [federation] silos list, so no query can group by silo",
    ),
    (
        "per-clinic breakdowns allowed in words",
        SILO + SHARE + '[queries]\nallow_per_clinic = "yes"\n',
        "queries.allow_per_clinic",
        "expected true or false, got a string; write allow_per_clinic = false",
    ),
]

#: Cases the JSON Schema rejects too (without the contract).
SCHEMA_CATCHES: frozenset[str] = frozenset(
    {
        "a column list that is a string",
        "an empty column list",
        "nothing shared",
        "no share section",
        "an upper-case silo id",
        "no data",
        "an empty data path",
        "a negative budget",
        "a zero per-query cap",
        "a negative group size",
        "a fractional group size",
        "a misspelt privacy key",
        "an analyst budget that is text",
        "an unknown approval mode",
        "a zero timeout",
        "limits that are not a table",
        "a key that belongs to another section",
        "an unknown top-level section",
        "a renewal period of zero days",
        "a fractional renewal period",
        "an aggregate the planner does not know",
        "a misspelt aggregate",
        "no aggregate allowed",
        "aggregates as a string",
        "an unknown use of the unit",
        "a unit use that is not a name",
        "a key space of zero cells",
        "a key space that is text",
        "a misspelt queries key",
        "queries that are not a table",
        "a rate limit in words",
        "a rate limit over an unknown window",
        "a rate limit of zero",
        "a rate limit that is a number",
        "per-clinic breakdowns allowed in words",
    }
)
