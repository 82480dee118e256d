"""The seam between entity writes and subscriptions.

Writes ask the notifier which notifications a change causes (so they are stored
in the same transaction), then wake it to deliver them.
"""

from __future__ import annotations

from typing import Protocol

from hotoku.broker.ops import Change
from hotoku.broker.store.sql import OutboxRow


class Notifier(Protocol):
    def outbox_for(self, tenant: str, changes: list[Change]) -> list[OutboxRow]: ...

    def wake(self) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class NoNotifier:
    """Used where subscriptions are off (tools, some tests)."""

    def outbox_for(self, tenant: str, changes: list[Change]) -> list[OutboxRow]:
        return []

    def wake(self) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None
