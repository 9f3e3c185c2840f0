"""The split of a logistic model's epsilon over its Newton rounds, as hub and silos compute it.

The hub charges each round its share; a silo that checks an analyst's signed model query
computes the same shares from the signed total and refuses a round charged anything else, so
both sides must use this one schedule.
"""

from __future__ import annotations

from fedsql.errors import QueryRejected
from fedsql.privacy.accounting import epsilon_to_micro, micro_to_epsilon

__all__ = ["round_epsilons"]


def round_epsilons(total: str, rounds: int) -> tuple[str, ...]:
    """Each round's epsilon: 1/2 for the last, 1/4 for the one before, the rest equally.

    Args:
        total: The model's epsilon.
        rounds: The most rounds (``max_iter``).

    Returns:
        One epsilon per round; they add up to at most ``total``.

    Raises:
        QueryRejected: A share would be zero.

    >>> round_epsilons("1", 4)
    ('0.125', '0.125', '0.25', '0.5')
    >>> round_epsilons("1", 2)
    ('0.5', '0.5')
    >>> round_epsilons("1", 1)
    ('1',)
    """
    micro = epsilon_to_micro(total)
    tail = [micro // 4, micro // 2]
    if rounds == 1:
        tail = [micro]
    elif rounds == 2:
        tail = [micro // 2, micro // 2]
    early = rounds - len(tail)
    each = (micro - sum(tail)) // early if early else 0
    shares = [each] * early + tail
    if min(shares) < 1:
        raise QueryRejected(
            f"epsilon {total} split over {rounds} rounds leaves nothing per round; ask for more "
            "epsilon or fewer rounds (max_iter)"
        )
    return tuple(micro_to_epsilon(m) for m in shares)
