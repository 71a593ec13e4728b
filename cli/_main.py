"""Entry point of the ``orderloom`` console script."""

from __future__ import annotations

import click

from orderloom.simulation._demo import run_demo


@click.group()
@click.version_option(package_name="orderloom")
def main() -> None:
    """orderloom: order-management automation runtime and policy simulator."""


@main.command()
@click.option("--seed", type=int, default=1, show_default=True, help="Run seed.")
@click.option("--orders", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Orders the customers place.")
@click.option("--no-outage", is_flag=True, help="Run without the gateway outage window.")
@click.option("--no-check", is_flag=True, help="Skip the determinism self-check.")
def demo(seed: int, orders: int, no_outage: bool, no_check: bool) -> None:
    """Run a small checkout model on the SimPy kernel and print what happened."""
    result = run_demo(seed=seed, orders=orders, outage=None if no_outage else (600.0, 900.0),
                      check=not no_check)
    for line in result.lines():
        click.echo(line)
