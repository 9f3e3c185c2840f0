"""The planner: analyst SQL + parameters + contract -> FederatedPlan, every check before any data.

Pipeline (each step is its own module)::

    parse_statement -> bind_parameters -> check_clauses -> check_expressions -> resolve_names
    -> rewrite_filters -> plan_keys -> check_grouped_references -> check_aggregates
    -> check_row_types -> collect_measures -> build_partial_sql (guard_errors), build_finalize
    -> explain

Visibility (``visible``) only decides acceptance: the plan, and so its hash, is a function of
the SQL text, the parameters and the contract alone, so the hub and every silo derive the same
plan from the same request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fedsql.catalog import Contract
from fedsql.errors import QueryRejected
from fedsql.sql.aggregate_calls import rewrite_filters
from fedsql.sql.check_aggregates import check_aggregates
from fedsql.sql.check_clauses import check_clauses
from fedsql.sql.check_expressions import check_expressions
from fedsql.sql.check_types import check_row_types
from fedsql.sql.explain import explain
from fedsql.sql.finalize_sql import build_finalize
from fedsql.sql.group_keys import check_grouped_references, plan_keys
from fedsql.sql.join_using import expand_join_using
from fedsql.sql.measures import collect_measures
from fedsql.sql.parameters import bind_parameters
from fedsql.sql.partial_sql import build_partial_sql
from fedsql.sql.plan import FederatedPlan
from fedsql.sql.regression import model_call, plan_model
from fedsql.sql.resolve_names import resolve_names
from fedsql.sql.statement import parse_statement


def plan_query(
    sql: str,
    params: Sequence[object] | Mapping[str, object] | None,
    contract: Contract,
    visible: Mapping[str, Sequence[str]],
) -> FederatedPlan:
    """Validate analyst SQL and plan it as a federated, contribution-bounded aggregate.

    Args:
        sql: One SELECT in the DuckDB dialect.
        params: Values for ``?`` / ``$1`` (a sequence) or ``$name`` / ``:name`` (a mapping)
            placeholders, or None.
        contract: The federation contract: tables, units, row caps, bounds and domains.
        visible: Table -> columns the caller may see (a silo's shared columns, or what every
            connected silo shares at the hub). Decides acceptance only, never plan content.

    Returns:
        The plan: partial SQL for silos, finalize and projection SQL for the hub, key spaces,
        measures with sensitivities, output columns and explanation lines.

    Raises:
        SQLSyntaxError: The text is not parseable SQL.
        NotSupportedError: The statement is not a query (DDL, DML, PRAGMA, SET, ...).
        QueryRejected: Valid SQL outside the supported scope (or nested too deeply to plan); the
            message names the construct and what to do instead.
        UnknownObject: An unknown, unshared or qualified table, or an unknown or unshared column.
        ProgrammingError: Parameters that do not match the placeholders.
        DataError: A parameter value of an unsupported type.
    """
    try:
        return _plan(sql, params, contract, visible)
    except RecursionError:
        raise QueryRejected(
            "the query nests expressions too deeply to plan (parentheses or function calls "
            "about 40 levels deep); simplify it"
        ) from None


def _plan(
    sql: str,
    params: Sequence[object] | Mapping[str, object] | None,
    contract: Contract,
    visible: Mapping[str, Sequence[str]],
) -> FederatedPlan:
    """The pipeline of :func:`plan_query`."""
    select = parse_statement(sql)
    expand_join_using(select)
    canonical_params = bind_parameters(select, params)
    if model_call(select) is not None:
        return plan_model(sql, select, canonical_params, contract, visible)
    check_clauses(select)
    check_expressions(select)
    query = resolve_names(select, contract, visible)
    rewrite_filters(query)
    keys = plan_keys(query)
    check_grouped_references(query)
    check_aggregates(query)
    check_row_types(query)
    measures = collect_measures(query, keys)
    partial_sql = build_partial_sql(query, keys, measures)
    partial_sql_uncapped = build_partial_sql(query, keys, measures, cap=False)
    finalize_sql, projection_sql, outputs = build_finalize(query, keys, measures)
    tables, columns, joins = query.reads()
    return FederatedPlan(
        sql=sql,
        params=canonical_params,
        contract_fingerprint=contract.fingerprint,
        tables=tables,
        columns=columns,
        joins=joins,
        per_silo=query.per_silo,
        row_cap=query.table.max_rows_per_unit,
        keys=keys,
        measures=tuple(measures.measures),
        count_measure=measures.count_measure.name,
        outputs=outputs,
        partial_sql=partial_sql,
        partial_sql_uncapped=partial_sql_uncapped,
        finalize_sql=finalize_sql,
        projection_sql=projection_sql,
        explanation=explain(query, keys, measures, outputs),
    )
