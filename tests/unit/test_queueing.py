"""M/M/c closed forms: Erlang C, the derived metrics and Little's law."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderloom.simulation import mmc_metrics
from orderloom.simulation._queueing import erlang_c, littles_law_gap

# A stable M/M/c queue drawn as (servers, service rate, utilisation) so lam < c * mu holds.
servers = st.integers(min_value=1, max_value=60)
service_rates = st.floats(min_value=0.01, max_value=100.0)
utilisations = st.floats(min_value=0.01, max_value=0.99)


def _erlang_c_direct(lam: float, mu: float, c: int) -> float:
    """The textbook formula, in log space so it also works for large c (an independent check)."""
    a = lam / mu
    rho = a / c
    log_terms = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    log_top = c * math.log(a) - math.lgamma(c + 1) - math.log1p(-rho)
    peak = max(*log_terms, log_top)
    top = math.exp(log_top - peak)
    return top / (sum(math.exp(t - peak) for t in log_terms) + top)


def test_erlang_c_textbook_example() -> None:
    """lam=2, mu=1, c=3 gives P(wait) = 4/9."""
    assert erlang_c(2.0, 1.0, 3) == pytest.approx(4 / 9, rel=1e-12)


def test_mmc_metrics_textbook_example() -> None:
    """lam=2, mu=1, c=3 gives Wq = 4/9, Lq = 8/9, W = 13/9 and L = 26/9."""
    m = mmc_metrics(2.0, 1.0, 3)
    assert (m.arrival_rate, m.service_rate, m.servers) == (2.0, 1.0, 3)
    assert (m.utilisation, m.p_wait, m.mean_wait, m.mean_queue_length, m.mean_time_in_system,
            m.mean_in_system) == pytest.approx((2 / 3, 4 / 9, 4 / 9, 8 / 9, 13 / 9, 26 / 9),
                                               rel=1e-12)


@given(mu=service_rates, rho=utilisations)
def test_single_server_reduces_to_mm1(mu: float, rho: float) -> None:
    """With c=1: P(wait) = rho, L = rho / (1 - rho) and W = 1 / (mu - lam)."""
    lam = rho * mu
    m = mmc_metrics(lam, mu, 1)
    assert m.p_wait == pytest.approx(rho, rel=1e-12)
    assert m.mean_in_system == pytest.approx(rho / (1 - rho), rel=1e-9)
    assert m.mean_time_in_system == pytest.approx(1 / (mu - lam), rel=1e-9)


@given(rho=utilisations)
def test_two_servers_match_their_closed_form(rho: float) -> None:
    """With c=2: P(wait) = 2 rho^2 / (1 + rho) and Lq = 2 rho^3 / (1 - rho^2)."""
    m = mmc_metrics(2 * rho, 1.0, 2)
    assert m.p_wait == pytest.approx(2 * rho**2 / (1 + rho), rel=1e-12)
    assert m.mean_queue_length == pytest.approx(2 * rho**3 / (1 - rho**2), rel=1e-9)


@pytest.mark.parametrize(("lam", "c"), [(9.0, 10), (95.0, 100), (190.0, 200), (199.0, 200),
                                        (900.0, 1000)])
def test_erlang_c_is_stable_for_many_servers(lam: float, c: int) -> None:
    """The Erlang B recursion matches the log-space textbook formula for hundreds of servers."""
    assert erlang_c(lam, 1.0, c) == pytest.approx(_erlang_c_direct(lam, 1.0, c), rel=1e-9)


def test_no_arrivals_means_no_waiting() -> None:
    """lam=0 gives P(wait)=0, no queue and a sojourn equal to one service time."""
    m = mmc_metrics(0.0, 2.0, 3)
    assert (m.p_wait, m.mean_wait, m.mean_queue_length, m.mean_in_system) == (0.0, 0.0, 0.0, 0.0)
    assert m.mean_time_in_system == 0.5


@given(c=servers, mu=service_rates, rho=utilisations)
def test_erlang_c_is_a_probability_decreasing_in_servers(c: int, mu: float, rho: float) -> None:
    """P(wait) lies in [0, 1] and strictly drops when a server is added at the same load."""
    lam = rho * c * mu
    p = erlang_c(lam, mu, c)
    assert 0.0 <= p <= 1.0
    assert erlang_c(lam, mu, c + 1) < p


@given(c=servers, mu=service_rates, rho=utilisations)
def test_mmc_metrics_obey_littles_law(c: int, mu: float, rho: float) -> None:
    """The closed forms satisfy L = lam W, Lq = lam Wq and W = Wq + 1/mu."""
    lam = rho * c * mu
    m = mmc_metrics(lam, mu, c)
    assert m.utilisation == pytest.approx(rho)
    assert m.mean_time_in_system == pytest.approx(m.mean_wait + 1 / mu)
    assert m.mean_queue_length == pytest.approx(lam * m.mean_wait)
    assert littles_law_gap(m.mean_in_system, lam, m.mean_time_in_system) < 1e-12


@pytest.mark.parametrize(("lam", "mu", "c", "match"), [
    (-1.0, 1.0, 1, "arrival_rate"), (math.nan, 1.0, 1, "arrival_rate"),
    (math.inf, 1.0, 1, "arrival_rate"), (1.0, 0.0, 2, "service_rate"),
    (1.0, math.nan, 2, "service_rate"), (1.0, 1.0, 0, "servers"), (1.0, 1.0, True, "servers"),
    (1.0, 1.0, 2.0, "servers"), (3.0, 1.0, 3, "unstable"), (4.0, 1.0, 3, "unstable"),
])
def test_erlang_c_rejects_bad_input(lam: float, mu: float, c: int, match: str) -> None:
    """Bad rates, a non-int or non-positive server count and rho >= 1 raise ValueError."""
    with pytest.raises(ValueError, match=match):
        erlang_c(lam, mu, c)


@pytest.mark.parametrize(("lam", "mu", "c", "match"), [
    (-1.0, 1.0, 1, "lam"), (1.0, -1.0, 1, "mu"), (1.0, 1.0, 0, "c must"),
    (2.0, 1.0, 2, r"unstable.*lam / \(c \* mu\)"),
])
def test_mmc_metrics_names_its_own_parameters(lam: float, mu: float, c: int, match: str) -> None:
    """mmc_metrics errors use its parameter names lam, mu and c."""
    with pytest.raises(ValueError, match=match):
        mmc_metrics(lam, mu, c)


def test_littles_law_gap_is_relative_to_l() -> None:
    """L=10 against lam*W=9 is a 10% gap; a perfect match is 0."""
    assert littles_law_gap(10.0, 3.0, 3.0) == pytest.approx(0.1)
    assert littles_law_gap(6.0, 2.0, 3.0) == 0.0
    assert littles_law_gap(0.0, 0.0, 5.0) == 0.0


def test_littles_law_gap_stays_finite_for_an_idle_system() -> None:
    """L=0 with lam*W>0 gives a large but finite gap thanks to the 1e-12 floor."""
    gap = littles_law_gap(0.0, 1.0, 1.0)
    assert math.isfinite(gap) and gap == pytest.approx(1e12)


@pytest.mark.parametrize(("args", "match"), [
    ((-1.0, 1.0, 1.0), "mean_in_system"), ((1.0, math.nan, 1.0), "arrival_rate"),
    ((1.0, 1.0, math.inf), "mean_time_in_system"),
])
def test_littles_law_gap_rejects_bad_input(args: tuple[float, float, float], match: str) -> None:
    """A negative or non-finite argument raises ValueError naming it."""
    with pytest.raises(ValueError, match=match):
        littles_law_gap(*args)
