"""compare.html of two small real runs: the forest plot and the runs' series overlaid."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import attrs

from orderloom.actors import load_builtin_policy
from orderloom.simulation import (
    aggregate,
    compare,
    load_scenario,
    resolve_scenario,
    run_replications,
    to_html,
)
from orderloom.simulation._compare_charts import forest_of
from orderloom.simulation._report import render_html, sanitize
from orderloom.simulation._timechart import SpanKind, standard_charts

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0


@cache
def _report(policy: str | None) -> dict[str, Any]:
    """Two replications of payment-outage, three hours long, the outage moved to 01:00-02:00."""
    scenario = load_scenario(resolve_scenario("payment-outage", ROOT / "scenarios"))
    scenario = attrs.evolve(
        scenario, horizon=3 * HOUR, warm_up=HOUR / 2,
        demand=attrs.evolve(scenario.demand, orders_per_day=2000.0),
        faults=tuple(attrs.evolve(f, start=HOUR, end=2 * HOUR) for f in scenario.faults))
    results = run_replications(scenario, 2,
                               policy=load_builtin_policy(policy) if policy else None)
    return sanitize(aggregate(results, header={
        "scenario": "payment-outage", "policy": policy or scenario.policy.name,
        "horizon": scenario.horizon, "warm_up": scenario.warm_up}))


def test_compare_html_of_two_real_runs_has_the_forest_and_the_overlaid_series() -> None:
    """Both runs' series come from their replications and are drawn together, with
    the outage and warm-up shaded in hours; the forest plot has a row per primary
    metric; the page embeds every chart."""
    base, cand = _report(None), _report("aggressive")
    c = compare([base, cand], ["reconcile", "aggressive"])
    charts = {title: chart for title, chart, _ in standard_charts(c.timelines)}
    stuck = charts["Stuck orders over time"]
    assert stuck is not None
    assert [line.label for line in stuck.panels[0].lines] == ["reconcile", "aggressive"]
    assert stuck.x_range == (0.0, 3.0)
    faults = [(s.start, s.end) for s in stuck.spans if s.kind is SpanKind.FAULT]
    assert faults == [(1.0, 2.0)]
    assert [(s.start, s.end) for s in stuck.spans if s.kind is SpanKind.WARM_UP] == [(0.0, 0.5)]
    line = stuck.panels[0].lines[1]
    assert list(line.ys) == [v for _, v in cand["series"]["stuck_orders"]]
    assert "the mean of 2 replications" in stuck.caption
    queues = charts["Cases waiting per team"]
    assert queues is not None and all(len(p.lines) == 2 for p in queues.panels)
    forest = forest_of(c, 0)
    assert [r.metric for r in forest.rows] == [r.metric for r in c.primary]
    page = to_html(c)
    assert "Primary metrics: aggressive − reconcile" in page
    assert page.count('<img src="data:image/png;base64,') == 1 + sum(
        chart is not None for chart in charts.values())
    assert "faults red" in page
    report_page = render_html(base)
    assert "The mean of 2 replications, band: 95% CI of the mean." in report_page
