"""Run ``broker.Call`` objects on a redis-py connection, sync or asyncio.

Scripts are registered once per connection pool as redis-py ``Script`` objects, which send
EVALSHA and reload a script transparently after NOSCRIPT (a restarted Redis, SCRIPT FLUSH).
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio

from .broker import Call
from .scripts import register_all


class SyncRunner:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.scripts: dict[str, Any] = register_all(client)

    def __call__(self, call: Call) -> Any:
        return call.parse(self.scripts[call.script](keys=call.keys, args=call.args))

    def pipeline(self, calls: list[Call]) -> list[Any]:
        """Run several calls in one round trip (each still atomic on its own)."""
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            self.scripts[call.script](keys=call.keys, args=call.args, client=pipe)
        return [call.parse(raw) for call, raw in zip(calls, pipe.execute(), strict=True)]


class AsyncRunner:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.scripts: dict[str, Any] = register_all(client)

    async def __call__(self, call: Call) -> Any:
        return call.parse(await self.scripts[call.script](keys=call.keys, args=call.args))
