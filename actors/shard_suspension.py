"""The account shard's side of suspensions and read limits (mixed into `AccountShardActor`).

The registry journals a suspension first, then calls `set_suspended` on the user's shard:
the shard journals its own `AccountSuspended`, refuses the user's orders from then on (its
`access`, actors/shard_access.py, is checked in `place_orders` and `cancel_orders`), and
cancels every open order of the user through the same per-book cancel as an order cancel
(`_cancel_open`), with reason `user_suspended`, waiting until each has closed and released
its hold. A crash anywhere in between is finished by the registry's retried call, by
`sync_suspended` (the registry's announcement at its start), or by `_finish_suspensions`
once this shard has recovered.
"""

from __future__ import annotations

import asyncio
import time

from actors.faults import crash_point
from actors.records import SHARD_RECORDS, AccountResumed, AccountSuspended
from engine import CloseReason
from engine.queries import user_open_orders


class ShardSuspension:
    """Suspension commands of a shard; needs its `access`, `accounts`, `store`, `config`,
    `_background`, `_ensure_ready` and `_cancel_open`."""

    async def set_suspended(self, username: str, suspended: bool, timestamp: int) -> int:
        """Suspend (refuse the user's orders from now on, then cancel its open ones with reason
        user_suspended) or resume a user, journaled; answer how many orders this call cancelled.
        Idempotent: suspending again cancels whatever is still open."""
        await self._ensure_ready()
        if (username in self.access.suspended) != suspended:
            self.access.set_suspended(username, suspended)
            record = AccountSuspended(username, timestamp) if suspended else AccountResumed(username, timestamp)
            await self.store.append([SHARD_RECORDS.encode(record)])
            crash_point(self.config, "shard.after_suspend")
        if not suspended:
            return 0
        # Waiting stop orders must be among these once they exist (see the issue 18 report).
        orders = user_open_orders(self.accounts, username)
        await self._cancel_open(orders, timestamp, CloseReason.USER_SUSPENDED)
        return sum(1 for order in orders if order.reason is CloseReason.USER_SUSPENDED)

    async def sync_suspended(self, usernames: list[str]) -> bool:
        """Make this shard's suspensions those the registry journaled (at its start: a crash between
        the registry's journal and ours is finished here)."""
        await self._ensure_ready()
        timestamp = time.time_ns() // 1000
        wanted = set(usernames)
        for username in sorted(self.access.suspended - wanted):
            await self.set_suspended(username, False, timestamp)
        for username in sorted(wanted):
            await self.set_suspended(username, True, timestamp)
        return True

    async def admit_read(self, username: str) -> int | None:
        """Take a read token of the user: the tokens left, or None when limited."""
        return self.access.admit_read(username)

    def _finish_suspensions(self, timestamp: int) -> None:
        """Cancel, in the background, what suspended users still have open (a crash cut a
        suspension short); called once recovery is done."""
        for username in [name for name in self.access.suspended if self.accounts.orders_by_user.get(name)]:
            task = asyncio.get_running_loop().create_task(self.set_suspended(username, True, timestamp))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _replay_access(self, record) -> bool:
        """Apply a replayed suspension record; False for any other record."""
        kind = type(record)
        if kind is AccountSuspended or kind is AccountResumed:
            self.access.set_suspended(record.username, kind is AccountSuspended)
            return True
        return False
