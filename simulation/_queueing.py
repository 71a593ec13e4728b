"""Closed-form M/M/c results, the yardstick the simulator is checked against.

Pure standard library. Erlang C is computed from the Erlang B recursion,
which stays within [0, 1] at every step, so it is stable for hundreds of
servers where the textbook factorial formula overflows.
"""

from __future__ import annotations

import math

import attrs

__all__ = [
    "MMcMetrics",
    "erlang_c",
    "littles_law_gap",
    "mmc_metrics",
]

# Floor for the denominator of littles_law_gap: below this L is treated as zero load.
_TINY = 1e-12


_ERLANG_NAMES = ("arrival_rate", "service_rate", "servers")


def _check_rates(where: str, arrival_rate: float, service_rate: float, servers: int,
                 names: tuple[str, str, str] = _ERLANG_NAMES) -> float:
    """Validate M/M/c inputs and return the utilisation ``lam / (c * mu)``.

    ``names`` are the caller's parameter names, so the error names what the user typed.
    """
    lam_name, mu_name, c_name = names
    if isinstance(servers, bool) or not isinstance(servers, int) or servers < 1:
        raise ValueError(f"{where}: {c_name} must be an int >= 1, got {servers!r}")
    if not (math.isfinite(arrival_rate) and arrival_rate >= 0.0):
        raise ValueError(f"{where}: {lam_name} must be finite and >= 0, got {arrival_rate!r}")
    if not (math.isfinite(service_rate) and service_rate > 0.0):
        raise ValueError(f"{where}: {mu_name} must be finite and > 0, got {service_rate!r}")
    rho = arrival_rate / (servers * service_rate)
    if rho >= 1.0:
        raise ValueError(
            f"{where}: unstable queue, utilisation {lam_name} / ({c_name} * {mu_name}) = "
            f"{arrival_rate} / ({servers} * {service_rate}) = {rho:.6g} must be < 1"
        )
    return rho


def _erlang_c(load: float, rho: float, servers: int) -> float:
    blocking = 1.0  # Erlang B with zero servers
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking / (1.0 - rho * (1.0 - blocking))


def erlang_c(arrival_rate: float, service_rate: float, servers: int) -> float:
    """The probability that an arrival to an M/M/c queue has to wait (Erlang C).

    Args:
        arrival_rate: Poisson arrival rate ``lam``, finite and >= 0.
        service_rate: exponential service rate ``mu`` of one server, finite and > 0.
        servers: the number of servers ``c``, an int >= 1.

    Returns:
        ``P(wait)`` in [0, 1); 0 when ``arrival_rate == 0``.

    Raises:
        ValueError: naming the bad parameter, or if the queue is unstable
            (``arrival_rate >= servers * service_rate``).
    """
    rho = _check_rates("erlang_c", arrival_rate, service_rate, servers)
    return _erlang_c(arrival_rate / service_rate, rho, servers)  # load in erlangs


@attrs.frozen(kw_only=True)
class MMcMetrics:
    """Steady-state metrics of an M/M/c queue (FCFS, infinite buffer).

    Invariants: ``0 <= utilisation < 1``; ``0 <= p_wait < 1``;
    ``mean_time_in_system == mean_wait + 1 / service_rate``; Little's law
    holds for both the queue and the system (``Lq == lam * Wq``, ``L == lam * W``).

    Attributes:
        arrival_rate: ``lam``.
        service_rate: ``mu`` per server.
        servers: ``c``.
        utilisation: ``rho = lam / (c * mu)``, the busy fraction of each server.
        p_wait: the Erlang C probability that an arrival waits.
        mean_wait: ``Wq``, the mean time spent queueing before service.
        mean_queue_length: ``Lq``, the mean number waiting (not in service).
        mean_time_in_system: ``W = Wq + 1 / mu``.
        mean_in_system: ``L = lam * W``, the mean number present (waiting or served).
    """

    arrival_rate: float
    service_rate: float
    servers: int
    utilisation: float
    p_wait: float
    mean_wait: float
    mean_queue_length: float
    mean_time_in_system: float
    mean_in_system: float


def mmc_metrics(lam: float, mu: float, c: int) -> MMcMetrics:
    """The steady-state metrics of an M/M/c queue.

    Args:
        lam: arrival rate, finite and >= 0.
        mu: service rate of one server, finite and > 0.
        c: the number of servers, an int >= 1.

    Returns:
        The :class:`MMcMetrics`.

    Raises:
        ValueError: naming the bad parameter, or if ``lam >= c * mu``.
    """
    rho = _check_rates("mmc_metrics", lam, mu, c, ("lam", "mu", "c"))
    p_wait = _erlang_c(lam / mu, rho, c)
    mean_wait = p_wait / (c * mu - lam)
    mean_time = mean_wait + 1.0 / mu
    return MMcMetrics(
        arrival_rate=float(lam), service_rate=float(mu), servers=c, utilisation=rho, p_wait=p_wait,
        mean_wait=mean_wait, mean_queue_length=lam * mean_wait,
        mean_time_in_system=mean_time, mean_in_system=lam * mean_time,
    )


def littles_law_gap(mean_in_system: float, arrival_rate: float,
                    mean_time_in_system: float) -> float:
    """How far measured quantities are from Little's law ``L = lam * W``.

    Args:
        mean_in_system: the time-average number present ``L``, finite and >= 0.
        arrival_rate: the throughput ``lam``, finite and >= 0.
        mean_time_in_system: the mean sojourn time ``W``, finite and >= 0.

    Returns:
        ``|L - lam * W| / max(L, 1e-12)``: 0 for a perfect match; relative to
        ``L`` so one tolerance (say 0.05) fits every load level. When ``L`` is
        below 1e-12 (an idle system) the floor keeps the result finite.

    Raises:
        ValueError: naming a parameter that is negative or not finite.
    """
    for name, value in (("mean_in_system", mean_in_system), ("arrival_rate", arrival_rate),
                        ("mean_time_in_system", mean_time_in_system)):
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"littles_law_gap: {name} must be finite and >= 0, got {value!r}")
    return abs(mean_in_system - arrival_rate * mean_time_in_system) / max(mean_in_system, _TINY)
