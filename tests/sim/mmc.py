"""The M/M/c validity design: the review desk through the simulator, the same
queue in Ciw, and a test of both against Erlang C that states its own power.

One *setting* is a load ``rho`` and a number of reviewers ``c`` (exponential
reviews of :data:`MEAN_REVIEW` seconds, Poisson arrivals). Each replication
measures the mean wait of the cases arriving in ``[warm_up, window_end)``;
the replications' mean is tested against Erlang C with a one-sample t test.
All the tests of a run form a family, Holm-adjusted at :data:`FAMILY_ALPHA`,
so a correct simulator fails a run with probability at most that. A setting
also states the relative error of the mean wait (``mde``) it must detect with
:data:`POWER`, at the Bonferroni level of its family (Holm's first step,
so conservative), and the observed standard error is checked against it: a
run too short to see that error fails rather than passes vacuously.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import attrs

from orderloom.actors import CaseOpened, Dist, Shift, TeamLoad
from orderloom.simulation import (
    MMcMetrics,
    Scenario,
    load_scenario,
    mmc_metrics,
    run_replication,
    welch_difference,
)
from orderloom.simulation._stats import _t_upper_tail, holm, paired_difference, t_quantile

ROOT = Path(__file__).resolve().parents[2]
MEAN_REVIEW = 60.0
"""Seconds; the time unit of every setting (``mu = 1 / MEAN_REVIEW``)."""
FAMILY_ALPHA = 0.0005
"""Chance that a correct simulator fails one family; the validity file has
two (against Erlang C, and the Ciw cross-check): at most 0.1% per run."""
POWER = 0.90


@attrs.frozen(kw_only=True)
class Setting:
    """An M/M/c desk and how long to watch it.

    Attributes:
        rho: the load ``lambda / (c * mu)``.
        servers: ``c``.
        replications: independent runs.
        cases: arrivals measured per replication (after the warm-up).
        mde: the relative error of the mean wait that must be detected with
            :data:`POWER` (0.10: a model whose waits are 10% off fails).
    """

    rho: float
    servers: int
    replications: int
    cases: int
    mde: float

    @property
    def label(self) -> str:
        return f"rho={self.rho} c={self.servers}"

    @property
    def arrival_rate(self) -> float:
        return self.rho * self.servers / MEAN_REVIEW

    @property
    def theory(self) -> MMcMetrics:
        return mmc_metrics(self.arrival_rate, 1.0 / MEAN_REVIEW, self.servers)

    @property
    def warm_up(self) -> float:
        """Five relaxation times ``1 / (c mu (1 - sqrt(rho))^2)``, at least 20 reviews:
        an empty start's deficit is down to e^-5 of the mean when measuring begins."""
        relaxation = MEAN_REVIEW / (self.servers * (1.0 - math.sqrt(self.rho)) ** 2)
        return max(5.0 * relaxation, 20.0 * MEAN_REVIEW)

    @property
    def window_end(self) -> float:
        return self.warm_up + self.cases / self.arrival_rate

    @property
    def horizon(self) -> float:
        """Past ``window_end`` by 40 mean waits-when-waiting and 40 reviews, so
        every measured case has started (and, for Ciw, finished) its review."""
        service = 1.0 / MEAN_REVIEW
        return self.window_end + 40.0 / (self.servers * service - self.arrival_rate) \
            + 40.0 * MEAN_REVIEW


class WaitProbe:
    """Each case's wait at one team, read off the team's own telemetry.

    The team is FIFO, so the k-th case to join its queue (``queue_length`` up
    by one) is the k-th to leave it for a reviewer (down by one); a case that
    never joins the queue waited 0.
    """

    def __init__(self, team: str) -> None:
        self.team = team
        self.arrivals: list[float] = []
        self.waits: list[tuple[float, float]] = []  # (joined, left) per queued case
        self._joined: deque[float] = deque()
        self._queue = 0

    def __call__(self, t: float, address: object, event: object) -> None:
        if isinstance(event, CaseOpened):
            self.arrivals.append(t)
        elif isinstance(event, TeamLoad) and event.team == self.team:
            step, self._queue = event.queue_length - self._queue, event.queue_length
            if step == 1:
                self._joined.append(t)
            elif step == -1:
                self.waits.append((self._joined.popleft(), t))
            elif step != 0:
                raise AssertionError(f"queue moved by {step} in one step at t={t}")

    def mean_wait(self, start: float, end: float) -> float:
        """The mean wait of the cases arriving in ``[start, end)``, all of which
        must have left the queue."""
        if any(start <= t < end for t in self._joined):
            raise AssertionError("a measured case was still waiting at the horizon")
        total = sum(left - joined for joined, left in self.waits if start <= joined < end)
        return total / sum(1 for t in self.arrivals if start <= t < end)

    def censored_wait(self, start: float, horizon: float) -> float:
        """The mean wait of every case arriving after ``start``, a wait still
        running at ``horizon`` counted up to it (the cases the queue-length
        average over ``[start, horizon]`` sees, for Little's law)."""
        total = sum(left - joined for joined, left in self.waits if joined >= start)
        total += sum(horizon - joined for joined in self._joined if joined >= start)
        return total / sum(1 for t in self.arrivals if t >= start)


@attrs.frozen(kw_only=True)
class Observation:
    """One replication of the desk.

    Attributes:
        mean_wait: of the cases arriving in ``[warm_up, window_end)``.
        utilisation: the metric ``utilisation.<team>``.
        queue_length: the metric ``queue_length.<team>``, the time-average
            number waiting over ``[warm_up, horizon]``.
        arrival_rate: arrivals over that same span, per second.
        censored_wait: the mean wait of those arrivals (see :meth:`WaitProbe.censored_wait`).
    """

    mean_wait: float
    utilisation: float
    queue_length: float
    arrival_rate: float
    censored_wait: float


def desk_scenario(setting: Setting, service_scale: float = 1.0) -> Scenario:
    """The shipped mmc-review-desk scenario at ``setting``; ``service_scale``
    lengthens every review (a deliberately wrong model, for the mutation test)."""
    scenario = load_scenario(ROOT / "scenarios" / "mmc-review-desk.yaml")
    team = attrs.evolve(scenario.teams[0], shifts=(Shift(0, 24, setting.servers),),
                        review=Dist.exponential(MEAN_REVIEW * service_scale))
    return attrs.evolve(
        scenario, teams=(team, *scenario.teams[1:]), horizon=setting.horizon,
        warm_up=setting.warm_up, replications=setting.replications,
        demand=attrs.evolve(scenario.demand, orders_per_day=setting.arrival_rate * 86400.0))


def run_desk(setting: Setting, service_scale: float = 1.0) -> list[Observation]:
    """Every replication of the desk through the simulator (seeded by the scenario)."""
    scenario = desk_scenario(setting, service_scale)
    team = scenario.teams[0].name
    out = []
    for k in range(setting.replications):
        probe = WaitProbe(team)
        result = run_replication(scenario, k, observe=lambda kernel: kernel.add_sink(probe))
        m = result.metrics
        start, horizon = setting.warm_up, setting.horizon
        arrivals = sum(1 for t in probe.arrivals if t >= start)
        out.append(Observation(
            mean_wait=probe.mean_wait(start, setting.window_end),
            utilisation=m[f"utilisation.{team}"], queue_length=m[f"queue_length.{team}"],
            arrival_rate=arrivals / (horizon - start),
            censored_wait=probe.censored_wait(start, horizon)))
    return out


def run_ciw(setting: Setting, seed: int = 1) -> list[float]:
    """The replications' mean waits of the same M/M/c queue simulated by Ciw.

    Ciw draws from the global ``random`` module; its state is put back after.
    """
    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=setting.arrival_rate)],
        service_distributions=[ciw.dists.Exponential(rate=1.0 / MEAN_REVIEW)],
        number_of_servers=[setting.servers])
    saved = random.getstate()
    waits = []
    try:
        for k in range(setting.replications):
            ciw.seed(seed * 1_000_003 + k)
            simulation = ciw.Simulation(network)
            simulation.simulate_until_max_time(setting.horizon)
            measured = [r.waiting_time for r in simulation.get_all_records()
                        if setting.warm_up <= r.arrival_date < setting.window_end]
            waits.append(statistics.fmean(measured))
    finally:
        random.setstate(saved)
    return waits


@attrs.frozen(kw_only=True)
class Check:
    """One test of a family: ``values`` (replications) against ``expected``,
    or against a second sample (Welch).

    Attributes:
        name: what is tested, for messages.
        mean: the sample mean (of the difference, for Welch).
        se: its standard error.
        df: degrees of freedom.
        p_value: two-sided, unadjusted.
        scale: what relative errors are relative to (the theoretical mean).
    """

    name: str
    mean: float
    se: float
    df: float
    p_value: float
    scale: float

    def mde(self, tests: int) -> float:
        """The relative error detected with :data:`POWER` at this family's
        Bonferroni level: ``(t_{1 - alpha / 2m} + t_{POWER}) * se / scale``."""
        k = (t_quantile(1.0 - FAMILY_ALPHA / (2 * tests), self.df)
             + t_quantile(POWER, self.df))
        return k * self.se / self.scale

    def power(self, error: float, tests: int) -> float:
        """The chance that a relative error ``error`` is rejected (Bonferroni level)."""
        critical = t_quantile(1.0 - FAMILY_ALPHA / (2 * tests), self.df)
        shift = error * self.scale / self.se
        return _t_upper_tail(critical - shift, self.df) if critical > shift \
            else 1.0 - _t_upper_tail(shift - critical, self.df)


def against(name: str, values: Sequence[float], expected: float) -> Check:
    """The one-sample t test of ``mean(values) == expected``."""
    diff = paired_difference(values, [expected] * len(values))
    return Check(name=name, mean=statistics.fmean(values),
                 se=statistics.stdev(values) / math.sqrt(len(values)),
                 df=len(values) - 1.0, p_value=diff.p_value, scale=expected)


def between(name: str, a: Sequence[float], b: Sequence[float], scale: float) -> Check:
    """Welch's test of ``mean(a) == mean(b)``."""
    diff = welch_difference(a, b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return Check(name=name, mean=diff.mean, se=math.sqrt(va + vb), df=df,
                 p_value=diff.p_value, scale=scale)


def rejected(checks: Sequence[Check]) -> list[str]:
    """The family's tests that Holm rejects at :data:`FAMILY_ALPHA`, described."""
    adjusted = holm([c.p_value for c in checks])
    return [f"{c.name}: mean {c.mean:.6g} (se {c.se:.3g}), Holm p = {p:.3g}"
            for c, p in zip(checks, adjusted, strict=True) if p <= FAMILY_ALPHA]
