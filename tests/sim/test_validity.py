"""The simulator against theory and against itself: Erlang C with stated
power (the design is in tests/sim/mmc.py), an independent simulator (Ciw),
Little's law, common random numbers, reproducibility from the seed."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import attrs
import pytest

from orderloom.actors import (
    Dist,
    Shift,
    load_builtin_policy,
)
from orderloom.simulation import (
    Scenario,
    aggregate,
    compare,
    load_scenario,
    run_replications,
)
from orderloom.simulation._queueing import littles_law_gap
from orderloom.simulation._stats import t_quantile

from .mmc import (
    MEAN_REVIEW,
    POWER,
    Check,
    Observation,
    Setting,
    against,
    between,
    controlled,
    input_error,
    rejected,
    run_ciw,
    run_desk,
    t_test_power,
)

# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("sim.test_validity")

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0


def desk(cases_per_minute: float, mean_review: float, staff: int, days: float = 4.0) -> Scenario:
    """The mmc-review-desk scenario with its λ, μ, c and horizon replaced."""
    scenario = load_scenario(ROOT / "scenarios" / "mmc-review-desk.yaml")
    team = attrs.evolve(scenario.teams[0], shifts=(Shift(0, 24, staff),),
                        review=Dist.exponential(mean_review))
    return attrs.evolve(
        scenario, teams=(team, *scenario.teams[1:]), horizon=days * 86400.0,
        warm_up=12 * HOUR,
        demand=attrs.evolve(scenario.demand, orders_per_day=cases_per_minute * 1440))


# The settings and their lengths come from the variance of the control-variate
# mean wait per measured case (a pilot of 120 replications of each setting in
# an independent M/M/c recursion, then full runs), with a margin on its
# standard error; ``cases`` is per replication. Each setting states the error
# it must detect with 90% power, and the comment beside it what a full run
# measured (the seeds are fixed, so a run measures the same again): every
# GRID setting sees 10%, from 0.1M simulated cases (rho 0.5, c = 1) to 3.6M
# (rho 0.5, c = 10), 19.7M in all, about 9 minutes on two idle cores. The
# settings with many reviewers cost most: few cases wait, so the mean wait's
# relative noise is largest. The default settings are measured too. rho 0.5
# with c = 20 is left out: 0.4% of cases wait, the replications' means are
# too skewed for a t test at an affordable length. See docs/metrics.md.
DEFAULT = (
    Setting(rho=0.5, servers=1, replications=50, cases=2000, mde=0.10),
    Setting(rho=0.7, servers=2, replications=30, cases=1500, mde=0.25),
    Setting(rho=0.9, servers=2, replications=30, cases=3500, mde=0.50),
)
GRID = (
    Setting(rho=0.5, servers=1, replications=40, cases=2500, mde=0.10),  # measured 0.084
    Setting(rho=0.5, servers=2, replications=40, cases=3500, mde=0.10),  # measured 0.086
    Setting(rho=0.5, servers=5, replications=60, cases=11000, mde=0.10),  # measured 0.088
    Setting(rho=0.5, servers=10, replications=60, cases=60000, mde=0.10),  # measured 0.071
    Setting(rho=0.7, servers=1, replications=40, cases=5000, mde=0.10),  # measured 0.068
    Setting(rho=0.7, servers=2, replications=60, cases=4500, mde=0.10),  # measured 0.076
    Setting(rho=0.7, servers=5, replications=60, cases=9000, mde=0.10),  # measured 0.076
    Setting(rho=0.7, servers=10, replications=60, cases=21000, mde=0.10),  # measured 0.095
    Setting(rho=0.7, servers=20, replications=60, cases=45000, mde=0.10),  # measured 0.094
    Setting(rho=0.9, servers=1, replications=60, cases=28000, mde=0.10),  # measured 0.083
    Setting(rho=0.9, servers=2, replications=60, cases=22000, mde=0.10),  # measured 0.098
    Setting(rho=0.9, servers=5, replications=60, cases=33000, mde=0.10),  # measured 0.083
    Setting(rho=0.9, servers=10, replications=60, cases=41000, mde=0.10),  # measured 0.084
    Setting(rho=0.9, servers=20, replications=60, cases=46000, mde=0.10),  # measured 0.091
)
Runs = dict[Setting, list[Observation]]


@pytest.fixture(scope="module")
def default_runs() -> Runs:
    return {s: run_desk(s) for s in DEFAULT}


@pytest.fixture(scope="module")
def grid_runs() -> Runs:
    return {s: run_desk(s) for s in GRID}


def family(runs: Runs) -> list[Check]:
    """Every setting against Erlang C, four tests each, one family: the mean
    wait (with the arrival rate and mean review time as control variates),
    utilisation, and the two controls themselves against the model."""
    checks = []
    for setting, observations in runs.items():
        theory = setting.theory
        rates = [o.window_rate for o in observations]
        reviews = [o.mean_review for o in observations]
        checks.append(controlled(f"wait {setting.label}", [o.mean_wait for o in observations],
                                 [rates, reviews], [setting.arrival_rate, MEAN_REVIEW],
                                 theory.mean_wait))
        checks.append(against(f"utilisation {setting.label}",
                              [o.utilisation for o in observations], theory.utilisation))
        checks.append(against(f"arrival rate {setting.label}", rates, setting.arrival_rate))
        checks.append(against(f"review time {setting.label}", reviews, MEAN_REVIEW))
    return checks


def assert_valid(runs: Runs) -> None:
    """No test of the family rejected, and every setting sees its ``mde`` with
    90% power: in the controlled mean wait, and in each control at the input
    error that would move Erlang C's wait by ``mde``."""
    checks = family(runs)
    assert not rejected(checks), rejected(checks)
    for setting, (wait, _, rate, review) in zip(runs, _fours(checks), strict=True):
        # A run too short to detect the stated error fails here, loudly, rather
        # than passing because its interval is wide.
        assert wait.mde(len(checks)) <= setting.mde, (setting, wait.mde(len(checks)))
        assert rate.power(input_error(setting, "arrivals"), len(checks)) >= POWER, setting
        assert review.power(input_error(setting, "review"), len(checks)) >= POWER, setting


def _fours(checks: list[Check]) -> list[tuple[Check, Check, Check, Check]]:
    return [(checks[i], checks[i + 1], checks[i + 2], checks[i + 3])
            for i in range(0, len(checks), 4)]


def test_review_desk_agrees_with_erlang_c(default_runs: Runs) -> None:
    """The desk's mean wait and utilisation match Erlang C at rho 0.5, 0.7, 0.9
    (Holm at 0.05%), with the power to see each setting's stated error in the mean wait."""
    assert_valid(default_runs)


@pytest.mark.slow
def test_review_desk_agrees_with_erlang_c_across_the_grid(grid_runs: Runs) -> None:
    """Over rho 0.5/0.7/0.9 and c 1/2/5/10/20 the desk matches Erlang C, each
    setting with the power its ``mde`` states (10% where affordable)."""
    assert_valid(grid_runs)


def test_waits_ten_percent_long_are_rejected(default_runs: Runs) -> None:
    """Observed waits made 10% longer fail the family wherever a setting claims a 10% mde."""
    for setting in [s for s in DEFAULT if s.mde <= 0.10]:
        longer = [attrs.evolve(o, mean_wait=1.1 * o.mean_wait) for o in default_runs[setting]]
        assert f"wait {setting.label}" in " ".join(rejected(family({**default_runs,
                                                                    setting: longer})))


def test_reviews_ten_percent_long_are_rejected(default_runs: Runs) -> None:
    """A desk whose reviews take 10% longer than the model says fails the family:
    its review-time check sees it (the control variate on the review time
    takes most of it out of the controlled wait, so that check must)."""
    setting = DEFAULT[1]
    mutated = {**default_runs, setting: run_desk(setting, service_scale=1.1)}
    assert any(r.startswith(f"review time {setting.label}:") for r in rejected(family(mutated)))


@pytest.mark.slow
def test_a_desk_one_reviewer_short_is_rejected(grid_runs: Runs) -> None:
    """A desk with one reviewer fewer than the model for 15 minutes a day (an
    off-by-one in its staffing) at rho 0.9, c = 2, waits about 11% longer
    (an M/M/c recursion with that staffing, 2M cases): the controlled mean
    wait rejects it, though its arrivals and reviews are the model's."""
    setting = next(s for s in GRID if (s.rho, s.servers) == (0.9, 2))
    assert setting.mde <= 0.10
    short = run_desk(setting, shifts=(Shift(0, 24, 1), Shift(0, 23.75, 1)))
    found = rejected(family({**grid_runs, setting: short}))
    assert any(r.startswith(f"wait {setting.label}:") for r in found), found
    assert not any(r.startswith(f"review time {setting.label}:") for r in found), found


def test_t_test_power_is_the_level_at_no_error_and_normal_at_large_df() -> None:
    """The exact power integral gives the test's level when there is no error,
    and the normal power when the standard error is known (df large)."""
    critical = t_quantile(1.0 - 0.001 / 2, 20.0)
    assert t_test_power(critical, 0.0, 20.0) == pytest.approx(0.001, rel=1e-4)

    def tail(x: float) -> float:
        return 0.5 * math.erfc(x / math.sqrt(2.0))

    assert t_test_power(3.0, 4.0, 1e6) == pytest.approx(tail(-1.0) + tail(7.0), rel=1e-3)


def test_control_variates_without_information_give_the_plain_t_test() -> None:
    """Controls that sit exactly at their means and are uncorrelated with the
    values leave the estimate and standard error of the one-sample t test
    (up to the degrees of freedom they cost)."""
    values = [1.0, 3.0, 2.0, 5.0, 4.0, 3.0, 2.0, 4.0]
    plain = against("x", values, 3.0)
    # Centred, the values are (-2, 0, -1, 2, 1, 0, -1, 1): this control is
    # orthogonal to them, so its fitted slope is 0.
    flat = controlled("x", values, [[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0]], [0.0], 3.0)
    assert flat.mean == pytest.approx(plain.mean)
    assert flat.df == plain.df - 1
    # The same residuals over one fewer degree of freedom.
    assert flat.se == pytest.approx(plain.se * math.sqrt(7 / 6))
    assert controlled("x", values, [[0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0]], [0.5],
                      3.0).mean == pytest.approx(plain.mean)


def test_littles_law_holds_on_the_desk_queue(default_runs: Runs) -> None:
    """Lq = λ Wq at the desk: the time-average queue the metrics report equals the
    measured arrival rate times the measured mean wait, at every default setting."""
    for setting, observations in default_runs.items():
        queue = statistics.fmean(o.queue_length for o in observations)
        flow = statistics.fmean(o.arrival_rate * o.censored_wait for o in observations)
        # A sample-path identity over [warm_up, horizon], up to the cases
        # already waiting at warm_up (about Lq of them in a few thousand).
        assert littles_law_gap(queue, 1.0, flow) <= 0.01, (setting, queue, flow)


def ciw_family(runs: Runs, replications: int | None = None) -> list[Check]:
    """Ciw against Erlang C, and the simulator against Ciw (Welch), per setting;
    Ciw runs ``replications`` of each (by default as many as the desk)."""
    checks = []
    for setting, observations in runs.items():
        theirs = run_ciw(setting, replications=replications)
        ours = [o.mean_wait for o in observations]
        checks.append(against(f"ciw wait {setting.label}", theirs, setting.theory.mean_wait))
        checks.append(between(f"orderloom - ciw wait {setting.label}", ours, theirs,
                              setting.theory.mean_wait))
    return checks


def test_ciw_and_the_desk_agree(default_runs: Runs) -> None:
    """An independent M/M/c simulator (Ciw) agrees with Erlang C and with the desk
    at the default settings (Holm at 0.05%)."""
    checks = ciw_family(default_runs)
    assert not rejected(checks), rejected(checks)


@pytest.mark.slow
def test_ciw_and_the_desk_agree_across_the_grid(grid_runs: Runs) -> None:
    """Ciw agrees with Erlang C and with the desk over the whole grid (Holm at 0.05%);
    20 Ciw replications per setting: a cross-check, not the power-stating test."""
    checks = ciw_family(grid_runs, replications=20)
    assert not rejected(checks), rejected(checks)


def test_littles_law_holds_at_the_review_desk() -> None:
    """L = λW at the desk: time-average cases there (waiting + in review) equals
    the arrival rate times the mean time a case spends there."""
    scenario = desk(1.0, 150.0, 3, days=3.0)
    (result,) = run_replications(scenario, 1, workers=1)
    m = result.metrics
    in_system = m["queue_length.desk"] + m["busy.desk"]
    rate = m["throughput_cases.desk"] / (scenario.horizon - scenario.warm_up)
    assert in_system == pytest.approx(rate * m["time_in_team.desk"], rel=0.03)


def test_littles_law_holds_for_the_fraud_team() -> None:
    """L = λW for a team inside the full model (fraud desk on a fraud-wave day)."""
    scenario = load_scenario(ROOT / "scenarios" / "fraud-wave.yaml")
    scenario = attrs.evolve(scenario, horizon=2 * 86400.0)
    (result,) = run_replications(scenario, 1, workers=1)
    m = result.metrics
    assert m["throughput_cases.fraud"] > 100
    in_system = m["queue_length.fraud"] + m["busy.fraud"]
    rate = m["throughput_cases.fraud"] / (scenario.horizon - scenario.warm_up)
    # Cases still queued at the end, or withdrawn when their order was
    # canceled, are in L but have no W: allow for that edge effect.
    assert in_system == pytest.approx(rate * m["time_in_team.fraud"], rel=0.2)


def _run(policy: str, seed: int = 5, replications: int = 5, hours: float = 10.0
         ) -> dict[str, Any]:
    scenario = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    scenario = attrs.evolve(scenario, horizon=hours * HOUR, warm_up=HOUR)
    results = run_replications(scenario, replications, policy=load_builtin_policy(policy),
                               seed=seed, workers=1)
    return aggregate(results, header={"scenario": "baseline", "policy": policy, "seed": seed})


def test_common_random_numbers_sharpen_comparisons() -> None:
    """Policy A and B face the same orders in replication k: the paired CI of a
    difference is narrower than the unpaired one."""
    a, b = _run("cautious"), _run("balanced")
    assert a["metrics"]["orders.placed"]["values"] == b["metrics"]["orders.placed"]["values"]
    comparison = compare([a, b], ["cautious", "balanced"])
    row = next(r for r in comparison.rows if r.metric == "throughput")
    paired = row.deltas[0]
    assert paired.paired
    from orderloom.simulation._stats import welch_difference

    welch = welch_difference(a["metrics"][row.metric]["values"], b["metrics"][row.metric]["values"])
    assert (paired.ci_high - paired.ci_low) < (welch.ci_high - welch.ci_low)


def test_same_seed_reproduces_the_report() -> None:
    """Two runs of one seed give the same report, timing fields aside."""
    # Short: reproducibility needs no precision (2 replications of 4 hours).
    first, second = _run("balanced", 9, 2, 4.0), _run("balanced", 9, 2, 4.0)
    first.pop("timing")
    second.pop("timing")
    assert first == second
    other = _run("balanced", 10, 2, 4.0)
    assert other["metrics"]["orders.placed"] != first["metrics"]["orders.placed"]
