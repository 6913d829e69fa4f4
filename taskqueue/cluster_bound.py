"""The asyncio Redis Cluster client under ``[redis] pool_size``, and WAIT on a slot's owner.

Duties:
1. ``BoundedAsyncCluster``: redis-py's asyncio cluster, whose nodes raise MaxConnectionsError
   when their connection list is full, admits at most ``pool_size`` commands and pipelines at
   once, so no node needs more than ``pool_size`` connections and callers beyond wait.
2. ``admitted``: hold one of those places (re-entrant within a task).
3. ``on_slot_owner``: commands back to back on one connection of the node owning a key's slot
   (the acknowledged enqueue's EVALSHA then WAIT).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio.cluster

#: The bounded asyncio cluster clients the current task already holds a place in (a pipeline
#: that follows a MOVED reply re-sends the command through the client while it holds one).
_ADMITTED: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "taskqueue_cluster_admitted", default=frozenset()
)


@contextlib.asynccontextmanager
async def admitted(client: Any) -> AsyncIterator[None]:
    """Hold one of ``client``'s ``pool_size`` places (no-op for a client that is not a
    ``BoundedAsyncCluster``, or when this task already holds one)."""
    admission = getattr(client, "admission", None)
    held = _ADMITTED.get()
    if admission is None or id(client) in held:
        yield
        return
    async with admission:
        token = _ADMITTED.set(held | {id(client)})
        try:
            yield
        finally:
            _ADMITTED.reset(token)


class BoundedAsyncCluster(redis.asyncio.cluster.RedisCluster):
    """redis-py's asyncio cluster under ``pool_size``. Its nodes keep connection lists of at
    most ``max_connections`` that raise MaxConnectionsError when full instead of waiting, so
    the client admits at most ``pool_size`` commands and pipelines at once (a semaphore): each
    holds at most one connection per node, so no node ever needs more than ``pool_size``,
    and a caller beyond the bound waits, as on the blocking pools of the other clients. (A
    connection redis-py is still closing after a connection error is briefly neither free nor
    gone: a command then may get MaxConnectionsError, a ConnectionError, handled as the
    outage it comes from.)"""

    def __init__(self, *args: Any, max_connections: int, **kwargs: Any) -> None:
        super().__init__(*args, max_connections=max_connections, **kwargs)
        self.admission = asyncio.Semaphore(max_connections)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with admitted(self):
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """A bounded pipeline; a transaction (taskqueue sends none) is redis-py's own."""
        if transaction is not None or shard_hint:
            return super().pipeline(transaction, shard_hint)
        return BoundedClusterPipeline(self)


class BoundedClusterPipeline(redis.asyncio.cluster.ClusterPipeline):
    """A pipeline of ``BoundedAsyncCluster``: one place for the whole pipeline."""

    __slots__ = ("bounded_by",)  # (redis-py's attribute for the client has changed names)

    def __init__(self, client: BoundedAsyncCluster) -> None:
        super().__init__(client)
        self.bounded_by = client

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        async with admitted(self.bounded_by):
            return await super().execute(*args, **kwargs)


async def on_slot_owner(client: Any, key: str, *commands: tuple[Any, ...]) -> list[Any]:
    """Send ``commands`` back to back on one connection of the asyncio cluster node that owns
    ``key``'s slot (for WAIT, which counts what its own connection wrote); returns each reply,
    or the exception Redis answered (MOVED included: redis-py's redirection is bypassed)."""
    async with admitted(client):
        await client.initialize()
        node = client.get_node_from_key(key)
        stack = [redis.asyncio.cluster.PipelineCommand(i, *c) for i, c in enumerate(commands)]
        await node.execute_pipeline(stack)
        return [c.result for c in stack]
