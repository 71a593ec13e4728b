"""Scenario warnings as the CLI prints them: ``warning: <file>: <field>: <message>``."""

from __future__ import annotations

from orderloom.actors import DocumentError
from orderloom.simulation import (
    Scenario,
    resolve_scenario,
    scenario_sections,
    scenario_warnings,
)


def warning_lines(source: str, scenario: Scenario) -> list[str]:
    """The warnings of ``scenario``, loaded from the file ``source``."""
    try:
        sections = scenario_sections(source)
    except (OSError, UnicodeDecodeError, DocumentError):
        sections = None  # the loader has said what is wrong with the file
    return [f"warning: {source}: {w}" for w in scenario_warnings(scenario, sections=sections)]


def run_warning_lines(name: str, horizon: str | None) -> list[str]:
    """The warnings of the scenario ``simulate`` or ``sweep`` is about to run
    (``--horizon`` applied); none when it does not load (the run says why)."""
    from ._simulate import _scenario

    try:
        return warning_lines(str(resolve_scenario(name)), _scenario(name, horizon))
    except DocumentError:
        return []
