"""Configuration files: the federation contract and silo policies, from TOML to catalog values."""

from __future__ import annotations

from fedsql.config.contract import CONTRACT_KEYS, load_contract, parse_contract
from fedsql.config.policy import POLICY_KEYS, load_policy, parse_policy
from fedsql.config.policy_advice import policy_warnings
from fedsql.config.policy_watch import PolicySource

__all__ = [
    "CONTRACT_KEYS",
    "POLICY_KEYS",
    "PolicySource",
    "load_contract",
    "load_policy",
    "parse_contract",
    "parse_policy",
    "policy_warnings",
]
