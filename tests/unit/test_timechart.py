"""What a time-series chart shows: hours and clock time, shaded spans, captions, order."""

from __future__ import annotations

from orderloom.simulation._report import sanitize
from orderloom.simulation import ReplicationResult, aggregate
from orderloom.simulation._series import Timeline, timeline_of
from orderloom.simulation._timechart import Span, SpanKind, clock_label, clock_ticks, lifecycle_order, standard_charts, time_chart

HOUR = 3600.0
OUTAGE = (14 * HOUR, 16 * HOUR, "gateway_outage down")


def _timeline(label: str = "cautious", *, replications: int = 3, horizon: float = 24 * HOUR,
              series: dict[str, list[tuple[float, float]]] | None = None) -> Timeline:
    points = series or {"stuck_orders": [(k * 2 * HOUR, float(k % 3)) for k in range(13)]}
    results = [ReplicationResult(replication=k, seed=k, metrics={"throughput": 1.0},
                                 series={n: [(t, v + k) for t, v in pts]
                                         for n, pts in points.items()},
                                 fault_windows=[OUTAGE]) for k in range(replications)]
    report = aggregate(results, header={"scenario": "payment-outage", "horizon": horizon,
                                        "warm_up": HOUR})
    return timeline_of(sanitize(report), label)


def test_clock_ticks_read_as_time_of_day_in_hours() -> None:
    """A one-day run gets ticks every two hours labelled 00:00 ... 24:00."""
    ticks = clock_ticks(24.0)
    assert ticks[0] == (0.0, "00:00") and ticks[-1] == (24.0, "24:00")
    assert [x for x, _ in ticks] == [float(h) for h in range(0, 25, 2)]
    assert clock_label(14.5, multi_day=False) == "14:30"


def test_multi_day_ticks_name_the_day() -> None:
    """Past one day a tick says which day: day 2 at 12:00 is 36 h in."""
    assert clock_label(36.0, multi_day=True) == "day 2\n12:00"
    ticks = clock_ticks(5 * 24.0)
    assert len(ticks) <= 13 and ticks[1] == (12.0, "day 1\n12:00")


def test_time_chart_is_in_hours_with_warm_up_and_faults_shaded() -> None:
    """x is in hours from 00:00 with clock ticks; the warm-up and the fault window
    are spans of the chart; y is the mean over replications with its band."""
    chart = time_chart("Stuck orders over time", "stuck (orders)", [_timeline()],
                       [("", "stuck_orders")])
    assert chart is not None
    line = chart.panels[0].lines[0]
    assert line.xs[:3] == (0.0, 2.0, 4.0) and chart.x_range == (0.0, 24.0)
    assert line.ys[:3] == (1.0, 2.0, 3.0)  # mean of k % 3 + replication (0, 1, 2)
    low, high = line.low[0], line.high[0]
    assert low is not None and high is not None and low < 1.0 < high
    assert chart.spans == (Span(start=0.0, end=1.0, label="warm-up", kind=SpanKind.WARM_UP),
                           Span(start=14.0, end=16.0, label="gateway_outage down",
                                kind=SpanKind.FAULT))
    assert chart.ticks[7] == (14.0, "14:00")
    assert chart.xlabel == "time of day (hh:mm)" and chart.ylabel == "stuck (orders)"


def test_captions_say_what_is_plotted() -> None:
    """The caption names the averaging (mean of N with a 95% band, one
    replication, or an old report's first replication), what a point is,
    the sample step and the shading."""
    chart = time_chart("t", "y", [_timeline()], [("", "stuck_orders")])
    assert chart is not None
    assert chart.caption.startswith("The mean of 3 replications, band: 95% CI of the mean.")
    assert "orders stuck at some moment of the sample interval ending at it" in chart.caption
    assert "points every 2 h" in chart.caption
    assert "Shaded: warm-up grey, faults red." in chart.caption
    one = time_chart("t", "y", [_timeline(replications=1)], [("", "stuck_orders")])
    assert one is not None and one.caption.startswith("One replication (no band).")
    old = time_chart("t", "y", [timeline_of({"series": {"stuck_orders": [[0.0, 1.0]]}})],
                     [("", "stuck_orders")])
    assert old is not None and "first replication only" in old.caption


def test_overlay_draws_one_line_per_run_and_shades_a_shared_window_once() -> None:
    """Two runs overlaid: a line each, labelled by run; their common fault
    window and warm-up are shaded once."""
    chart = time_chart("t", "y", [_timeline("a"), _timeline("b", replications=2)],
                       [("", "stuck_orders")])
    assert chart is not None
    assert [line.label for line in chart.panels[0].lines] == ["a", "b"]
    assert [s.kind for s in chart.spans] == [SpanKind.WARM_UP, SpanKind.FAULT]
    assert "a: the mean of 3 replications" in chart.caption
    assert "b: the mean of 2 replications" in chart.caption


def test_panels_at_zero_throughout_are_left_out_and_named() -> None:
    """A team whose queue never rose is named in the caption instead of drawn as
    an empty panel; panels come two to a row from three on."""
    flat = [(t * HOUR, 0.0) for t in range(3)]
    busy = [(t * HOUR, 1.0) for t in range(3)]
    timeline = _timeline(replications=1, series={
        "queue_length.a": busy, "queue_length.b": busy, "queue_length.c": busy,
        "queue_length.idle": flat})
    charts = {title: chart for title, chart, _ in standard_charts([timeline])}
    chart = charts["Cases waiting per team"]
    assert chart is not None
    assert [p.title for p in chart.panels] == ["a", "b", "c"] and chart.columns == 2
    assert "At 0 throughout, not drawn: idle." in chart.caption
    assert charts["Stuck orders over time"] is None


def test_stages_come_in_lifecycle_order() -> None:
    """Stages sort as an order passes them, end_to_end last, unknown ones by name
    after the known."""
    assert lifecycle_order(["on_hold", "end_to_end", "fulfilled", "zeta", "placed",
                            "awaiting_payment", "ready_for_fulfillment"]) == [
        "placed", "awaiting_payment", "ready_for_fulfillment", "fulfilled", "on_hold",
        "zeta", "end_to_end"]
