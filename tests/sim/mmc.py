"""The M/M/c validity design: the review desk through the simulator, the same
queue in Ciw, and a test of both against Erlang C that states its own power.

One *setting* is a load ``rho`` and a number of reviewers ``c`` (exponential
reviews of :data:`MEAN_REVIEW` seconds, Poisson arrivals). Each replication
measures the mean wait of the cases arriving in ``[warm_up, window_end)``,
and two inputs of those same cases: their arrival rate and their mean
review time (what the desk actually drew). The replications' mean wait is
tested against Erlang C with the two inputs as control variates (their
means are known: the model's), which removes the part of the wait's noise
that comes from how many cases happened to arrive and how long their reviews
happened to be (about half its variance at rho 0.9). A control variate built
on the model's review time would hide a desk whose reviews are too long, so
the two inputs are tested against the model too, each with the power to see
the input error that would move Erlang C's wait by the setting's ``mde``.

All the tests of a run form a family, Holm-adjusted at :data:`FAMILY_ALPHA`,
so a correct simulator fails a run with probability at most that. A setting
states the relative error of the mean wait (``mde``) it must detect with
:data:`POWER`; the power is the exact one of a two-sided t test (noncentral
t) at the Bonferroni level of its family (Holm's first step, so
conservative for Holm), with the observed standard error in place of the
true one, and is checked: a run too short to see that error fails rather
than passes vacuously.
"""

from __future__ import annotations

import math
import os
import random
import statistics
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import attrs

from orderloom.actors import CaseDecided, CaseOpened, Dist, Shift, TeamLoad
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
        self.opened: dict[str, float] = {}  # case id -> arrival
        self.decided: dict[str, float] = {}  # case id -> its review's end
        self._joined: deque[float] = deque()
        self._queue = 0

    def __call__(self, t: float, address: object, event: object) -> None:
        if isinstance(event, CaseOpened):
            self.arrivals.append(t)
            self.opened[event.case_id] = t
        elif isinstance(event, CaseDecided) and event.team == self.team:
            self.decided[event.case_id] = t
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

    def mean_review(self, start: float, end: float) -> float:
        """The mean review time of the cases arriving in ``[start, end)``: each
        one's time from arrival to decision less its wait (its review starts
        when its wait ends)."""
        times = [self.decided[case] - t for case, t in self.opened.items() if start <= t < end]
        return statistics.fmean(times) - self.mean_wait(start, end)

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
        mean_wait: of the cases arriving in ``[warm_up, window_end)``, seconds.
        mean_review: the mean review time of those cases, seconds (a control
            variate: its mean is :data:`MEAN_REVIEW` in the model).
        window_rate: how many of them arrived, per second of the window (a
            control variate: its mean is the setting's arrival rate).
        utilisation: the metric ``utilisation.<team>``.
        queue_length: the metric ``queue_length.<team>``, the time-average
            number waiting over ``[warm_up, horizon]``.
        arrival_rate: arrivals over that same span, per second.
        censored_wait: the mean wait of those arrivals (see :meth:`WaitProbe.censored_wait`).
    """

    mean_wait: float
    mean_review: float
    window_rate: float
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


def run_desk(setting: Setting, service_scale: float = 1.0,
             shifts: tuple[Shift, ...] | None = None) -> list[Observation]:
    """Every replication of the desk through the simulator (seeded by the
    scenario), in parallel processes on up to two cores (what CI has); the
    result does not depend on how many. ``shifts`` replaces the desk's
    staffing (a deliberately wrong desk, for a mutation test)."""
    scenario = desk_scenario(setting, service_scale)
    if shifts is not None:
        team = attrs.evolve(scenario.teams[0], shifts=shifts)
        scenario = attrs.evolve(scenario, teams=(team, *scenario.teams[1:]))
    workers = min(2, os.cpu_count() or 1, setting.replications)
    if workers <= 1:
        return [_observe(scenario, setting, k) for k in range(setting.replications)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_observe, [scenario] * setting.replications,
                             [setting] * setting.replications, range(setting.replications)))


def _observe(scenario: Scenario, setting: Setting, k: int) -> Observation:
    """Replication ``k`` of the desk, measured."""
    team = scenario.teams[0].name
    probe = WaitProbe(team)
    result = run_replication(scenario, k, observe=lambda kernel: kernel.add_sink(probe))
    m = result.metrics
    start, end, horizon = setting.warm_up, setting.window_end, setting.horizon
    arrivals = sum(1 for t in probe.arrivals if t >= start)
    return Observation(
        mean_wait=probe.mean_wait(start, end), mean_review=probe.mean_review(start, end),
        window_rate=sum(1 for t in probe.arrivals if start <= t < end) / (end - start),
        utilisation=m[f"utilisation.{team}"], queue_length=m[f"queue_length.{team}"],
        arrival_rate=arrivals / (horizon - start),
        censored_wait=probe.censored_wait(start, horizon))


def run_ciw(setting: Setting, seed: int = 1, replications: int | None = None) -> list[float]:
    """The replications' mean waits of the same M/M/c queue simulated by Ciw
    (``replications`` of them, by default the setting's), in parallel
    processes like :func:`run_desk`."""
    count = setting.replications if replications is None else replications
    workers = min(2, os.cpu_count() or 1, count)
    if workers <= 1:
        return [_ciw_replication(setting, seed, k) for k in range(count)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_ciw_replication, [setting] * count, [seed] * count, range(count)))


def _ciw_replication(setting: Setting, seed: int, k: int) -> float:
    """Ciw's replication ``k``. Ciw draws from the global ``random`` module;
    its state is put back after."""
    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=setting.arrival_rate)],
        service_distributions=[ciw.dists.Exponential(rate=1.0 / MEAN_REVIEW)],
        number_of_servers=[setting.servers])
    saved = random.getstate()
    try:
        ciw.seed(seed * 1_000_003 + k)
        simulation = ciw.Simulation(network)
        simulation.simulate_until_max_time(setting.horizon)
        measured = [r.waiting_time for r in simulation.get_all_records()
                    if setting.warm_up <= r.arrival_date < setting.window_end]
        return statistics.fmean(measured)
    finally:
        random.setstate(saved)


@attrs.frozen(kw_only=True)
class Check:
    """One test of a family: ``values`` (replications) against ``expected``,
    or against a second sample (Welch).

    Attributes:
        name: what is tested, for messages.
        mean: the estimate (of the difference, for Welch).
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

    def power(self, error: float, tests: int) -> float:
        """The chance that a relative error ``error`` is rejected at this
        family's Bonferroni level, ``alpha / tests`` two-sided (Holm rejects
        at least what Bonferroni does, so this is a lower bound for Holm).

        Exact for a t statistic, ``(Z + delta) / sqrt(V / df)`` with ``V``
        chi-square: the noncentral t's two tails, integrated over ``V``. The
        true standard error is unknown; the observed ``se`` stands in for it.
        """
        critical = t_quantile(1.0 - FAMILY_ALPHA / (2 * tests), self.df)
        return t_test_power(critical, error * self.scale / self.se, self.df)

    def mde(self, tests: int) -> float:
        """The relative error rejected with :data:`POWER` (see :meth:`power`)."""
        low, high = 0.0, 1.0
        while self.power(high, tests) < POWER:
            high *= 2.0
        for _ in range(60):
            mid = 0.5 * (low + high)
            low, high = (mid, high) if self.power(mid, tests) < POWER else (low, mid)
        return high


def _normal_upper_tail(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def t_test_power(critical: float, shift: float, df: float, steps: int = 4000) -> float:
    """``P(|(Z + shift) / sqrt(V / df)| > critical)`` for ``Z`` standard normal
    and ``V`` chi-square with ``df`` degrees of freedom: the power of a
    two-sided t test whose standardised true error is ``shift``.

    Integrated over ``s = sqrt(V / df)`` (Simpson's rule, over ten standard
    deviations of ``s`` either side of 1, where all but 1e-12 of it lies).
    """
    half = df / 2.0
    log_norm = math.log(2.0) + half * math.log(half) - math.lgamma(half)
    spread = 1.0 / math.sqrt(2.0 * df)
    low, high = max(1e-9, 1.0 - 12.0 * spread), 1.0 + 14.0 * spread + 14.0 * spread ** 2
    h = (high - low) / steps
    total = 0.0
    for i in range(steps + 1):
        s = low + i * h
        density = math.exp(log_norm + (df - 1.0) * math.log(s) - half * s * s)
        hit = _normal_upper_tail(critical * s - shift) + _normal_upper_tail(critical * s + shift)
        weight = 1 if i in (0, steps) else (4 if i % 2 else 2)
        total += weight * density * hit
    return total * h / 3.0


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


def controlled(name: str, values: Sequence[float], controls: Sequence[Sequence[float]],
               control_means: Sequence[float], expected: float) -> Check:
    """The control-variate test of ``mean(values) == expected``.

    ``controls[j][k]`` is control ``j`` in replication ``k``, whose mean is
    known to be ``control_means[j]``. The estimate is
    ``mean(values) - beta . (mean(controls) - control_means)``, ``beta`` the
    least-squares slope of ``values`` on the controls; its variance is
    ``s^2 (1/n + d' S^-1 d)`` with ``s^2`` the residual variance on
    ``n - q - 1`` degrees of freedom, ``d`` the controls' deviation from their
    means and ``S`` their centred cross-product matrix: under joint normality
    of a replication's value and controls the statistic is exactly Student's
    t on ``n - q - 1`` degrees of freedom (Lavenberg and Welch, 1981).
    """
    n, q = len(values), len(controls)
    if any(len(c) != n for c in controls) or len(control_means) != q or n <= q + 1:
        raise ValueError("controlled: one value per replication in each control, n > q + 1")
    y_bar = statistics.fmean(values)
    x_bar = [statistics.fmean(c) for c in controls]
    xc = [[x - m for x in c] for c, m in zip(controls, x_bar, strict=True)]
    yc = [y - y_bar for y in values]
    sxx = [[sum(a * b for a, b in zip(xi, xj, strict=True)) for xj in xc] for xi in xc]
    sxy = [sum(a * b for a, b in zip(xi, yc, strict=True)) for xi in xc]
    inverse = _inverse(sxx)
    beta = [sum(inverse[i][j] * sxy[j] for j in range(q)) for i in range(q)]
    residuals = [yc[k] - sum(beta[i] * xc[i][k] for i in range(q)) for k in range(n)]
    df = n - q - 1.0
    s2 = sum(r * r for r in residuals) / df
    d = [xb - m for xb, m in zip(x_bar, control_means, strict=True)]
    spread = sum(d[i] * inverse[i][j] * d[j] for i in range(q) for j in range(q))
    estimate = y_bar - sum(b * di for b, di in zip(beta, d, strict=True))
    se = math.sqrt(s2 * (1.0 / n + spread))
    p_value = min(1.0, 2.0 * _t_upper_tail(abs(estimate - expected) / se, df))
    return Check(name=name, mean=estimate, se=se, df=df, p_value=p_value, scale=expected)


def _inverse(matrix: list[list[float]]) -> list[list[float]]:
    """Gauss-Jordan inverse of a small symmetric positive definite matrix."""
    q = len(matrix)
    rows = [[*row, *(1.0 if i == j else 0.0 for j in range(q))] for i, row in enumerate(matrix)]
    for col in range(q):
        pivot = max(range(col, q), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        head = rows[col][col]
        rows[col] = [v / head for v in rows[col]]
        for r in range(q):
            if r != col:
                factor = rows[r][col]
                rows[r] = [v - factor * w for v, w in zip(rows[r], rows[col], strict=True)]
    return [row[q:] for row in rows]


def input_error(setting: Setting, which: str) -> float:
    """The smallest relative error in an input (``"review"``: the mean review
    time; ``"arrivals"``: the arrival rate) that moves Erlang C's mean wait
    by the setting's ``mde``, up or down: what that input's check must see
    for the family to see such a wait error whatever its cause."""
    base = setting.theory.mean_wait

    def moved(e: float) -> float:
        lam, mu = setting.arrival_rate, 1.0 / MEAN_REVIEW
        lam, mu = (lam, mu / (1.0 + e)) if which == "review" else (lam * (1.0 + e), mu)
        if lam >= setting.servers * mu:
            return math.inf
        return mmc_metrics(lam, mu, setting.servers).mean_wait / base - 1.0

    errors = []
    for target, sign in ((setting.mde, 1.0), (-setting.mde, -1.0)):
        low, high = 0.0, 0.5  # the wait is monotone in either input's error
        for _ in range(80):
            mid = 0.5 * (low + high)
            reached = moved(sign * mid)
            low, high = (mid, high) if abs(reached) < abs(target) else (low, mid)
        errors.append(high)
    return min(errors)


def rejected(checks: Sequence[Check]) -> list[str]:
    """The family's tests that Holm rejects at :data:`FAMILY_ALPHA`, described."""
    adjusted = holm([c.p_value for c in checks])
    return [f"{c.name}: mean {c.mean:.6g} (se {c.se:.3g}), Holm p = {p:.3g}"
            for c, p in zip(checks, adjusted, strict=True) if p <= FAMILY_ALPHA]
