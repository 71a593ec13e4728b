"""``--precision`` on simulate and compare, and the warm-up suggestion, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .test_cli import cli

# One worker runs this module: its module-scoped fixtures (or cached runs) are
# computed once (pytest's --dist loadgroup spreads the other modules' tests).
pytestmark = pytest.mark.xdist_group("e2e.test_precision")

SHORT = ("--horizon", "1h", "-j", "1")


def _report(folder: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    return doc


def test_a_precision_run_equals_a_plain_run_of_as_many_replications(tmp_path: Path) -> None:
    """simulate --precision adds replications from 2 to the cap of 6 (a 1% target
    a 1-hour run cannot reach), says so, and its numbers and seeds are those of
    a plain run with -n 6."""
    out = cli("simulate", "baseline", *SHORT, "-n", "2", "--precision", "1%",
              "--max-replications", "6", "--out", str(tmp_path / "p")).stdout
    assert "baseline / balanced: 6 replications" in out
    assert "precision 1% NOT reached: stopped at the cap of 6 replications" in out
    cli("simulate", "baseline", *SHORT, "-n", "6", "--out", str(tmp_path / "plain"))
    grown, plain = _report(tmp_path / "p"), _report(tmp_path / "plain")
    assert grown["metrics"] == plain["metrics"]
    assert grown["replication_seeds"] == plain["replication_seeds"]
    assert grown["provenance"]["scenario"]["replications"] == 6
    assert grown["precision"]["rounds"] == [2, 4, 6] and grown["precision"]["reached"] is False
    assert grown["reproduce"].startswith("orderloom simulate baseline --policy balanced "
                                         "--seed 1 --replications 6")
    assert grown["warm_up_suggestion"]["unit"] == "s"


@pytest.mark.parametrize(("args", "expected"), [
    (("--precision", "abc"), "expected a relative half-width such as 5%"),
    (("--precision", "150%"), "above 0% and below 100%"),
    (("--max-replications", "4"), "--max-replications caps a --precision run"),
    (("-n", "5", "--precision", "5%", "--max-replications", "3"),
     "--max-replications: expected at least the 5 replications"),
])
def test_bad_precision_input_exits_2_with_a_clear_message(
        tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    """A bad --precision or --max-replications ends in exit 2 naming the option
    and what was expected, before anything runs."""
    result = cli("simulate", "baseline", *SHORT, *args, "--out", str(tmp_path / "x"), ok=False)
    assert result.returncode == 2
    assert expected in result.stderr
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 2-replication runs of one seed under two policies."""
    base = tmp_path_factory.mktemp("pair")
    for policy in ("cautious", "aggressive"):
        cli("simulate", "baseline", "--policy", policy, *SHORT, "-n", "2",
            "--out", str(base / policy))
    return base


def test_compare_precision_extends_both_sides_with_common_seeds(pair: Path) -> None:
    """compare --precision reruns both runs with more replications (up to the
    cap of 4 here), writes the extended reports as <folder>-n4, compares those,
    and each equals a plain run of 4 replications."""
    result = cli("compare", str(pair / "cautious"), str(pair / "aggressive"), "--precision",
                 "1%", "--max-replications", "4", "-j", "1")
    assert "precision 1% NOT reached: stopped at the cap of 4 replications" in result.stdout
    assert "of the baseline's mean" in result.stdout
    assert f"extended reports: {pair / 'cautious-n4'}, {pair / 'aggressive-n4'}" in result.stdout
    cli("simulate", "baseline", "--policy", "aggressive", *SHORT, "-n", "4",
        "--out", str(pair / "plain"))
    extended, plain = _report(pair / "aggressive-n4"), _report(pair / "plain")
    assert extended["metrics"] == plain["metrics"]
    assert extended["replication_seeds"] == _report(pair / "cautious-n4")["replication_seeds"]
    assert extended["precision"]["against"] == "the baseline's mean"


def test_compare_precision_refuses_reports_that_do_not_pair(pair: Path, tmp_path: Path) -> None:
    """Reports of another seed cannot be extended pair by pair: exit 2, saying why."""
    cli("simulate", "baseline", "--policy", "aggressive", *SHORT, "-n", "2", "--seed", "9",
        "--out", str(tmp_path / "other"))
    result = cli("compare", str(pair / "cautious"), str(tmp_path / "other"), "--precision", "5%",
                 "--allow-different", ok=False)
    assert result.returncode == 2
    assert "--precision pairs replication k of every report" in result.stderr
