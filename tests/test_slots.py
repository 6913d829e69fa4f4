"""No Lua script can touch a key outside its namespace's hash slot.

The judge is Redis itself: a cluster node that owns only the namespace's slot refuses any
command on another slot, from inside a script too ("non local key"). Every script runs there,
instrumented so that each ``redis.call`` site records that it ran, through a scenario that
reaches every call site of every script (the test fails naming any site it did not reach). So
each key a script touches, whether passed in KEYS or derived from the ``base`` argument or a
job record, has been seen by Redis to hash to the namespace's slot.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from taskqueue.broker import Broker, NewJob
from taskqueue.keys import Keys
from taskqueue.runner import SyncRunner
from taskqueue.schedules.calls import ScheduleCalls
from taskqueue.schedules.plan import Step
from taskqueue.scripts import LUA_DIR, script_names, source
from taskqueue.testing.cluster import SLOTS, LocalCluster

KEYS = Keys()
SLOT = key_slot(KEYS.base.encode())
CALL = re.compile(r"redis\.(p?call)\(")
COVERAGE = KEYS.base + "coverage:"
#: Call sites no input can reach, with the reason: (script, statement) -> why.
UNREACHABLE = {
    ("schedule_fire", "redis.call('ZADD', sched, due, id)"):
        "new_job is called with due = now (and no scheduled set): the job is never scheduled",
    ("schedule_run_now", "redis.call('ZADD', sched, due, id)"):
        "new_job is called with due = now (and no scheduled set): the job is never scheduled",
    ("enqueue_now", "redis.call('ZADD', sched, due, id)"):
        "new_job is called with due = now (and no scheduled set): the job is never scheduled",
}  # fmt: skip


def functions(lines: list[str]) -> dict[str, range]:
    """Top-level ``local function name(`` definitions (the includes' style) -> their lines."""
    out: dict[str, range] = {}
    for i, line in enumerate(lines):
        m = re.match(r"local function (\w+)\(", line)
        if m:
            end = next(j for j in range(i + 1, len(lines)) if lines[j] == "end")
            out[m.group(1)] = range(i, end + 1)
    return out


def call_sites(name: str) -> dict[int, str]:
    """Line number -> line, for every ``redis.call`` / ``redis.pcall`` in the expanded script
    (includes inlined), header comment excluded, and bodies of included functions this script
    never calls (``count.lua`` brings ``observe`` along, for instance) excluded."""
    lines = source(name).split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("]]"))
    text = "\n".join(line.split("--", 1)[0] for line in lines)
    unused = [span for fn, span in functions(lines).items()
              if len(re.findall(rf"\b{fn}\(", text)) == 1]  # fmt: skip
    return {i: line.strip() for i, line in enumerate(lines)
            if i > start and CALL.search(line.split("--", 1)[0])
            and not any(i in span for span in unused)}  # fmt: skip


def instrumented(name: str) -> str:
    """The script with every call site recording its line number in a set of the namespace."""
    lines = source(name).split("\n")
    for i in call_sites(name):
        lines[i] = CALL.sub(lambda m, i=i: f"__site({i}).{m.group(1)}(", lines[i])
    head = f"local function __site(n) redis.call('SADD', '{COVERAGE}{name}', n) return redis end"
    return head + "\n" + "\n".join(lines)


class CoverageRunner(SyncRunner):
    """Runs the instrumented scripts (the plain runner sends EVALSHA of the shipped ones)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.scripts = {n: client.register_script(instrumented(n)) for n in script_names()}

    def __call__(self, call: Any) -> Any:
        return call.parse(self.scripts[call.script](keys=call.keys, args=call.args))


@pytest.fixture(scope="module")
def jail() -> Iterator[LocalCluster]:
    """A 2-node cluster whose first node owns only the default namespace's slot."""
    rest = [s for s in range(SLOTS) if s != SLOT]
    cluster = LocalCluster(2, 0, slots=[[SLOT], rest]).start()
    yield cluster
    cluster.close()


@pytest.fixture
def cell(jail: LocalCluster) -> Iterator[redis.Redis]:
    client = jail.nodes[0].client()
    client.flushall()
    client.script_flush()
    yield client
    client.close()


def test_the_jail_refuses_a_script_touching_another_slot(cell: redis.Redis):
    with pytest.raises(redis.ResponseError, match="non local key"):
        cell.eval("return redis.call('GET', 'tq:{other}:job:1')", 0)
    derived_untagged = "return redis.call('GET', string.sub(KEYS[1], 1, 3) .. 'job:1')"
    with pytest.raises(redis.ResponseError, match="non local key"):
        cell.eval(derived_untagged, 1, KEYS.base)  # tq:job:1: the hash tag was dropped
    assert cell.eval("return redis.call('GET', KEYS[1] .. 'job:1')", 1, KEYS.base) is None


def job(job_id: str, queue: str = "q1", **kw: Any) -> NewJob:
    fields: dict[str, Any] = dict(
        id=job_id, task="t", queue=queue, payload=b"\x90\x80", max_retries=0, timeout_ms=0,
        delay_ms=0, at_ms=0, key=None, dead_letter=True, ttl_ms=60_000,
    )  # fmt: skip
    fields.update(kw)
    return NewJob(**fields)


def scenario(run: CoverageRunner, cell: redis.Redis) -> None:
    """Drive every script through every branch that issues a Redis command."""
    b = Broker(KEYS)
    trim_count = Broker(KEYS, dead_max=1, max_stalls=0)
    trim_age = Broker(KEYS, dead_age_ms=1, max_stalls=0)
    short = Broker(KEYS, lease_ms=1, max_stalls=5)

    def fetch(
        broker: Broker, n: int, token: str, queues: tuple[str, ...] = ("q1",), worker: str = "w"
    ) -> list:
        return run(broker.fetch(list(queues), n, token, worker)).jobs

    def lease(ids: list[str], broker: Broker = b, token: str = "t", **kw: Any) -> list:
        """Enqueue and lease ``ids`` on a queue of their own (named after the first id)."""
        queue = kw.pop("queue", "q-" + ids[0])
        worker = kw.pop("worker", "w")
        run(broker.enqueue([job(i, queue=queue, **kw) for i in ids]))
        leased = fetch(broker, len(ids), token, (queue,), worker)
        assert sorted(j.id for j in leased) == sorted(ids)
        return leased

    def settle() -> None:
        time.sleep(0.005)  # lets lease deadlines and dead-letter ages pass (ms resolution)

    # enqueue: plain, delayed, at a time, idempotency key new then existing.
    assert run(b.enqueue([job("e1"), job("e2", delay_ms=1), job("e3", at_ms=1)])) == [
        ("e1", False), ("e2", False), ("e3", False)]  # fmt: skip
    assert run(b.enqueue([job("k1", key="k")]))[0] == ("k1", False)
    assert run(b.enqueue([job("k2", key="k")]))[0] == ("k1", True)
    # watch: unknown job, unfinished job (asks to be woken).
    assert run(b.watch("nope")) is None
    run(b.watch("e1"))
    settle()
    # fetch: promotes due jobs, leases one of several (full pop, wake list kept with a token).
    cell.delete(KEYS.wake("q1"))
    leased = fetch(b, 1, "t1")
    assert [j.id for j in leased] == ["e1"]
    # fetch: short pop (queue emptied), a paused queue skipped.
    run(b.pause("q2"))
    rest = fetch(b, 10, "t2", ("q1", "q2"))
    assert {j.id for j in rest} == {"e2", "e3", "k1"}
    # fetch with nothing ready: reports the next scheduled job.
    run(b.enqueue([job("later", delay_ms=600_000)]))
    assert fetch(b, 1, "t3").__len__() == 0
    # fetch behind an idle wait that the worker ended itself (its halt list): leases nothing.
    cell.lpush(KEYS.halt("w"), 1)
    run(b.enqueue([job("h1")]))
    assert run(b.fetch(["q1"], 1, "t4", "w", halt=True)).jobs == []
    assert [j.id for j in run(b.fetch(["q1"], 1, "t4", "w", halt=True)).jobs] == ["h1"]
    # ack: a waiter woken; the same ack again (a lost reply) a no-op; a wrong token counted as
    # a duplicate.
    assert run(b.ack([(leased[0], b"\xc0")])) == [True]
    assert run(b.ack([(leased[0], b"\xc0")])) == [True]
    other = type(leased[0])(**{**{f: getattr(leased[0], f) for f in leased[0].__slots__},
                               "token": "stale"})  # fmt: skip
    assert run(b.ack([(other, b"\xc0")])) == [False]
    # extend: renewed, lost, cancel requested.
    e2 = next(j for j in rest if j.id == "e2")
    assert run(b.cancel("e2", "q1")) == "requested"
    assert run(b.extend([("e2", "q1", "t2"), ("e1", "q1", "stale")])) == (["e1"], ["e2"])
    # fail: cancelled (flagged), retried, failed without dead letter, lost token.
    run(b.watch("e2"))
    assert run(b.fail(e2, "E: x", "", 10)) == "cancelled"
    assert run(b.fail(e2, "E: x", "", 10)) == "cancelled"  # sent again: the first's outcome
    e2.token = "stale"
    assert run(b.fail(e2, "E: x", "", 10)) == "lost"
    (r1,) = lease(["r1"], max_retries=1, token="t4")
    assert run(b.fail(r1, "E: x", "tb", 10)) == "scheduled"
    (f1,) = lease(["f1"], dead_letter=False, token="t5")
    run(b.watch("f1"))
    assert run(b.fail(f1, "E: x", "", 10)) == "failed"
    # fail into the dead letter: trimmed by count, then by age; a waiter woken.
    for i in range(3):
        (d,) = lease([f"d{i}"], token=f"td{i}")
        run(b.watch(d.id))
        broker = trim_count if i < 2 else trim_age
        settle()
        assert run(broker.fail(d, "E: x", "", 10, retry=False)) == "dead"
    # release: graceful, and graceful of a cancel-flagged job with a waiter.
    g1, g2 = lease(["g1", "g2"], token="t6")
    assert run(b.cancel("g2", g2.queue)) == "requested"
    run(b.watch("g2"))
    assert run(b.release([("g1", g1.queue, "t6"), ("g2", g2.queue, "t6")])) == 2
    # release_worker after a clean exit.
    (w1,) = lease(["w1"], token="t10", worker="exits")
    assert run(b.release_worker("exits", stalled=False)) == 1

    def stall_paths(tag: str, act: Any) -> None:
        """A stalled job requeued, one cancelled meanwhile, one dead (dead letter trimmed by
        age, then by count), through ``act(broker, leased jobs)``; waiters on each."""
        a, c = lease([f"{tag}-a", f"{tag}-c"], broker=short, token=tag, worker=tag)
        assert run(b.cancel(c.id, c.queue)) == "requested"
        run(b.watch(c.id))
        settle()
        act(short, [a, c])
        assert cell.hget(KEYS.job(c.id), "state") == b"cancelled"
        assert cell.hget(KEYS.job(a.id), "state") == b"queued"
        for n, broker in enumerate((trim_age, trim_count)):
            (d,) = lease([f"{tag}-d{n}"], broker=short, token=tag, worker=tag)
            run(b.watch(d.id))
            settle()
            act(broker, [d])
            assert cell.hget(KEYS.job(d.id), "state") == b"dead"

    stall_paths("rel", lambda br, jobs: run(br.release(
        [(j.id, j.queue, j.token) for j in jobs], stalled=True)))  # fmt: skip
    stall_paths("relw", lambda br, jobs: run(br.release_worker("relw", stalled=True)))
    stall_paths("rec", lambda br, jobs: run(br.recover([jobs[0].queue])))
    # fetch: a corrupt record goes to the dead letter; a suspect (stalled before) ends the batch
    # and the ids popped after it go back to the head.
    run(b.enqueue([job("bad", queue="qf"), job("sus", queue="qf"), job("after", queue="qf")]))
    cell.hset(KEYS.job("bad"), "attempts", "x")
    cell.hset(KEYS.job("sus"), "stalls", 1)
    assert [j.id for j in fetch(b, 3, "tf", ("qf",))] == ["sus"]
    assert cell.hget(KEYS.job("bad"), "state") == b"dead"
    assert cell.lrange(KEYS.ready("qf"), 0, -1) == [b"after"]
    # release_worker after a clean exit, of a job whose cancel was asked while it ran.
    (wc,) = lease(["wc"], token="twc", worker="exits-cancelled")
    assert run(b.cancel("wc", wc.queue)) == "requested"
    run(b.watch("wc"))
    assert run(b.release_worker("exits-cancelled", stalled=False)) == 1
    schedule_scenario(run, cell)
    # cancel: queued (its id stays as a tombstone), scheduled, missing, already finished.
    run(b.enqueue([job("cq")]))
    run(b.watch("cq"))
    assert run(b.cancel("cq", "q1")) == "cancelled"
    run(b.enqueue([job("cs", delay_ms=600_000)]))
    assert run(b.cancel("cs", "q1")) == "cancelled"
    assert run(b.cancel("nope", "q1")) == "missing"
    assert run(b.cancel("cq", "q1")) == "finished:cancelled"
    # fetch drops tombstones unrun: one of two (count lowered), then the last (list emptied).
    run(b.enqueue([job(f"tb{i}", queue="qt") for i in range(4)]))
    assert [run(b.cancel(f"tb{i}", "qt")) for i in (0, 2)] == ["cancelled"] * 2
    assert [j.id for j in fetch(b, 1, "ttb1", ("qt",))] == ["tb1"]
    assert cell.hget(KEYS.tombs, "qt") == b"1"
    assert [j.id for j in fetch(b, 1, "ttb2", ("qt",))] == ["tb3"]
    assert cell.hget(KEYS.tombs, "qt") is None
    # pause / resume a queue with jobs waiting (wakes idle workers).
    run(b.enqueue([job("p1", queue="q2")]))
    assert run(b.resume("q2")) is True
    # schema_check: first record, a newer compatible release raises it, an old one is refused.
    assert run(b.schema_check(1, 1, "h:1"))[0]
    assert run(b.schema_check(2, 1, "h:2"))[0]
    assert not run(b.schema_check(3, 3, "h:3"))[0]
    # autoscale_claim: granted (and logged), refused while another master holds it, log only.
    assert run(b.autoscale_claim("m1", "up", 60_000, '{"action": "up"}'))[0]
    assert not run(b.autoscale_claim("m2", "up", 60_000, '{"action": "up"}'))[0]
    assert run(b.autoscale_claim("m2", "down", 0, '{"action": "down"}'))[0]
    # purge: ready and scheduled jobs, and tombstones dropped (count lowered, then emptied).
    run(b.enqueue([job("pu0", queue="q3"), job("pu1", queue="q3"), job("pu3", queue="q3"),
                   job("pu2", queue="q3", delay_ms=600_000)]))  # fmt: skip
    run(b.watch("pu1"))
    assert [run(b.cancel(i, "q3")) for i in ("pu0", "pu3")] == ["cancelled"] * 2
    assert run(b.purge("q3", limit=2)) == (1, 2)
    assert run(b.purge("q3")) == (1, 2)
    assert run(b.purge("q3")) == (0, 0)
    # dead letter: retry by id and all, delete by id and all.
    dead = [m.decode() for m in cell.zrange(KEYS.dead, 0, -1)]
    assert dead, "the scenario should have left jobs in the dead letter"
    assert run(b.dead_retry([dead[0]])) == 1
    queues = tuple(q.decode() for q in cell.smembers(KEYS.queues))

    def fail_all_ready(token: str) -> None:
        # fetch ends a batch at a job that stalled before (poison isolation): fetch again.
        while batch := fetch(b, 100, token, queues):
            for j in batch:
                run(b.fail(j, "E: x", "", 10, retry=False))

    fail_all_ready("t12")
    assert run(b.dead_delete([dead[0]])) == 1
    assert run(b.dead_retry()) >= 1
    fail_all_ready("t13")
    assert run(b.dead_delete()) >= 1
    # fetch: a job past its expiry ends `expired` (a result waiter woken), never leased.
    run(b.enqueue([job("x1", queue="qx", expires_ms=1)]))
    run(b.watch("x1"))
    settle()
    assert fetch(b, 1, "tx", ("qx",)) == []
    assert cell.hget(KEYS.job("x1"), "state") == b"expired"


def schedule_scenario(run: CoverageRunner, cell: redis.Redis) -> None:
    """Every branch of the schedule scripts (sync, fire, run_now, pause, resume)."""
    sc = ScheduleCalls(KEYS)
    secs, micros = cell.time()
    now = secs * 1000 + micros // 1000
    rec = {"digest": "d1", "task": "t", "queue": "sq", "payload": b"\x90\x80",
           "max_retries": 0, "timeout_ms": 0, "dead_letter": 1, "ttl_ms": 60_000}  # fmt: skip
    other = {**rec, "digest": "d2"}
    assert run(sc.sync({"s1": (rec, now - 1000), "s2": (rec, now - 1000)}))["added"] == 2
    assert run(sc.sync({"s1": (rec, now - 1000), "s2": (other, now - 1000)})) == {
        "added": 0, "changed": 1, "removed": 0, "unchanged": 1}  # fmt: skip
    assert run(sc.sync({"s1": (rec, now - 1000)}))["removed"] == 1
    step = Step(expect=now - 1000, fire=now - 1000, missed=0, next=now + 600_000)
    assert run(sc.fire("nope", "d1", "sq", step)).status == "gone"
    assert run(sc.fire("s1", "d0", "sq", step)).status == "stale"
    assert run(sc.fire("s1", "d1", "sq", Step(now - 5, now - 5, 0, now))).status == "taken"
    assert run(sc.fire("s1", "d1", "sq", step)).status == "fired"
    later = Step(expect=now + 600_000, fire=None, missed=2, next=now + 1_200_000)
    assert run(sc.fire("s1", "d1", "sq", later)).status == "early"
    cell.hset(KEYS.schedule("s1"), "next_ms", now - 1)
    assert run(sc.fire("s1", "d1", "sq", Step(now - 1, None, 2, now + 60_000))).status == "skipped"
    assert run(sc.run_now("s1", "d1", "sq"))[0] == "fired"
    assert run(sc.run_now("nope", "d1", "sq"))[0] == "gone"
    assert run(sc.run_now("s1", "d0", "sq"))[0] == "stale"
    assert [run(sc.pause(n)) for n in ("nope", "s1", "s1")] == [-1, 1, 0]
    assert run(sc.fire("s1", "d1", "sq", step)).status == "paused"
    assert [run(sc.resume(n, now + 60_000)) for n in ("nope", "s1", "s1")] == [-1, 1, 0]


KEY_ARG = re.compile(r"redis\.p?call\('\w+', (\w+)[,)]")


def same_key(name: str, line: int, ran: set[int]) -> bool:
    """The site's key is a variable of its include function set once there (a parameter or one
    ``local`` assignment), and a reached site of that function used the same variable: that key
    was checked. (wake's LTRIM runs only past 128 tokens, on the key its LPUSH pushed to; the
    minute hash's PEXPIRE only when the HINCRBY before it created the hash.)"""
    lines = source(name).split("\n")
    m = KEY_ARG.search(lines[line])
    for span in functions(lines).values():
        if line in span and m:
            var = m.group(1)
            head = re.search(r"\((.*)\)", lines[span[0]])
            params = head.group(1).replace(" ", "").split(",") if head else []
            sets = sum(bool(re.search(rf"\b{var}\s*=[^=]", lines[i])) for i in span)
            return (sets + (var in params)) == 1 and any(
                r in span and (k := KEY_ARG.search(lines[r])) and k.group(1) == var
                for r in ran if r != line)  # fmt: skip
    return False


def test_no_script_touches_a_key_outside_its_namespace_slot(cell: redis.Redis):
    run = CoverageRunner(cell)
    scenario(run, cell)  # any foreign key would have raised "non local key" here
    missed = []
    for name in script_names():
        ran = {int(x) for x in cell.smembers(COVERAGE + name)}
        sites = call_sites(name)
        spans = functions(source(name).split("\n")).values()
        for line, text in sorted(sites.items()):
            # The same statement reached in the same function names the same key (the second
            # HINCRBY of flush_tally's minute key only runs when samples were taken).
            twin = any(r != line and sites.get(r) == text and
                       any(line in sp and r in sp for sp in spans) for r in ran)  # fmt: skip
            if line not in ran and not twin and not same_key(name, line, ran) and (
                name, text) not in UNREACHABLE:  # fmt: skip
                missed.append(f"{name}.lua (expanded line {line}): {text}")
    assert not missed, (
        "the jail scenario never reached these call sites, so their keys were not checked; "
        "extend scenario() in tests/test_slots.py:\n  " + "\n  ".join(missed)
    )
    assert cell.info("keyspace")  # the scenario wrote where it should


@pytest.mark.parametrize("name", script_names())
def test_derived_keys_come_from_the_namespace_base(name: str):
    """A script that builds key names says so in its header and builds them from the ``base``
    argument or from a key it was given (same hash tag)."""
    text = (LUA_DIR / f"{name}.lua").read_text()
    body = source(name).split("]]", 1)[1]
    builds = re.findall(r"(\w+(?:\[\d+\])?)\s*\.\.\s*'(?:job|done|q|a|w|held):", body)
    for origin in builds:
        assert origin in ("base", "ARGV[6]", "ARGV[8]", "ARGV[1]", "ARGV[5]"), (
            f"{name}: key built from {origin!r}, not from the namespace base"
        )
    if builds:
        header = text[: text.index("]]")]
        assert re.search(r"^ARGV\[\d+\] base\b.*derived", header, re.M | re.S), (
            f"{name}: derives keys but its header has no 'ARGV[n] base ... derived' line"
        )
