"""Print the fitted models of a model query (LINEAR_REGRESSION, ...) as coefficient tables."""

from __future__ import annotations

import math

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from fedsql.train import Model, models_from_table

#: Two-sided 95% normal quantile.
_Z95 = 1.959963984540054


def has_models(table: pa.Table) -> bool:
    """True when the result holds a model column.

    >>> has_models(pa.table({"n": [1]}))
    False
    """
    return any(
        pa.types.is_struct(f.type) and f.type.get_field_index("coefficients") >= 0
        for f in table.schema
    )


def _number(value: float) -> str:
    """Four significant digits, or a dash when not finite.

    >>> _number(0.0499259), _number(float("nan"))
    ('0.04993', '—')
    """
    return f"{value:.4g}" if math.isfinite(value) else "—"


def _summary(model: Model, record: dict[str, object]) -> str:
    parts = [f"n = {model.n:,}"]
    if record.get("r2") is not None:
        parts.append(f"R² = {_number(float(record['r2']))}")  # type: ignore[arg-type]
    if model.kind == "logistic":
        state = "converged" if record.get("converged") else "not converged"
        parts.append(f"{record.get('iterations')} Newton rounds, {state}")
    return ", ".join(parts)


def print_models(console: Console, table: pa.Table) -> None:
    """One coefficient table per group: estimate, standard error, 95% interval, noise share.

    Args:
        console: Where to print.
        table: The result of a model query.
    """
    column = next(
        f.name
        for f in table.schema
        if pa.types.is_struct(f.type) and f.type.get_field_index("coefficients") >= 0
    )
    records = {i: row[column] for i, row in enumerate(table.to_pylist()) if row[column] is not None}
    models = models_from_table(table, column)
    if not models:
        console.print("no model: every group was suppressed or had too few rows")
    for model, record in zip(models, records.values(), strict=True):
        title = ", ".join(f"{k} = {v}" for k, v in model.group.items())
        link = "logit P" if model.kind == "logistic" else "E"
        heading = f"{model.kind} regression: {link}({model.target})"
        out = Table(title=f"{heading} for {title}" if title else heading, header_style="bold")
        for name, justify in (
            ("term", "left"),
            ("estimate", "right"),
            ("std error", "right"),
            ("95% interval", "right"),
            ("noise std error", "right"),
        ):
            out.add_column(name, justify=justify)  # type: ignore[arg-type]
        noise = dict(record["noise_std_errors"])
        intercept_noise = float(record["intercept_noise_std_error"])
        rows = [("intercept", model.intercept, model.intercept_std_error, intercept_noise)]
        rows += [
            (name, value, model.std_errors[name], float(noise[name]))
            for name, value in model.coefficients.items()
        ]
        for term, value, se, noise_se in rows:
            interval = f"[{_number(value - _Z95 * se)}, {_number(value + _Z95 * se)}]"
            out.add_row(term, _number(value), _number(se), interval, _number(noise_se))
        out.caption = _summary(model, record)
        console.print(out)
