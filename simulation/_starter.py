"""A commented starter scenario for ``orderloom init scenario NAME``.

Every section of a scenario file appears with a short comment and a
sensible default, so a new user edits a file that already validates and
runs rather than writing one from the reference. ``docs/scenarios.md`` has
every field; the tests load what :func:`starter_scenario` writes.
"""

from __future__ import annotations

import re

__all__ = ["starter_scenario"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

_TEMPLATE = """\
# {name}: a starter scenario written by 'orderloom init scenario'.
# Every section below has a sensible default; edit what your case needs.
# Check it with 'orderloom validate FILE', run it with 'orderloom simulate
# FILE' (FILE: this file's path). Every field: docs/scenarios.md.
# Durations take seconds or 90s, 30m, 2h, 1d; money is in minor units (cents).
name: {name}
description: A starter scenario; say here in one line what it models.

# Run settings: the seed reproduces every replication; orders placed during
# the warm-up are left out of the order metrics.
seed: 1
horizon: 1d
warm_up: 1h
replications: 3

# The automation policy: a shipped one (cautious, balanced, aggressive; see
# 'orderloom policies'), a policy file next to this one, or an inline mapping.
policy: balanced

# The products: price in minor units, weight = relative popularity.
catalog:
  - {{sku: TSHIRT, price: 2500, weight: 3}}
  - {{sku: MUG, price: 1400, weight: 2}}
  - {{sku: POSTER, price: 900, weight: 1}}

# Arrivals: orders per day, spread over the day by 24 hourly weights
# (00:00 to 23:00), and the shares of orders that carry a data fault.
demand:
  orders_per_day: 300
  profile: [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 9, 9, 8, 8, 8, 9, 10, 11, 10, 7, 4, 2]
  peaks: []  # e.g. - {{start: 18h, end: 20h, factor: 3}}
  lines_per_order: 1.5
  quantity: 1.2
  customers: 10000
  faults:
    duplicate_orders: 0.005
    bad_addresses: 0.01
    unfixable_addresses: 0.3
    fraud: 0.005
    declines: 0.02
    cancellations: 0.005

# Warehouses, tried in this order: stock, replenishment, pickers working in
# parallel, pick and pack times, and the carriers a shipment is given to.
warehouses:
  - warehouse_id: W1
    stock: {{TSHIRT: 500, MUG: 300, POSTER: 200}}
    replenish_every: 12h
    replenish_to: {{TSHIRT: 500, MUG: 300, POSTER: 200}}
    pickers: 4
    pick: {{kind: lognormal, mean: 240, sigma: 0.4}}
    pack: {{kind: lognormal, mean: 180, sigma: 0.3}}
    label_failure_rate: 0.01
    carriers:
      - {{name: post, transit: {{kind: triangular, low: 12h, mode: 1d, high: 2d}}, delay_rate: 0.05, delay: {{kind: exponential, mean: 1d}}}}

# The payment gateway: answer time, declines, and answers lost on the way
# back (the money moved but the coordinator does not know: ambiguous).
gateway:
  latency: {{kind: lognormal, mean: 1.5, sigma: 0.5}}
  decline_rate: 0.0
  lost_response_rate: 0.001

# The teams that review exception cases. The shipped policies route cases
# to these four names; shifts use hours of the clock (20 to 8 runs overnight).
teams:
  - name: payments-ops
    shifts: [{{start_hour: 8, end_hour: 20, staff: 1}}, {{start_hour: 20, end_hour: 8, staff: 1}}]
    review: {{kind: exponential, mean: 600}}
    override_rate: 0.05
    error_rate: 0.02
  - name: fraud
    shifts: [{{start_hour: 8, end_hour: 20, staff: 1}}]
    review: {{kind: exponential, mean: 900}}
    override_rate: 0.05
    error_rate: 0.03
  - name: customer-care
    shifts: [{{start_hour: 8, end_hour: 22, staff: 2}}]
    review: {{kind: exponential, mean: 480}}
    override_rate: 0.08
    error_rate: 0.02
  - name: fulfillment-ops
    shifts: [{{start_hour: 6, end_hour: 22, staff: 1}}]
    review: {{kind: exponential, mean: 600}}
    override_rate: 0.05
    error_rate: 0.02

# The systems that keep their own view of each order: sync lag and lost
# updates (their disagreements are the state_mismatches metric).
downstream:
  - {{system: finance, lag: {{kind: exponential, mean: 30}}, failure_rate: 0.001}}
  - {{system: crm, lag: {{kind: exponential, mean: 60}}, failure_rate: 0.002}}
  - {{system: support, lag: {{kind: exponential, mean: 120}}, failure_rate: 0.002}}
  - {{system: notifications, lag: {{kind: exponential, mean: 5}}, failure_rate: 0.001}}

# The address validation service.
address:
  latency: {{kind: exponential, mean: 0.5}}
  correct_success_rate: 0.8

# Scheduled faults, each from start to end (run time: 14h is 14:00 on day 0).
# None by default; for example:
#   - {{kind: gateway_outage, start: 14h, end: 16h, mode: down}}  # or errors, slow + factor
#   - {{kind: warehouse_outage, target: W1, start: 6h, end: 12h}}
#   - {{kind: team_absence, target: fraud, start: 12h, end: 18h}}
#   - {{kind: downstream_outage, target: finance, start: 9h, end: 11h}}
#   - {{kind: link, sender: gateway, recipient: order/*, link: {{duplicate: 0.1, reorder: 30}}}}
faults: []

# Swarm mode draws fault rates per replication (up to these bounds) to find
# combinations nobody wrote down; off by default.
swarm:
  enabled: false

# How long the coordinator waits for the gateway before an outcome is
# unknown, for a gap in an event sequence, and how long a downstream view
# may lag before its order counts as mismatched.
gateway_timeout: 30s
resequence_timeout: 60s
mismatch_grace: 5m
"""


def starter_scenario(name: str) -> str:
    """The text of a commented starter scenario called ``name``.

    Raises:
        ValueError: ``name`` is not letters, digits, ``-`` and ``_`` (it
            becomes the scenario's name and its report folder's).
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"NAME: expected letters, digits, '-' or '_' (starting with a letter "
                         f"or digit), got {name!r}")
    return _TEMPLATE.format(name=name)
