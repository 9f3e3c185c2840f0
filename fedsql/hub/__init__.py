"""The hub: connected silos, per-query coordination, the hub half of FSA-1, finalization."""
