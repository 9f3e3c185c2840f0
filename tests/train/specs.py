"""Model specs and exact totals for the fedsql.train tests, built like the planner builds them."""

from __future__ import annotations

import numpy as np

from fedsql.sql.plan import ModelSpec


def linear_spec(features: int, centers: list[float], scales: list[float]) -> ModelSpec:
    """A linear model over ``features`` features (centers / scales: features then target)."""
    size = features + 2
    terms = [("count", 0, 0)] + [
        ("cross", a, b) for a in range(size) for b in range(a, size) if (a, b) != (0, 0)
    ]
    names = tuple(f"x{i}" for i in range(features))
    return ModelSpec("linear", "m", "y", names, tuple(centers), tuple(scales), tuple(terms))


def logistic_spec(
    features: int, centers: list[float], scales: list[float], **options: float
) -> ModelSpec:
    """A logistic model over ``features`` features."""
    size = features + 1
    terms = [("count", 0, 0)] + [("gradient", a, -1) for a in range(size)]
    terms += [("hessian", a, b) for a in range(size) for b in range(a, size)]
    names = tuple(f"x{i}" for i in range(features))
    return ModelSpec(
        "logistic",
        "m",
        "y",
        names,
        tuple(centers),
        tuple(scales),
        tuple(terms),
        l2=float(options.get("l2", 0.0)),
        max_iter=int(options.get("max_iter", 25)),
        tol=float(options.get("tol", 1e-10)),
    )


def rescale(x: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Clamp-free rescaling of the feature columns (data already inside the bounds)."""
    p = len(spec.features)
    return (x - np.asarray(spec.centers[:p])) / np.asarray(spec.scales[:p])


def linear_totals(spec: ModelSpec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The released totals of a linear model over rows (x, y), noise off."""
    p = len(spec.features)
    yz = (y - spec.centers[p]) / spec.scales[p]
    z = np.c_[np.ones(len(y)), rescale(x, spec), yz]
    return np.array(
        [(z[:, a] * z[:, b]).sum() if k != "count" else len(y) for k, a, b in spec.terms]
    )


def logistic_totals(spec: ModelSpec, x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The released totals of one logistic round at coefficients ``at``, noise off."""
    z = np.c_[np.ones(len(y)), rescale(x, spec)]
    p = 1.0 / (1.0 + np.exp(-np.clip(z @ at, -40, 40)))
    out = []
    for kind, a, b in spec.terms:
        if kind == "count":
            out.append(float(len(y)))
        elif kind == "gradient":
            out.append(float(((y - p) * z[:, a]).sum()))
        else:
            out.append(float((p * (1 - p) * z[:, a] * z[:, b]).sum()))
    return np.array(out)
