"""The one exception tree of fedsql, placed under the PEP 249 (DB-API 2.0) names.

Every error fedsql raises is one of these, so ``except fedsql.Error`` catches them all and
data tools that know DB-API map them as they would for any other database::

    Exception
     ├── Warning
     └── Error
          ├── InterfaceError
          │    └── ConfigError            a contract, policy or hub file is wrong (file and key)
          └── DatabaseError
               ├── DataError
               ├── OperationalError
               │    ├── HubUnreachable     no hub answers at the address (down, wrong address)
               │    ├── BudgetExhausted    an analyst's privacy budget at a silo would be exceeded
               │    ├── QuorumNotMet       too few silos answered for a safe release
               │    ├── QueryTimeout       a partial query ran past its time limit and was killed
               │    ├── SiloRefused        a silo declined the query (its reason is attached)
               │    └── ProtocolError      a secure-aggregation or transport message was invalid
               │         └── OverflowDetected   a decoded total left its declared band
               ├── IntegrityError
               ├── InternalError
               ├── ProgrammingError
               │    ├── SQLSyntaxError     the text is not SQL the parser understands
               │    └── QueryRejected      valid SQL the planner refuses (names the construct)
               │         └── UnknownObject a table or column that is unknown or not shared
               └── NotSupportedError       statements a read-only aggregate engine never runs

Messages say what failed, where, and what to do. They never contain row values, pre-noise
aggregates or file paths outside the configuration.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BudgetExhausted",
    "ConfigError",
    "DataError",
    "DatabaseError",
    "Error",
    "HubUnreachable",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "OverflowDetected",
    "ProgrammingError",
    "ProtocolError",
    "QueryRejected",
    "QueryTimeout",
    "QuorumNotMet",
    "SQLSyntaxError",
    "SiloRefused",
    "UnknownObject",
    "Warning",
]


class Warning(Exception):
    """Important warnings, such as a result computed over fewer silos than asked."""


class Error(Exception):
    """Base class of every fedsql error."""


class InterfaceError(Error):
    """The client interface was misused (closed cursor, bad profile, bad arguments)."""


def _where(file: str | None, key: str | None) -> str:
    """The ``file: key: `` prefix of a configuration message (either part may be absent)."""
    return ": ".join(part for part in (file, key) if part) + (": " if file or key else "")


class ConfigError(InterfaceError):
    """A configuration file is invalid; the message names the file, the key and the fix.

    A loader that finds several problems at once passes them all as ``problems``, a sequence of
    ``(key, message)`` pairs; the text then lists one ``file: key: message`` line per problem.
    Without ``problems`` the error holds the single problem ``(key, message)``.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        problems: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        listed = tuple(problems) if problems else ((key or "", message),)
        text = _where(file, key) + message
        if len(listed) > 1:
            text += "".join(f"\n  - {_where(file, k)}{m}" for k, m in listed)
        super().__init__(text)
        self.file = file
        self.key = key
        self.reason = message
        self.problems: tuple[tuple[str, str], ...] = listed


class DatabaseError(Error):
    """Errors about the federated database and its queries."""


class DataError(DatabaseError):
    """A value could not be processed (bad parameter type, out-of-range literal)."""


class OperationalError(DatabaseError):
    """The federation could not complete an operation (silos, budgets, time limits)."""


class HubUnreachable(OperationalError):
    """No hub could be reached at the address: it is down, the address is wrong, or the network
    is in the way."""


class BudgetExhausted(OperationalError):
    """The query's epsilon exceeds what an analyst has left at a silo, or its per-query cap."""


class QuorumNotMet(OperationalError):
    """Too few silos took part for the release to be safe."""


class QueryTimeout(OperationalError):
    """A partial query exceeded the silo's time limit and was stopped."""


class SiloRefused(OperationalError):
    """A silo declined a query; ``reason`` is the silo's own explanation."""

    def __init__(self, silo: str, reason: str) -> None:
        super().__init__(f"silo {silo} refused the query: {reason}")
        self.silo = silo
        self.reason = reason


class ProtocolError(OperationalError):
    """A protocol message was malformed, unsigned, replayed or inconsistent."""


class OverflowDetected(ProtocolError):
    """A decoded secure-aggregation total fell outside its declared band; the result is rejected."""


class IntegrityError(DatabaseError):
    """A durable store (ledger, audit log) failed an integrity check."""


class InternalError(DatabaseError):
    """fedsql reached a state it should never reach; please report it."""


class ProgrammingError(DatabaseError):
    """The query is wrong for this federation (syntax, unknown names, unsupported SQL)."""


class SQLSyntaxError(ProgrammingError):
    """The text could not be parsed as SQL."""


class QueryRejected(ProgrammingError):
    """Valid SQL that the planner refuses; the message names the construct and the alternative."""


class UnknownObject(QueryRejected):
    """A table or column that the contract does not define or that no silo shares."""


class NotSupportedError(DatabaseError):
    """A statement a read-only aggregate engine never runs (DDL, DML, PRAGMA, ...)."""
