"""A plan's partial query, rewritten for a source's own engine with the same bounding and clamping.

The planner writes DuckDB SQL (``fedsql explain`` shows it). To run it in PostgreSQL or MySQL /
MariaDB the rewrite:

* replaces each federated table with its bound relation (:mod:`connectors.binding_sql`), named
  like the table, so the query's column names stay the contract's;
* replaces DuckDB's ``rowid`` with the relation's row identity, and ``HASH(__rid, $fedsql_salt)``
  (the keyed row order of the per-unit cap) with a salted hash the source has
  (``hashtextextended`` in PostgreSQL, ``MD5`` in MySQL), the salt inlined as an integer literal;
* keeps ``QUALIFY`` where the source has it and otherwise turns it into a filtered subquery
  (sqlglot's own rewrite), so at most k rows per unit still count;
* returns sums as DOUBLE (integer sums would come back as NUMERIC / DECIMAL);
* translates the per-row error guards: ``TRY(a % b)`` and ``TRY(a // b)`` become operations on
  ``NULLIF(b, 0)`` (NULL where DuckDB's TRY gives NULL; ``//`` as
  ``FLOOR(CAST(a AS DOUBLE) / NULLIF(b, 0))``, which floors like DuckDB where the sources'
  ``DIV`` truncates); any other guarded operation is refused, since without the guard whether a
  query fails would depend on one row;
* reads joined relations under the planner's aliases (``__s0``, ...), maps ``alias.rowid`` to
  each relation's row identity (and drops it from relations whose identity is not hashed, such
  as those of semi-joins), and hashes several identities as one text;
* runs an ``EXISTS`` correlated on the unit as a NULL-safe ``IN`` semi-join (:func:`_exists_as_in`);
* translates ``TRY(double ± constant)``, ``TRY(CAST(integer or boolean AS VARCHAR))`` and summed
  conditions to what gives DuckDB's values in the source, knowing the contract's column types;
* refuses, before any budget is spent, operations outside :data:`PUSHDOWN_SAFE` and the shapes
  :func:`_structure_refused` accepts: ones that cannot fail in DuckDB but can elsewhere (``/``
  by zero, ``sqrt`` of a negative, an integer or double overflow), or that mean something else
  there (day-of-week numbering, LIKE's backslash escapes, ``date_trunc``'s time zone).

LEAST / GREATEST and casts are translated by sqlglot; the planner's clamps put every NULL
through ``CASE WHEN x IS NULL`` first, so engines that propagate NULL through LEAST agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from sqlglot import ErrorLevel, exp, parse_one

from connectors.binding_sql import ROW_ID
from connectors.value_rewrites import (
    boolean_as_integer,
    check_concatenation,
    divide_by_constant,
    guard,
    types_by_alias,
)
from fedsql.errors import QueryRejected

#: The DuckDB column of the row identity and the parameter of the salt, as the planner writes.
DUCKDB_ROW_ID = "rowid"
SALT_PARAMETER = "fedsql_salt"
PLANNER_DIALECT = "duckdb"

#: What a partial query may hold to run in another engine with DuckDB's results: the planner's
#: own shapes, and conditions that cannot fail on a row there and mean the same in PostgreSQL
#: and MySQL. Anything else (division, sqrt, ln, day-of-week numbering, string length in bytes,
#: ...) could fail on one row where DuckDB does not, or give other answers: refused.
PUSHDOWN_SAFE: tuple[type[exp.Expr], ...] = (
    # the planner's query shape
    exp.With, exp.CTE, exp.Select, exp.From, exp.Where, exp.Group, exp.Qualify, exp.Window,
    exp.RowNumber, exp.Order, exp.Ordered, exp.Alias, exp.Column, exp.Identifier, exp.Table,
    exp.Join, exp.Subquery, exp.Exists, exp.Distinct,
    exp.TableAlias, exp.Star, exp.Literal, exp.Null, exp.Boolean, exp.Placeholder, exp.DataType,
    exp.DataTypeParam, exp.Paren, exp.Count, exp.Sum, exp.Case, exp.If, exp.Is, exp.Greatest,
    exp.Least, exp.Cast, exp.Try,
    # conditions
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between,
    exp.In, exp.Like, exp.DPipe, exp.Coalesce, exp.Nullif, exp.Lower, exp.Upper, exp.Trim, exp.Year,
    exp.Month, exp.Day, exp.Quarter,
)  # fmt: skip

#: Builds the salted hash ordering rows: (row identity, salt) -> expression.
SaltedHash = Callable[[exp.Expr, int], exp.Expr]


def postgres_hash(row_id: exp.Expr, salt: int) -> exp.Expr:
    """``hashtextextended(CAST(row_id AS TEXT), salt)``: a 64-bit keyed hash in PostgreSQL.

    >>> postgres_hash(exp.column("r"), 7).sql("postgres")
    'HASHTEXTEXTENDED(CAST(r AS TEXT), 7)'
    """
    text = exp.Cast(this=row_id, to=exp.DataType.build("TEXT"))
    return exp.Anonymous(this="hashtextextended", expressions=[text, exp.Literal.number(salt)])


def mysql_hash(row_id: exp.Expr, salt: int) -> exp.Expr:
    """``MD5(CONCAT(row_id, ':', salt))``: a keyed hash in MySQL / MariaDB (ordered as text).

    >>> mysql_hash(exp.column("r"), 7).sql("mysql")
    "MD5(CONCAT(r, ':', 7))"
    """
    joined = exp.Anonymous(
        this="CONCAT", expressions=[row_id, exp.Literal.string(":"), exp.Literal.number(salt)]
    )
    return exp.Anonymous(this="MD5", expressions=[joined])


def duckdb_hash(row_id: exp.Expr, salt: int) -> exp.Expr:
    """DuckDB's own ``HASH(row_id, salt)``.

    >>> duckdb_hash(exp.column("r"), 7).sql("duckdb")
    'HASH(r, 7)'
    """
    return exp.Anonymous(this="HASH", expressions=[row_id, exp.Literal.number(salt)])


def uses_row_cap(partial_sql: str) -> bool:
    """True if the partial query keeps at most k rows per unit (it has a QUALIFY).

    >>> uses_row_cap("SELECT * FROM t QUALIFY ROW_NUMBER() OVER () <= 2")
    True
    """
    return parse_one(partial_sql, read=PLANNER_DIALECT).find(exp.Qualify) is not None


def check_pushdown_safe(tree: exp.Expr) -> None:
    """Refuse a partial query holding anything outside :data:`PUSHDOWN_SAFE`.

    Raises:
        QueryRejected: naming the operation.
    """
    for node in tree.walk():
        name = ""
        if isinstance(node, exp.Anonymous):
            if str(node.name).upper() != "HASH":
                name = str(node.name).upper()
        elif isinstance(node, exp.Neg):
            if not isinstance(node.this, exp.Literal):
                name = "negation"
        elif isinstance(node, exp.Mod | exp.IntDiv | exp.Add | exp.Sub | exp.TimestampTrunc):
            if not isinstance(node.parent, exp.Try):  # the guard decides (see guard)
                name = {
                    exp.Mod: "%",
                    exp.IntDiv: "//",
                    exp.Add: "+",
                    exp.Sub: "-",
                    exp.TimestampTrunc: "date_trunc",
                }[type(node)]
        elif isinstance(node, exp.Var) and isinstance(node.parent, exp.TimestampTrunc):
            pass  # the unit of a date_trunc (the guard checks it)
        elif isinstance(node, exp.Div):
            if not _constant_divisor(node.expression):
                name = "/ by anything but a constant of magnitude at least 1"
        elif isinstance(node, exp.Join | exp.Subquery | exp.Distinct | exp.Mul):
            name = _structure_refused(node)
        elif isinstance(node, exp.Like):
            pattern = node.expression
            if not isinstance(pattern, exp.Literal) or "\\" in str(pattern.this):
                name = "LIKE with a backslash (an escape character in other engines)"
        elif not isinstance(node, PUSHDOWN_SAFE):
            name = type(node).__name__.upper()
        if name:
            raise QueryRejected(
                f"this clinic runs queries in its own database, where {name} could fail on a "
                "single row or give another answer than DuckDB; it cannot guard it, so the "
                "query is refused here: rewrite the condition without it"
            )


def _constant_divisor(node: exp.Expr) -> bool:
    """A numeric literal of magnitude at least 1 (so a quotient never overflows)."""
    literal = node.this if isinstance(node, exp.Neg) else node
    if not isinstance(literal, exp.Literal) or literal.is_string:
        return False
    try:
        return abs(float(literal.this)) >= 1.0
    except ValueError:
        return False


def _structure_refused(node: exp.Expr) -> str:
    """The name of a join, subquery, DISTINCT or product outside the shapes that answer like
    DuckDB everywhere, or "" when it is one of them.

    * ``JOIN`` / ``LEFT JOIN ... ON``: inner and left joins mean the same in every engine
      (RIGHT / FULL joins, ``USING`` and ``NATURAL`` joins are refused: MariaDB has no FULL
      JOIN, and the planner writes none of them).
    * a subquery in FROM / JOIN (an inlined CTE or derived table) or as the list of ``IN`` /
      ``NOT IN``: the three-valued logic of ``NOT IN`` over a list holding NULL is the SQL
      standard's in all three engines. A subquery used as a value is refused: a scalar
      subquery returning two rows fails in PostgreSQL and MariaDB on the data alone.
    * ``DISTINCT`` of a SELECT, or of ``COUNT`` over one column (``DISTINCT ON`` is refused).
    * a product only as the planner's sum of squares ``SUM(a * a)`` of one clamped value slot,
      whose bounds the contract fixes; an analyst's product is guarded by TRY, refused below.
    """
    if isinstance(node, exp.Join):
        plain = node.args.get("on") is not None and not node.args.get("using")
        plain = plain and not node.args.get("method")
        if plain and node.side in ("", "LEFT") and node.kind in ("", "INNER", "OUTER"):
            return ""
        return "this kind of JOIN"
    if isinstance(node, exp.Subquery):
        parent = node.parent
        if isinstance(parent, exp.From | exp.Join):
            return ""
        if isinstance(parent, exp.In) and parent.args.get("query") is node:
            return ""
        return "a subquery used as a value"
    if isinstance(node, exp.Distinct):
        if node.args.get("on") is not None:
            return "DISTINCT ON"
        if isinstance(node.parent, exp.Select) and node.arg_key == "distinct":
            return ""
        if isinstance(node.parent, exp.Count) and len(node.expressions) == 1:
            return ""
        return "DISTINCT"
    left, right = node.this, node.expression
    square = isinstance(left, exp.Column) and left == right and not left.table
    if square and isinstance(node.parent, exp.Sum) and re.fullmatch(r"a\d+", left.name):
        return ""
    return "MUL"


def transpile_partial(
    partial_sql: str,
    relations: dict[str, exp.Expr],
    dialect: str,
    salted_hash: SaltedHash,
    salt: int,
    column_types: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """The partial query in ``dialect`` over the bound relations.

    Args:
        partial_sql: The plan's partial SQL (DuckDB dialect).
        relations: Federated table name -> its bound SELECT (with a ``__fedsql_rid`` column when
            the query caps rows).
        dialect: The sqlglot dialect of the source.
        salted_hash: How the source computes the keyed row order.
        salt: The query's secret salt.
        column_types: Federated table -> column -> contract type; without it no arithmetic,
            cast or concatenation whose meaning depends on a column's type is run.

    Returns:
        SQL for the source, returning the same columns and groups as the partial query.

    Raises:
        QueryRejected: The query names a table without a binding, or uses a guarded operation
            the source cannot guard.
    """
    tree = parse_one(partial_sql, read=PLANNER_DIALECT)
    check_pushdown_safe(tree)

    types = types_by_alias(tree, column_types or {})

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Try):
            return guard(node, types, dialect)
        if isinstance(node, exp.DPipe):
            check_concatenation(node, types)
        if isinstance(node, exp.Div):
            return divide_by_constant(node, types)
        if isinstance(node, exp.Cast) and dialect != PLANNER_DIALECT:
            return boolean_as_integer(node, types)
        if isinstance(node, exp.Table) and not node.args.get("db"):
            name = str(node.name).lower()
            if name in relations:
                alias = node.alias or name
                relation = relations[name].copy()
                if "" not in row_ids_read and alias.lower() not in row_ids_read:
                    _drop_row_id_column(relation)
                return exp.Subquery(
                    this=relation,
                    alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
                )
            return node
        if isinstance(node, exp.Column) and node.name.lower() == DUCKDB_ROW_ID:
            qualifier = exp.to_identifier(node.table, quoted=True) if node.table else None
            return exp.Column(this=exp.to_identifier(ROW_ID, quoted=True), table=qualifier)
        if isinstance(node, exp.Anonymous) and str(node.name).upper() == "HASH":
            *row_ids, key = node.expressions
            if row_ids and isinstance(key, exp.Placeholder):
                return salted_hash(_one_row_id(row_ids), salt)
        if isinstance(node, exp.Placeholder) and node.name == SALT_PARAMETER:
            return exp.Literal.number(salt)
        if isinstance(node, exp.Year | exp.Month | exp.Day | exp.Quarter):
            # DuckDB gives BIGINT; PostgreSQL's EXTRACT gives NUMERIC, which comes back as text
            # through Arrow: cast, so group keys compare equal to the public domain's values.
            return exp.Cast(this=node, to=exp.DataType.build("BIGINT"))
        return node

    capped = uses_row_cap(partial_sql)
    # Relations (by alias; "" for an unqualified rowid) whose row identity the query reads.
    row_ids_read = {
        c.table.lower() for c in tree.find_all(exp.Column) if c.name.lower() == DUCKDB_ROW_ID
    }
    if not capped:
        row_ids_read.clear()
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    missing = [
        t.name
        for t in tree.find_all(exp.Table)
        if t.name.lower() not in cte_names and t.name.lower() not in relations
    ]
    if missing:
        raise QueryRejected(f"table {missing[0]} has no binding at this clinic")
    if not capped:
        _drop_row_id(tree)
    if dialect != PLANNER_DIALECT:
        tree = tree.transform(
            lambda node: (_exists_as_in(node) or node) if isinstance(node, exp.Exists) else node
        )
    rewritten = tree.transform(rewrite)
    if dialect != PLANNER_DIALECT:
        _sums_as_double(rewritten)
    return rewritten.sql(dialect, pretty=True, unsupported_level=ErrorLevel.RAISE)


def _sums_as_double(tree: exp.Expr) -> None:
    """Return sums as DOUBLE: the silo reads every measure as float64 anyway, and engines
    give integer sums as NUMERIC / DECIMAL, which drivers may hand back as text."""
    outer = tree if isinstance(tree, exp.Select) else None
    if outer is None:
        return
    for projection in outer.selects:
        target = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(target, exp.Sum):
            target.replace(exp.Cast(this=target.copy(), to=exp.DataType.build("DOUBLE")))


def _exists_as_in(node: exp.Exists) -> exp.Expr | None:
    """An ``EXISTS`` correlated on one equality only, as the semi-join it is, or None.

    ``EXISTS (SELECT 1 FROM r AS i WHERE i.u = o.u AND c)`` becomes
    ``(o.u IS NOT NULL AND o.u IN (SELECT i.u FROM r AS i WHERE c AND i.u IS NOT NULL))``:
    true and false on exactly the same rows, never NULL (so ``NOT`` keeps its meaning), and
    MariaDB, which runs a correlated subquery over a derived table once per outer row, runs
    this one once as a hashed semi-join.
    """
    select = node.this
    where = select.args.get("where") if isinstance(select, exp.Select) else None
    if where is None or any(select.args.get(k) for k in ("group", "having", "joins")):
        return None
    inner = {t.alias_or_name.lower() for t in select.find_all(exp.Table)}
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    for i, conjunct in enumerate(conjuncts):
        if not isinstance(conjunct, exp.EQ):
            continue
        sides = [conjunct.this, conjunct.expression]
        if not all(isinstance(side, exp.Column) and side.table for side in sides):
            continue
        inside = [side for side in sides if side.table.lower() in inner]
        if len(inside) != 1:
            continue
        inner_column = inside[0]
        outer_column = sides[1] if inner_column is sides[0] else sides[0]
        rest = [c for j, c in enumerate(conjuncts) if j != i]
        columns = [c for part in (*rest, select.args["from_"]) for c in part.find_all(exp.Column)]
        if any(not c.table or c.table.lower() not in inner for c in columns):
            return None  # correlated on something else as well: kept as EXISTS
        present = exp.not_(exp.paren(exp.Is(this=inner_column.copy(), expression=exp.Null())))
        semi = exp.select(inner_column.copy()).from_(select.args["from_"].this.copy())
        semi = semi.where(exp.and_(*(exp.paren(c.copy()) for c in rest), present))
        known = exp.not_(exp.paren(exp.Is(this=outer_column.copy(), expression=exp.Null())))
        member = exp.In(this=outer_column.copy(), query=exp.Subquery(this=semi))
        return exp.Paren(this=exp.and_(known, member))
    return None


def _one_row_id(row_ids: list[exp.Expr]) -> exp.Expr:
    """One row identity from the joined relations' ones (``__rid0``, ``__rid1``, ...).

    A single identity is kept as it is; several are joined as text, a NULL one (the right side
    of a LEFT JOIN without a match) read as empty text, so the keyed hash never turns NULL.

    >>> _one_row_id([exp.column("a"), exp.column("b")]).sql("postgres")
    "CONCAT(COALESCE(CAST(a AS TEXT), ''), ':', COALESCE(CAST(b AS TEXT), ''))"
    """
    if len(row_ids) == 1:
        return row_ids[0].copy()
    parts: list[exp.Expr] = []
    for row_id in row_ids:
        if parts:
            parts.append(exp.Literal.string(":"))
        text = exp.Cast(this=row_id.copy(), to=exp.DataType.build("TEXT"))
        parts.append(exp.Coalesce(this=text, expressions=[exp.Literal.string("")]))
    return exp.Anonymous(this="CONCAT", expressions=parts)


def _drop_row_id_column(relation: exp.Expr) -> None:
    """Remove the row identity from a bound relation whose identity the query does not read
    (the relation of an IN / EXISTS subquery, or of an uncapped query)."""
    for alias in list(relation.find_all(exp.Alias)):
        if alias.alias == ROW_ID and alias.parent is relation:
            alias.pop()


def _drop_row_id(tree: exp.Expr) -> None:
    """Remove the unused row identity projections (``__rid``, ``__rid0``, ...) of an uncapped
    query."""
    for alias in list(tree.find_all(exp.Alias)):
        if re.fullmatch(r"__rid\d*", alias.alias):
            alias.pop()
