"""Tamper-evident audit logs: hash-chained entries, RFC 6962 tree hashing, signed tree heads.

A silo and the hub each append one entry per event (a request and its decision, the epsilon
charged, a digest of what was released) to their own :class:`AuditLog`. Anyone holding the
owner's public key can check the file with :func:`verify_log`: a modified, deleted, reordered
or cut entry makes it fail. Signing is injected (:class:`Signer`, :data:`Verifier`), so this
package needs no cryptography library of its own.
"""

from __future__ import annotations

from fedsql.audit.heads import Signer, TreeHead, Verifier
from fedsql.audit.log import AuditLog, AuditReceipt
from fedsql.audit.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from fedsql.audit.reader import LogLine, read_log_lines
from fedsql.audit.records import AuditEntry, AuditRecord, escape_text, release_digest
from fedsql.audit.verify import LogReport, head_path_for, verify_log

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditReceipt",
    "AuditRecord",
    "LogLine",
    "LogReport",
    "Signer",
    "TreeHead",
    "Verifier",
    "consistency_proof",
    "escape_text",
    "head_path_for",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "read_log_lines",
    "release_digest",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
]
