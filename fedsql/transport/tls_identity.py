"""Who a federation certificate names: its role, its name, and how both are written into it.

Every certificate the federation's CA issues names exactly one identity, written three times so
that each layer can check it: the subject alternative name URI ``fedsql:<role>:<name>`` (what
:func:`certificate_identity` reads), the subject's organisational unit (the role) and common name
(the name), and the extended key usage TLS itself enforces (``serverAuth`` for the hub,
``clientAuth`` for silos and analysts). A certificate whose copies disagree names nobody.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple, get_args

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ROLES",
    "URI_SCHEME",
    "PeerIdentity",
    "Role",
    "certificate_identity",
    "identity_uri",
    "name_problem",
    "parse_identity_uri",
    "usage_for",
]

#: What a certificate lets its holder be: the hub serves, silos and analysts dial it.
Role = Literal["hub", "silo", "analyst"]
#: Every role, in the order help texts list them.
ROLES: tuple[Role, ...] = get_args(Role)
#: The scheme of the identity URI in every federation certificate.
URI_SCHEME = "fedsql"

# Hub and silo names are DNS labels (a hub's name is also a host name its certificate covers);
# analysts are named as the silos' policies name them, e.g. ``bob@example.org``.
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ANALYST = re.compile(r"[A-Za-z0-9._@+-]{1,64}")

#: The extended key usage each role's certificate carries.
_USAGE = {
    "hub": ExtendedKeyUsageOID.SERVER_AUTH,
    "silo": ExtendedKeyUsageOID.CLIENT_AUTH,
    "analyst": ExtendedKeyUsageOID.CLIENT_AUTH,
}


class PeerIdentity(NamedTuple):
    """The role and name a verified certificate binds its holder to."""

    role: Role
    name: str

    @property
    def uri(self) -> str:
        """The identity as the certificate's subject alternative name writes it.

        >>> PeerIdentity("silo", "mumbai").uri
        'fedsql:silo:mumbai'
        """
        return identity_uri(self.role, self.name)

    def __str__(self) -> str:
        """``<role> <name>``, as messages name a peer.

        >>> str(PeerIdentity("analyst", "bob@example.org"))
        'analyst bob@example.org'
        """
        return f"{self.role} {self.name}"


def name_problem(role: str, name: str) -> str | None:
    """Why ``name`` cannot be the name of a ``role`` certificate, or None if it can.

    Args:
        role: ``hub``, ``silo`` or ``analyst``.
        name: The hub's name, the silo's id or the analyst's name.

    Returns:
        A message saying what is wrong and what to do, or None.

    >>> name_problem("silo", "san-francisco") is None
    True
    >>> name_problem("analyst", "bob@example.org") is None
    True
    >>> name_problem("silo", "San Francisco")
    "silo name 'San Francisco' is not a DNS label; use 1 to 63 lower-case letters, digits and -"
    >>> name_problem("auditor", "x")
    "unknown role 'auditor'; use hub, silo or analyst"
    """
    if role not in ROLES:
        return f"unknown role {role!r}; use {', '.join(ROLES[:-1])} or {ROLES[-1]}"
    if role == "analyst":
        if not _ANALYST.fullmatch(name):
            return (
                f"analyst name {name!r} cannot go in a certificate; use 1 to 64 letters, digits "
                "and . _ @ + -"
            )
        return None
    if not _SLUG.fullmatch(name):
        return (
            f"{role} name {name!r} is not a DNS label; use 1 to 63 lower-case letters, digits and -"
        )
    return None


def identity_uri(role: Role, name: str) -> str:
    """The subject alternative name URI of a certificate for ``role`` ``name``.

    Args:
        role: The certificate's role.
        name: The hub's name, the silo's id or the analyst's name.

    Returns:
        ``fedsql:<role>:<name>``.

    >>> identity_uri("hub", "hub-eu")
    'fedsql:hub:hub-eu'
    """
    return f"{URI_SCHEME}:{role}:{name}"


def parse_identity_uri(uri: str) -> PeerIdentity | None:
    """The identity an identity URI names, or None if it is not a valid one.

    Args:
        uri: A subject alternative name URI.

    Returns:
        The identity, or None.

    >>> parse_identity_uri("fedsql:silo:seoul")
    PeerIdentity(role='silo', name='seoul')
    >>> parse_identity_uri("fedsql:silo:Seoul") is None
    True
    >>> parse_identity_uri("https://hub.example.org") is None
    True
    """
    parts = uri.split(":", 2)
    if len(parts) != 3 or parts[0] != URI_SCHEME:
        return None
    role, name = parts[1], parts[2]
    if name_problem(role, name) is not None:
        return None
    for known in ROLES:
        if role == known:
            return PeerIdentity(known, name)
    return None  # pragma: no cover - name_problem refused unknown roles


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1 or not isinstance(values[0].value, str):
        return None
    return values[0].value


def certificate_identity(cert: x509.Certificate) -> PeerIdentity | None:
    """The identity a federation leaf certificate names, if all its copies agree.

    Args:
        cert: A certificate (chain verification is the caller's business).

    Returns:
        The identity, or None when the certificate is a CA, names no identity or more than one,
        or its subject or extended key usage disagree with its identity URI.
    """
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            return None
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    uris = [
        uri
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier)
        if uri.startswith(URI_SCHEME + ":")
    ]
    identity = parse_identity_uri(uris[0]) if len(uris) == 1 else None
    if identity is None:
        return None
    if _attribute(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME) != identity.role:
        return None
    if _attribute(cert.subject, NameOID.COMMON_NAME) != identity.name:
        return None
    if _USAGE[identity.role] not in usage:
        return None
    return identity


def usage_for(role: Role) -> x509.ObjectIdentifier:
    """The extended key usage a ``role`` certificate carries.

    Args:
        role: The certificate's role.

    Returns:
        ``serverAuth`` for the hub, ``clientAuth`` for silos and analysts.

    >>> usage_for("hub") == ExtendedKeyUsageOID.SERVER_AUTH
    True
    """
    return _USAGE[role]
