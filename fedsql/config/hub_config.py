"""The hub's configuration (TOML): where it listens, and its contract, roster and keys.

::

    [hub]
    listen = "127.0.0.1:7700"        # host:port; port 0 picks a free one
    contract = "contract.toml"       # the federation contract
    roster = "roster.json"           # the roster signed by the enrolment authority
    key = "keys/coordinator.key"     # the hub's Ed25519 key (0600), named in the roster
    authority = "keys/authority.pub" # the enrolment authority's public key (hex)
    tls = "tls/hub"                  # the hub's mTLS identity folder (fedsql ca issue hub NAME)
    audit = "hub.audit.log"          # the hub's signed, hash-chained audit log (this default)
    insecure_local = false           # without tls: plaintext on loopback only, for experiments
    round_timeout_s = 60             # how long each secure-aggregation round waits for silos
                                     # (and so how long an operator has to approve a held query)

Relative paths are resolved against the file's folder.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from fedsql.errors import ConfigError

HUB_KEYS = frozenset(
    {
        "listen",
        "contract",
        "roster",
        "key",
        "authority",
        "tls",
        "audit",
        "insecure_local",
        "round_timeout_s",
    }
)


@dataclass(frozen=True)
class HubConfig:
    """A parsed hub configuration, with absolute paths."""

    listen: str
    contract: Path
    roster: Path
    key: Path
    authority: Path
    tls: Path | None = None
    insecure_local: bool = False
    audit: Path | None = None
    round_timeout_s: float = 60.0


def is_loopback(address: str) -> bool:
    """True when ``host:port`` names a loopback host.

    >>> is_loopback("127.0.0.1:0"), is_loopback("localhost:7700"), is_loopback("0.0.0.0:1")
    (True, True, False)
    """
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_hub_config(path: str | os.PathLike[str]) -> HubConfig:
    """Read a hub configuration file, reporting every problem at once.

    Raises:
        ConfigError: The file is unreadable or invalid (the message names each key).
    """
    file = Path(path)
    try:
        body = tomllib.loads(file.read_text())
    except OSError:
        raise ConfigError("cannot read the hub configuration", file=str(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", file=str(file)) from None
    hub = body.get("hub")
    problems: list[tuple[str, str]] = []
    if not isinstance(hub, dict):
        raise ConfigError("missing [hub] table; see the documented example", file=str(file))
    for key in sorted(set(hub) - HUB_KEYS):
        problems.append(
            (f"hub.{key}", f"unknown key; known keys are {', '.join(sorted(HUB_KEYS))}")
        )
    for key in ("listen", "contract", "roster", "key", "authority"):
        if not isinstance(hub.get(key), str) or not hub.get(key):
            problems.append((f"hub.{key}", "required text value is missing"))
    insecure = hub.get("insecure_local", False)
    if not isinstance(insecure, bool):
        problems.append(("hub.insecure_local", "must be true or false"))
    audit = hub.get("audit", "hub.audit.log")
    if not isinstance(audit, str) or not audit:
        problems.append(("hub.audit", "must be the path of the hub's audit log"))
    timeout = hub.get("round_timeout_s", 60.0)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= 86400
    ):
        problems.append(("hub.round_timeout_s", "must be a number of seconds in (0, 86400]"))
    tls = hub.get("tls")
    if tls is not None and (not isinstance(tls, str) or not tls):
        problems.append(("hub.tls", "must be the path of the hub's TLS identity folder"))
    if tls is None and insecure is not True:
        problems.append(
            (
                "hub.tls",
                "set tls to the hub's identity folder (or insecure_local = true on loopback)",
            )
        )
    if problems:
        raise ConfigError(
            "invalid hub configuration:\n"
            + "\n".join(f"  - {file}: {k}: {m}" for k, m in problems),
            file=str(file),
            problems=problems,
        )
    base = file.parent

    def resolve(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else (base / p)

    config = HubConfig(
        listen=str(hub["listen"]),
        contract=resolve(hub["contract"]),
        roster=resolve(hub["roster"]),
        key=resolve(hub["key"]),
        authority=resolve(hub["authority"]),
        tls=resolve(tls) if isinstance(tls, str) else None,
        insecure_local=bool(insecure),
        audit=resolve(str(audit)),
        round_timeout_s=float(timeout),
    )
    if config.insecure_local and not is_loopback(config.listen):
        raise ConfigError(
            "insecure_local serves plaintext and is allowed only on a loopback address",
            file=str(file),
            key="hub.listen",
        )
    return config
