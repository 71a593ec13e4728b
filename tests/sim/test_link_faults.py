"""Link faults do what the scenario says: their window is honoured, and two
rules on one link (a scenario's and swarm's) both act."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest

from orderloom.runtime import Actor, Message, handler
from orderloom.simulation import LinkFaults, ScenarioError, SimKernel, load_scenario, world_for
from orderloom.simulation._faults import LinkRule
from orderloom.simulation._runner import replication_seed, run_replication
from orderloom.simulation._scenario import FaultSpec, Swarm, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0


@attrs.frozen(kw_only=True)
class Ping(Message):
    n: int


class Sink(Actor):
    def __init__(self, got: list[tuple[float, int]]) -> None:
        self.got = got

    @handler
    async def on_ping(self, msg: Ping) -> None:
        self.got.append((self.ctx.now(), msg.n))


def _run(rules: list[tuple[LinkFaults, float, float]], count: int = 300,
         seed: int = 3) -> tuple[list[tuple[float, int]], SimKernel]:
    """``count`` pings from outside, ping n due at time n, through ``rules`` on one link."""
    got: list[tuple[float, int]] = []
    kernel = SimKernel(seed=seed)
    kernel.spawn(lambda: Sink(got), "sink")
    for faults, start, end in rules:
        kernel.set_link_faults("-", "sink", faults, start=start, end=end)
    for n in range(count):
        kernel.tell("sink", Ping(n=n), delay=float(n))
    kernel.run()
    return got, kernel


def test_a_drop_window_drops_exactly_the_messages_due_inside_it() -> None:
    """A rule that drops everything between 100 s and 200 s drops the pings due
    in [100, 200) and no other."""
    got, kernel = _run([(LinkFaults(drop=1.0), 100.0, 200.0)])
    assert [n for _, n in got] == [*range(100), *range(200, 300)]
    dropped = [d for d in kernel.dead_letters if d.reason == "dropped_by_fault"]
    assert len(dropped) == 100


def test_a_delay_window_delays_only_inside_it() -> None:
    """A fixed 10 s delay in force from 50 s to 60 s moves only the pings due then."""
    got, _ = _run([(LinkFaults(delay=1.0, delay_min=10.0, delay_max=10.0), 50.0, 60.0)],
                  count=100)
    times = dict((n, t) for t, n in got)
    assert [n for n in range(100) if times[n] != float(n)] == list(range(50, 60))
    assert all(times[n] == n + 10.0 for n in range(50, 60))


def test_two_rules_on_one_link_both_act_and_their_delays_add() -> None:
    """One rule duplicates every message, the other delays each by 10 s: every
    ping arrives twice, and both copies carry the delay (delays add)."""
    got, _ = _run([(LinkFaults(duplicate=1.0), 0.0, float("inf")),
                   (LinkFaults(delay=1.0, delay_min=10.0, delay_max=10.0), 0.0, float("inf"))],
                  count=50)
    assert Counter(n for _, n in got) == Counter({n: 2 for n in range(50)})
    assert sorted(got) == sorted([(n + 10.0, n) for n in range(50)] * 2)


def test_two_drop_rules_combine_as_independent_draws() -> None:
    """Two rules dropping half the messages each lose about three quarters of them
    (1 - 0.5 * 0.5), not half: the second rule is not shadowed by the first."""
    got, _ = _run([(LinkFaults(drop=0.5), 0.0, float("inf")),
                   (LinkFaults(drop=0.5), 0.0, float("inf"))], count=4000)
    assert 900 < len(got) < 1100  # 1000 expected; the binomial sd is about 27


def test_a_link_rule_needs_an_end_after_its_start() -> None:
    """A rule whose window is empty is refused, by the kernel and in a scenario file."""
    with pytest.raises(ValueError, match="end"):
        SimKernel().set_link_faults("-", "sink", LinkFaults(drop=1.0), start=5.0, end=5.0)
    with pytest.raises(ValueError, match="end"):
        LinkRule(sender="-", recipient="x", faults=LinkFaults(), start=5.0, end=1.0)
    text = (ROOT / "scenarios" / "webhook-chaos.yaml").read_text(encoding="utf-8")
    text += "- {kind: link, sender: gateway, recipient: order/*, start: 2h, end: 1h,\n" \
            "   link: {drop: 0.5}}\n"
    with pytest.raises(ScenarioError, match=r"faults\[2\]\.end"):
        parse_scenario(text, "bad.yaml", ROOT / "scenarios")


def _gateway_drops(scenario: Any) -> list[float]:
    """The times at which replication 0 of ``scenario`` lost a gateway webhook to a fault."""
    kernels: list[SimKernel] = []
    run_replication(scenario, 0, observe=kernels.append)
    (kernel,) = kernels
    return [d.time for d in kernel.dead_letters if d.reason == "dropped_by_fault"
            and d.envelope.sender == "gateway"]


def _short_chaos(*faults: FaultSpec, swarm: Swarm = Swarm()) -> Any:
    base = load_scenario(ROOT / "scenarios" / "webhook-chaos.yaml")
    demand = attrs.evolve(base.demand, orders_per_day=4000.0, profile=(1.0,) * 24)
    return attrs.evolve(base, horizon=3 * HOUR, warm_up=0.0, demand=demand,
                        faults=faults, swarm=swarm)


def test_a_scenario_link_fault_acts_only_inside_its_window() -> None:
    """A scenario's fault that drops every gateway webhook from 1 h to 2 h drops
    some, and none before 1 h or from 2 h on (it lasted the whole run before)."""
    scenario = _short_chaos(FaultSpec(kind="link", sender="gateway", recipient="order/*",
                                      start=HOUR, end=2 * HOUR, link=LinkFaults(drop=1.0)))
    drops = _gateway_drops(scenario)
    assert drops and all(HOUR <= t < 2 * HOUR for t in drops)
    (rule,) = world_for(scenario, scenario.policy, random.Random(0)).links
    assert (rule.start, rule.end) == (HOUR, 2 * HOUR)


def test_a_scenario_rule_and_swarms_rule_on_the_gateway_link_both_act() -> None:
    """With swarm's webhook drops on and a scenario rule on the same link (its
    drops only from 1 h to 2 h), webhooks are also lost outside that window:
    swarm's rule is no longer shadowed by the scenario's."""
    swarm = Swarm(enabled=True, webhook_drop=0.5, gateway_outage_probability=0.0,
                  lost_response=0.0, downstream_failure=0.0)
    scenario = _short_chaos(FaultSpec(kind="link", sender="gateway", recipient="order/*",
                                      start=HOUR, end=2 * HOUR, link=LinkFaults(drop=1.0)),
                            swarm=swarm)
    world = world_for(scenario, scenario.policy,
                      random.Random(f"{replication_seed(scenario.seed, 0)}/faults"))
    assert [(r.sender, r.recipient) for r in world.links] == [("gateway", "order/*")] * 2
    assert world.links[1].faults.drop > 0
    drops = _gateway_drops(scenario)
    assert any(HOUR <= t < 2 * HOUR for t in drops)
    assert any(not HOUR <= t < 2 * HOUR for t in drops)
