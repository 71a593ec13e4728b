"""orderloom.actors: the order domain (messages, state model, actors, policies).

Imports only the kernel contract from :mod:`orderloom.runtime`.
"""

from __future__ import annotations

__all__: list[str] = []
