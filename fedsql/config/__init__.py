"""Configuration files: the federation contract and silo policies, from TOML to catalog values."""

from __future__ import annotations

from fedsql.config.contract import CONTRACT_KEYS, load_contract, parse_contract
from fedsql.config.policy import POLICY_KEYS, load_policy, parse_policy

__all__ = [
    "CONTRACT_KEYS",
    "POLICY_KEYS",
    "load_contract",
    "load_policy",
    "parse_contract",
    "parse_policy",
]
