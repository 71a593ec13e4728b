"""Suite-wide checks on how the tests are distributed.

The modules marked ``xdist_group`` share module-scoped fixtures or cached
runs (the Erlang C grid, the CLI's runs): ``--dist loadgroup`` must keep each
on one worker, or both workers compute them. pytest-xdist 3.8 marks a grouped
test by rewriting its node id, which pytest 9.2 ignores (pytest-xdist issue
1386): the marks then change nothing, silently. Here every such test fails
instead, saying why.
"""

from __future__ import annotations

import pytest

_UNGROUPED = pytest.StashKey[bool]()


@pytest.hookimpl(trylast=True)  # after xdist's worker hook has named the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("loadgroup", default=False):
        return  # not an xdist worker under --dist loadgroup
    for item in items:
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid:
            item.stash[_UNGROUPED] = True


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.stash.get(_UNGROUPED, False):
        pytest.fail("--dist loadgroup is not grouping: this test is marked xdist_group but "
                    "its node id names no group, so its module's shared fixtures would run "
                    "on every worker; this pytest and pytest-xdist do not work together "
                    "(install the versions in constraints.txt)", pytrace=False)
