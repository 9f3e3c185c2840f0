"""Typed reading of one TOML table that records problems instead of stopping at the first."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from decimal import Decimal
from typing import Any

from fedsql.config.names import key_path
from fedsql.config.problems import Problems, describe, did_you_mean


class Section:
    """A TOML table being read: its data, its dotted path and the problem list of its file.

    Every accessor returns None when the value is missing or wrong, after recording why, so a
    loader can read on and report every problem of a file at once.
    """

    def __init__(self, data: Mapping[str, Any], path: str, problems: Problems) -> None:
        self.data = data
        self.path = path
        self.problems = problems

    def key(self, name: str) -> str:
        """The dotted path of ``name`` inside this table."""
        return key_path(self.path, name)

    def add(self, name: str, message: str) -> None:
        """Record a problem with key ``name`` of this table."""
        self.problems.add(self.key(name), message)

    def __contains__(self, name: object) -> bool:
        return name in self.data

    def items(self) -> Iterator[tuple[str, Any]]:
        """The table's ``(key, value)`` pairs in file order."""
        yield from self.data.items()

    def check_keys(self, allowed: Collection[str]) -> None:
        """Record every key of this table that is not in ``allowed`` (with a did-you-mean)."""
        for name in self.data:
            if name not in allowed:
                listing = ", ".join(sorted(allowed))
                self.add(
                    name,
                    f"unknown key{did_you_mean(name, allowed)}; remove it or use one of: {listing}",
                )

    def _fetch(self, name: str, example: str, required: bool) -> Any:
        if name not in self.data:
            if required:
                self.add(name, f"missing; add {example}")
            return None
        return self.data[name]

    def _wrong(self, name: str, expected: str, value: object, example: str) -> None:
        self.add(name, f"expected {expected}, got {describe(value)}; write {example}")

    def table(self, name: str, example: str, *, required: bool = False) -> Section | None:
        """The sub-table ``name`` as a Section, or None if missing or not a table."""
        value = self._fetch(name, example, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            self._wrong(name, "a table", value, example)
            return None
        return Section(value, self.key(name), self.problems)

    def string(self, name: str, example: str, *, required: bool = False) -> str | None:
        """The string at ``name``, or None if missing or not a string."""
        value = self._fetch(name, example, required)
        if value is None:
            return None
        if not isinstance(value, str):
            self._wrong(name, "a string", value, example)
            return None
        return value

    def integer(self, name: str, example: str, *, required: bool = False) -> int | None:
        """The integer at ``name``, or None if missing or not an integer."""
        value = self._fetch(name, example, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(name, "an integer", value, example)
            return None
        return value

    def boolean(self, name: str, example: str, *, required: bool = False) -> bool | None:
        """The boolean at ``name``, or None if missing or not a boolean."""
        value = self._fetch(name, example, required)
        if value is None:
            return None
        if not isinstance(value, bool):
            self._wrong(name, "true or false", value, example)
            return None
        return value

    def number(self, name: str, example: str, *, required: bool = False) -> float | None:
        """The finite number (integer or float) at ``name`` as a float, or None."""
        value = self._fetch(name, example, required)
        if value is None:
            return None
        return number_value(value, self.key(name), example, self.problems)

    def array(self, name: str, example: str, *, required: bool = False) -> list[Any] | None:
        """The array at ``name``, or None if missing or not an array."""
        value = self._fetch(name, example, required)
        if value is None:
            return None
        if not isinstance(value, list):
            self._wrong(name, "an array", value, example)
            return None
        return value


def number_value(value: object, key: str, example: str, problems: Problems) -> float | None:
    """``value`` as a finite float, recording a problem at ``key`` if it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(key, f"expected a number, got {describe(value)}; write {example}")
        return None
    number = float(value)
    if not math.isfinite(number):
        problems.add(key, f"{value} is not a finite number; write {example}")
        return None
    return number


def is_micro_multiple(value: float) -> bool:
    """True if ``value`` (as written) is a whole number of millionths.

    Budgets are kept as integer micro-epsilon, so an epsilon with finer digits cannot be charged
    exactly.

    >>> is_micro_multiple(0.25), is_micro_multiple(1e-6), is_micro_multiple(0.1234567)
    (True, True, False)
    """
    scaled = Decimal(repr(value)) * 1_000_000
    return scaled == scaled.to_integral_value()


def epsilon_value(section: Section, name: str, example: str) -> float | None:
    """A positive, finite epsilon with at most six decimals at ``name`` of ``section``, or None."""
    value = section.number(name, example)
    if value is None:
        return None
    if value <= 0:
        section.add(name, f"epsilon must be above 0, got {value:g}; write {example}")
        return None
    if not is_micro_multiple(value):
        section.add(
            name,
            f"{value!r} has more than 6 decimal places (budgets are counted in millionths of "
            "epsilon); round it to 6 decimals",
        )
        return None
    return value
