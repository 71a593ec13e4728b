"""Series over replications: the mean and its 95% band, kept in reports and read back."""

from __future__ import annotations

import math

from orderloom.actors import MetricsCollector
from orderloom.simulation._report import sanitize
from orderloom.simulation import (
    ReplicationResult,
    aggregate,
    summarize,
)
from orderloom.simulation._series import aggregate_series, timeline_of

from .test_metrics import enter, feed, placed, stuck

T975_2 = 4.302652729911275  # Student's t, 0.975 quantile, 2 degrees of freedom


def _result(k: int, series: dict[str, list[tuple[float, float]]],
            windows: list[tuple[float, float, str]] | None = None) -> ReplicationResult:
    return ReplicationResult(replication=k, seed=k, metrics={"throughput": 1.0},
                             series=series, fault_windows=windows or [])


def test_series_mean_and_band_come_from_the_replications() -> None:
    """Each point is the mean over replications with the Student's t 95% interval
    of that mean, the same one a metric's table row gets, cut at 0."""
    runs = [{"q": [(0.0, 1.0), (60.0, 0.0)]}, {"q": [(0.0, 2.0), (60.0, 0.0)]},
            {"q": [(0.0, 6.0), (60.0, 3.0)]}]
    means, bands = aggregate_series(runs)
    assert means["q"] == [(0.0, 3.0), (60.0, 1.0)]
    table = summarize([1.0, 2.0, 6.0])
    t, low, high = bands["q"][0]
    assert t == 0.0 and high is not None
    assert math.isclose(high, table.ci_high)
    assert math.isclose(high - 3.0, T975_2 * math.sqrt(7.0 / 3.0))
    assert table.ci_low < 0 and low == 0.0  # 3 - 6.57 < 0: cut at 0, as the tables do


def test_one_replication_has_no_band() -> None:
    """With one replication the mean is its series and the band has no ends."""
    means, bands = aggregate_series([{"q": [(0.0, 4.0)]}])
    assert means == {"q": [(0.0, 4.0)]}
    assert bands == {"q": [(0.0, None, None)]}


def test_a_series_seen_late_counts_zero_before_and_an_unreached_time_is_absent() -> None:
    """A stage first entered late had no orders before (0, not absent); a grid time
    one replication never reached is averaged over the replications that did."""
    runs = [{"stuck_orders": [(0.0, 0.0), (60.0, 0.0), (120.0, 0.0)],
             "in_stage.on_hold": [(120.0, 3.0)]},
            {"stuck_orders": [(0.0, 0.0), (60.0, 2.0)], "in_stage.on_hold": [(0.0, 1.0), (60.0, 1.0)]}]
    means, _ = aggregate_series(runs)
    assert means["in_stage.on_hold"] == [(0.0, 0.5), (60.0, 0.5), (120.0, 3.0)]
    assert means["stuck_orders"] == [(0.0, 0.0), (60.0, 1.0), (120.0, 0.0)]


def test_aggregate_keeps_the_mean_the_band_and_every_replications_fault_windows() -> None:
    """report.json holds the mean series (not replication 0's), its band, how many
    replications, and each distinct fault window once."""
    outage = (3600.0, 7200.0, "gateway_outage down")
    report = aggregate([
        _result(0, {"stuck_orders": [(0.0, 0.0), (60.0, 0.0)]}, [outage]),
        _result(1, {"stuck_orders": [(0.0, 0.0), (60.0, 2.0)]}, [outage]),
        _result(2, {"stuck_orders": [(0.0, 0.0), (60.0, 4.0)]},
                [outage, (100.0, 200.0, "swarm gateway slow")]),
    ], header={"scenario": "s"})
    assert report["series"]["stuck_orders"] == [(0.0, 0.0), (60.0, 2.0)]
    assert report["series_band"]["stuck_orders"][0] == (0.0, 0.0, 0.0)
    assert report["series_replications"] == 3
    assert report["fault_windows"] == [outage, (100.0, 200.0, "swarm gateway slow")]


def test_timeline_reads_a_report_back_and_says_when_it_kept_no_band() -> None:
    """timeline_of gives the report's series with band, warm-up, horizon and
    windows; an older report (one replication's series, no band) has
    replications None."""
    report = sanitize(aggregate([_result(k, {"q": [(0.0, float(k)), (60.0, 1.0)]},
                                         [(10.0, 20.0, "x")]) for k in range(3)],
                                header={"scenario": "s", "warm_up": 30.0, "horizon": 60.0}))
    timeline = timeline_of(report, "cautious")
    band = timeline.series["q"]
    assert (band.times, band.mean) == ((0.0, 60.0), (1.0, 1.0))
    assert band.low[1] == band.high[1] == 1.0 and band.high[0] is not None
    assert (timeline.label, timeline.replications, timeline.warm_up, timeline.horizon,
            timeline.windows) == ("cautious", 3, 30.0, 60.0, ((10.0, 20.0, "x"),))
    old = {"series": {"q": [[0.0, 2.0], ["bad"], [60.0, None]]}, "warm_up": None}
    legacy = timeline_of(old)
    assert legacy.replications is None and legacy.warm_up == 0.0
    assert legacy.series["q"].mean == (2.0,) and legacy.series["q"].high == (None,)


def test_stuck_spells_between_samples_reach_the_mean_as_the_table_counts_them() -> None:
    """One replication of five has an order flagged stuck and put on hold at one
    instant between samples: stuck_orders reads 0.2 in the table and the series
    peaks at 0.2, not a flat 0."""
    results = []
    for k in range(5):
        c = MetricsCollector(warm_up=0.0, horizon=300.0, series_step=100.0)
        stream: list[tuple[float, object]] = [(0.0, placed("a"))]
        if k == 3:
            stream += [(150.0, stuck("a", "placed", "no_progress", 150.0)),
                       (150.0, enter("a", "on_hold", "placed"))]
        feed(c, stream)
        metrics, series, _ = c.finish(300.0)
        results.append(ReplicationResult(replication=k, seed=k, metrics=metrics, series=series))
    report = aggregate(results, header={"scenario": "s"})
    assert report["metrics"]["stuck_orders"]["mean"] == 0.2
    assert report["series"]["stuck_orders"] == [(0.0, 0.0), (100.0, 0.0), (200.0, 0.2),
                                                (300.0, 0.0)]
