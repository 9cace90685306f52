"""When a node renews its certificate: Swarm's rule, as plain data.

A Swarm node asks for a new certificate at a random moment between 50 % and 80 % of its
current one's validity (swarmkit's ``calculateRandomExpiry``): late enough not to churn, early
enough to outlive a manager outage, and spread so that a swarm's nodes, certified together,
do not all ask at once.
"""

from __future__ import annotations

import datetime as dt

EARLIEST = 0.5
LATEST = 0.8


def renew_at(not_before: dt.datetime, not_after: dt.datetime, draw: float) -> dt.datetime:
    """The moment to renew a certificate valid from ``not_before`` to ``not_after``; ``draw``
    in [0, 1) picks it between 50 % and 80 % of the validity. Raises ValueError for a draw
    out of range."""
    if not 0.0 <= draw < 1.0:
        raise ValueError(f"draw {draw} is not in [0, 1)")
    fraction = EARLIEST + (LATEST - EARLIEST) * draw
    return not_before + (not_after - not_before) * fraction
