"""Where a connection goes: ``fedsql://`` URLs, named profiles in ``profiles.toml``, the demo.

A profile file holds one table per profile::

    [default]
    hub = "hub.example.org:50051"   # host:port of the hub, or "demo" for the embedded demo
    analyst = "alice"               # the name budgets are charged to
    epsilon = 0.5                   # default epsilon per query
    timeout_s = 600                 # deadline of each query, in seconds
    tls = "~/fedsql/alice-tls"      # mTLS identity folder (fedsql ca issue analyst NAME)
    server_name = "hub"             # the name on the hub's certificate, if not its host
    token = "..."                   # API token from the hub's admin (fedsql hub analyst add NAME)
    key = "~/fedsql/alice-key/analyst.key"  # your signing key (fedsql analyst keygen)

It lives at ``$FEDSQL_PROFILES`` if that is set, else ``$XDG_CONFIG_HOME/fedsql/profiles.toml``,
else ``~/.config/fedsql/profiles.toml``. With ``tls`` the connection is mutual TLS and the analyst
defaults to the name on the certificate; without it, plaintext gRPC, which the client allows to
loopback hubs only. With ``key`` every query is signed with the analyst's Ed25519 key, which the
clinics check (the authority enrols its public key); ``token`` is sent to the hub with every call.
Relative ``tls`` and ``key`` paths are resolved against the profile file's folder. The file holds a
secret token: keep it readable by you alone.

>>> end = parse_url("fedsql://alice@127.0.0.1:50051/?epsilon=0.5")
>>> end.hub, end.analyst, end.epsilon, end.tls
('127.0.0.1:50051', 'alice', 0.5, None)
>>> parse_url("fedsql://demo").hub
'demo'
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from fedsql.errors import ConfigError, InterfaceError

#: The hub name that starts the embedded demo federation in-process.
DEMO = "demo"
#: Every hub name that starts an embedded example federation in-process (``demo``, ``omop``).
EMBEDDED: tuple[str, ...] = (DEMO, "omop")
#: URL scheme of fedsql connections (also the SQLAlchemy dialect name).
SCHEME = "fedsql"
#: The profile used when neither a hub nor a profile is named, if the file defines it.
DEFAULT_PROFILE = "default"
#: Environment variable naming the profile file.
PROFILES_ENV = "FEDSQL_PROFILES"

_KEYS = ("hub", "analyst", "epsilon", "timeout_s", "tls", "server_name", "token", "key")
_QUERY_KEYS = ("epsilon", "timeout_s", "profile", "analyst")


@dataclass(frozen=True)
class Endpoint:
    """Where to connect and with which defaults; None means "not given here"."""

    hub: str | None = None
    analyst: str | None = None
    epsilon: float | None = None
    timeout_s: float | None = None
    profile: str | None = None
    tls: Path | None = None
    server_name: str | None = None
    token: str | None = None
    key: Path | None = None

    def over(self, base: Endpoint) -> Endpoint:
        """This endpoint, with every field it leaves None taken from ``base``.

        >>> Endpoint(analyst="a").over(Endpoint(hub="h:1", analyst="b")).analyst
        'a'
        """
        return Endpoint(
            hub=self.hub if self.hub is not None else base.hub,
            analyst=self.analyst if self.analyst is not None else base.analyst,
            epsilon=self.epsilon if self.epsilon is not None else base.epsilon,
            timeout_s=self.timeout_s if self.timeout_s is not None else base.timeout_s,
            profile=self.profile if self.profile is not None else base.profile,
            tls=self.tls if self.tls is not None else base.tls,
            server_name=self.server_name if self.server_name is not None else base.server_name,
            token=self.token if self.token is not None else base.token,
            key=self.key if self.key is not None else base.key,
        )


def profiles_path() -> Path:
    """The profile file this process reads (it need not exist)."""
    explicit = os.environ.get(PROFILES_ENV)
    if explicit:
        return Path(explicit)
    config_home = os.environ.get("XDG_CONFIG_HOME")
    base = Path(config_home) if config_home else Path.home() / ".config"
    return base / "fedsql" / "profiles.toml"


def _positive(value: object, where: str, key: str, file: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("must be a number", file=file, key=f"{where}.{key}")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ConfigError("must be a positive number", file=file, key=f"{where}.{key}")
    return number


def load_profiles(path: Path | None = None) -> dict[str, Endpoint]:
    """Read every profile of a profile file.

    Args:
        path: The file; :func:`profiles_path` when None.

    Returns:
        Each profile by name; empty when the file does not exist.

    Raises:
        ConfigError: The file is not TOML, or a profile has a missing, unknown or bad key (every
            problem is listed, each with its key).
    """
    path = path or profiles_path()
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the profile file ({exc.strerror})", file=file) from None
    try:
        body = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=file) from None
    problems: list[tuple[str, str]] = []
    out: dict[str, Endpoint] = {}
    for name, table in body.items():
        if not isinstance(table, dict):
            problems.append((name, 'a profile is a table: [name] with hub = "host:port"'))
            continue
        for key in sorted(set(table) - set(_KEYS)):
            problems.append((f"{name}.{key}", f"unknown key; use {', '.join(_KEYS)}"))
        hub = table.get("hub")
        if not isinstance(hub, str) or not hub:
            problems.append((f"{name}.hub", 'required: "host:port" of the hub, or "demo"'))
            continue
        analyst = table.get("analyst")
        if analyst is not None and (not isinstance(analyst, str) or not analyst):
            problems.append((f"{name}.analyst", "must be a non-empty string"))
            continue
        tls = table.get("tls")
        if tls is not None and (not isinstance(tls, str) or not tls):
            problems.append((f"{name}.tls", "must be the path of an mTLS identity folder"))
            continue
        server_name = table.get("server_name")
        if server_name is not None and (not isinstance(server_name, str) or not server_name):
            problems.append((f"{name}.server_name", "must be a non-empty string"))
            continue
        token = table.get("token")
        if token is not None and (not isinstance(token, str) or not token):
            problems.append((f"{name}.token", "must be the API token the hub's admin gave you"))
            continue
        key = table.get("key")
        if key is not None and (not isinstance(key, str) or not key):
            problems.append((f"{name}.key", "must be the path of your analyst.key"))
            continue
        try:
            epsilon = table.get("epsilon")
            timeout = table.get("timeout_s")
            out[name] = Endpoint(
                hub=hub,
                analyst=analyst,
                epsilon=None if epsilon is None else _positive(epsilon, name, "epsilon", file),
                timeout_s=None if timeout is None else _positive(timeout, name, "timeout_s", file),
                profile=name,
                tls=None if tls is None else path.parent / Path(tls).expanduser(),
                server_name=server_name,
                token=token,
                key=None if key is None else path.parent / Path(key).expanduser(),
            )
        except ConfigError as exc:
            problems.append((exc.key or name, exc.reason))
    if problems:
        raise ConfigError(problems[0][1], file=file, key=problems[0][0], problems=problems)
    return out


def load_profile(name: str, path: Path | None = None) -> Endpoint:
    """One named profile.

    Raises:
        ConfigError: The file is invalid, or has no profile of that name.
    """
    path = path or profiles_path()
    profiles = load_profiles(path)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile named {name!r} (profiles: {known})", file=str(path))
    return profiles[name]


def parse_url(url: str) -> Endpoint:
    """Parse ``fedsql://[analyst@]host:port[/?epsilon=..&timeout_s=..&profile=..]``.

    ``fedsql://demo`` names the embedded demo; ``fedsql:///?profile=NAME`` a profile.

    Raises:
        InterfaceError: Not a fedsql URL, a password was given (tokens are not supported yet),
            or a query parameter is unknown or malformed.
    """
    parts = urlsplit(url)
    if parts.scheme.split("+", 1)[0] != SCHEME:
        raise InterfaceError(f"not a {SCHEME}:// URL")
    if parts.password:
        raise InterfaceError("analyst tokens are not supported yet; remove the password")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(_QUERY_KEYS))
    if unknown:
        raise InterfaceError(
            f"unknown URL parameter(s) {', '.join(unknown)}; use {', '.join(_QUERY_KEYS)}"
        )
    one = {key: values[-1] for key, values in query.items()}
    host = parts.hostname or ""
    hub = None
    if host:
        hub = host if parts.port is None else f"{host}:{parts.port}"
    analyst = unquote(parts.username) if parts.username else one.get("analyst")
    return Endpoint(
        hub=hub,
        analyst=analyst or None,
        epsilon=_url_number(one, "epsilon"),
        timeout_s=_url_number(one, "timeout_s"),
        profile=one.get("profile") or None,
    )


def _url_number(query: dict[str, str], key: str) -> float | None:
    text = query.get(key)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InterfaceError(f"URL parameter {key} must be a number") from None
    if not (math.isfinite(value) and value > 0):
        raise InterfaceError(f"URL parameter {key} must be a positive number")
    return value


def resolve(target: str | None, explicit: Endpoint, path: Path | None = None) -> Endpoint:
    """Combine a target, explicit arguments and profiles into the endpoint to connect to.

    Precedence: explicit arguments, then the target (a ``fedsql://`` URL, ``host:port`` or
    ``demo``), then the named profile, then the ``default`` profile when no hub is named, then
    the embedded demo.

    Args:
        target: What was passed to ``connect`` (None: nothing).
        explicit: The keyword arguments given to ``connect``.
        path: The profile file (:func:`profiles_path` when None).

    Returns:
        An endpoint whose ``hub`` is set.

    Raises:
        ConfigError: A named profile does not exist, or the profile file is invalid.
        InterfaceError: The target is a malformed URL.
    """
    from_target = Endpoint()
    if target is not None:
        from_target = parse_url(target) if "://" in target else Endpoint(hub=target)
    chosen = explicit.over(from_target)
    if chosen.profile is not None:
        chosen = chosen.over(load_profile(chosen.profile, path))
    elif chosen.hub is None:
        default = load_profiles(path).get(DEFAULT_PROFILE)
        if default is not None:
            chosen = chosen.over(default)
    if chosen.hub is None:
        chosen = replace(chosen, hub=DEMO)
    return chosen
