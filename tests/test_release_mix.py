"""Rolling deploys with real releases: earlier releases of this package, exported from the
repository's own history (``git archive``), run their own Python and Lua beside the current tree
on one Redis. Compatible releases share the namespace and hand over mid-run with every job run
once; a release the namespace's schema record rules out exits 2 with one line and touches no job.

Needs a full clone (the pinned commits); a shallow one skips with the commit named."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from taskqueue import TaskQueue
from taskqueue.schema import MIN_COMPATIBLE, SCHEMA_VERSION
from taskqueue.testing import wait_for
from taskqueue.testing.ledger import Ledger, check_ledger
from tests import tasks_release_mix  # noqa: F401 - registers ledger.* and mix.gate for enqueue

ROOT = Path(__file__).resolve().parent.parent
#: The oldest commit whose taskqueue/schema.py says SCHEMA_VERSION = 2 (the current schema): the
#: tombstone cancel raised it, and schema.py has not changed since, so this is the earliest
#: release a rolling deploy onto the current tree replaces with no schema change ("N").
SAME_SCHEMA = "ef768896809de6f2e2057956e8064dc00334940b"
#: The newest commit whose schema.py says SCHEMA_VERSION = 1 (the parent of SAME_SCHEMA). Both
#: schema versions declare MIN_COMPATIBLE = 1, so history holds no incompatible pair: this
#: release must run beside the current one, and its own schema_check is the code that refuses it
#: once a record rules schema 1 out.
SCHEMA_1 = "6046caaa84deeb410e71d7eacd2852b139e09424"
TASKS = "tests.tasks_release_mix"
#: The same module, copied to the top of an exported tree (the old release cannot see tests/).
OLD_TASKS = "tasks_release_mix"
FLAGS = ("-w", "1", "--max-concurrent-tasks", "4")


def export(commit: str, tmp_path: Path, schema: int) -> Path:
    """``git archive <commit> taskqueue | tar -x`` into a directory of its own, plus the tasks
    module; check that a process started as ``release_env`` imports that tree."""
    found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT,
                           capture_output=True)  # fmt: skip
    if found.returncode != 0:
        pytest.skip(f"commit {commit} is not in this clone: tests/test_release_mix.py runs "
                    "earlier releases from the history and needs a full clone "
                    "(git fetch --unshallow)")  # fmt: skip
    tree = tmp_path / f"release-{commit[:7]}"
    tree.mkdir()
    archive = subprocess.Popen(["git", "archive", commit, "taskqueue"], cwd=ROOT,
                               stdout=subprocess.PIPE)  # fmt: skip
    untar = subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout)
    archive.stdout.close()
    assert archive.wait() == 0 and untar.returncode == 0, f"git archive {commit} failed"
    shutil.copy(ROOT / "tests" / "tasks_release_mix.py", tree / f"{OLD_TASKS}.py")
    probe = "import taskqueue.schema as s; print(s.__file__, s.SCHEMA_VERSION)"
    env = {**os.environ, **release_env(tree)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.split() == [str(tree / "taskqueue" / "schema.py"), str(schema)], out
    return tree


def release_env(tree: Path, ledger: Ledger | None = None) -> dict[str, str]:
    """Run the release in ``tree``: first on the path, and the current directory (the masters
    fixture starts in the repository root) never prepended to it."""
    return {"PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1", **(ledger.env() if ledger else {})}


def stored(tq: TaskQueue) -> tuple[int, int, str]:
    v, m, by = tq.redis.hmget(tq.keys.schema, "version", "min_compatible", "by")
    return int(v), int(m), by.decode()


def runs_by(ledger: Ledger, ids: list[str], prefix: str) -> int:
    """Runs of ``ids`` started by workers whose id starts with ``prefix``."""
    runs = ledger.runs()
    return sum(r.worker.startswith(prefix) for i in ids for r in runs.get(i, []))


@pytest.mark.slow
def test_an_older_release_of_the_same_schema_hands_over_mid_run(redis_url, tq, masters, ledger,
                                                                 tmp_path):  # fmt: skip
    tree = export(SAME_SCHEMA, tmp_path, schema=SCHEMA_VERSION)
    old = masters(redis_url, *FLAGS, "--worker-prefix", "old", env=release_env(tree, ledger),
                  imports=OLD_TASKS)  # fmt: skip
    old.wait_workers(1)
    record = stored(tq)
    assert record[:2] == (SCHEMA_VERSION, MIN_COMPATIBLE) and f":{old.pid} " in record[2]
    # Two runs the old release holds until the test opens the gate, after its TERM.
    gate = tmp_path / "gate"
    gates = [tq.enqueue_with("mix.gate", (str(gate), i), strict=False) for i in range(2)]
    wait_for(lambda: runs_by(ledger, gates, "old-") == 2, 20, "the old release to start the gates")
    new = masters(redis_url, *FLAGS, "--worker-prefix", "new", env=ledger.env(), imports=TASKS)
    new.wait_workers(1)
    ids = tq.enqueue_many([("ledger.asleep" if i % 2 else "ledger.sleep", (0.02, i))
                           for i in range(600)])  # fmt: skip
    wait_for(lambda: runs_by(ledger, ids, "old-") >= 20 and runs_by(ledger, ids, "new-") >= 20,
             30, "both releases to run jobs of the queue")  # fmt: skip
    waiting = tq.redis.llen(tq.keys.ready("default"))
    ledger.mark("SIGTERM to the old release's master (rolling deploy)", pid=old.pid)
    old.send(signal.SIGTERM)
    old.wait_log("graceful stop")
    gate.touch()
    assert old.wait(60) == 0
    assert [tq.result(i, timeout=60)["value"] for i in gates] == [0, 1]
    assert [tq.result(i, timeout=60)["value"] for i in ids] == list(range(600))
    assert new.stop() == 0
    report = check_ledger(tq.redis, [*gates, *ids], ledger, tq.keys)
    on_old, on_new = runs_by(ledger, ids, "old-"), runs_by(ledger, ids, "new-")
    print(f"\nsame schema, {SAME_SCHEMA[:7]} beside the tree: {len(ids) + 2} jobs, {report.runs} "
          f"runs (old release {on_old} + 2 gates held over its TERM, current {on_new}), "
          f"{waiting} waiting at the TERM, {len(report.excused)} duplicates")  # fmt: skip
    assert waiting > 0, "the TERM came mid-run: jobs were still waiting"
    assert report.runs == len(ids) + 2 and not report.excused
    assert report.places == {"succeeded": len(ids) + 2}


@pytest.mark.slow
def test_a_schema_1_release_runs_beside_schema_2_and_drops_its_tombstones_unrun(
    redis_url, tq, masters, ledger, tmp_path
) -> None:
    tree = export(SCHEMA_1, tmp_path, schema=1)
    new = masters(redis_url, *FLAGS, "--worker-prefix", "new", env=ledger.env(), imports=TASKS)
    new.wait_workers(1)
    record = stored(tq)
    assert record[:2] == (SCHEMA_VERSION, MIN_COMPATIBLE) and f":{new.pid} " in record[2]
    old = masters(redis_url, *FLAGS, "--worker-prefix", "old", env=release_env(tree, ledger),
                  imports=OLD_TASKS)  # fmt: skip
    old.wait_workers(1)  # its own schema_check let schema 1 join data of schema 2 (min 1)
    assert stored(tq) == record, "the schema 1 release does not lower the record"
    # Schema 2 cancels leave tombstones in the ready list; the schema 1 fetch must drop them unrun.
    tq.pause("default")
    ids = tq.enqueue_many([("ledger.sleep", (0.01, i)) for i in range(500)])
    cancelled = ids[::5]
    assert all(tq.cancel(i) for i in cancelled)
    assert int(tq.redis.hget(tq.keys.tombs, "default")) == len(cancelled)
    tq.resume("default")
    ran = [i for i in ids if i not in set(cancelled)]
    assert [tq.result(i, timeout=60)["value"] for i in ran] == [ids.index(i) for i in ran]
    assert old.stop() == 0
    # A schema 1 fetch pops tombstones without lowering the count (schema.py says so): what it
    # left is mended by the next schema 2 fetch that empties the queue.
    left = int(tq.redis.hget(tq.keys.tombs, "default") or 0)
    last = tq.enqueue_with("ledger.noop", (0,), strict=False)
    assert tq.result(last, timeout=30)["value"] == 0
    assert not tq.redis.hexists(tq.keys.tombs, "default")
    assert new.stop() == 0
    report = check_ledger(tq.redis, [*ids, last], ledger, tq.keys)
    on_old, on_new = runs_by(ledger, ids, "old-"), runs_by(ledger, ids, "new-")
    print(f"\nschema 1 ({SCHEMA_1[:7]}) beside schema 2: {len(ids) + 1} jobs, "
          f"{len(cancelled)} cancelled (tombstones), {report.runs} runs (schema 1 release {on_old}, "
          f"current {on_new}), tombstone count left by schema 1 fetches {left}, "
          f"{len(report.excused)} duplicates")  # fmt: skip
    assert on_old > 0 and on_new > 0, "both releases worked the queue"
    assert report.places == {"succeeded": len(ran) + 1, "cancelled": len(cancelled)}
    assert report.runs == len(ran) + 1 and not report.excused


def snapshot(tq: TaskQueue, queue: str, ids: list[str]) -> dict[str, object]:
    """The queue's lists and sets and every field of its jobs' records."""
    r, k = tq.redis, tq.keys
    return {
        "ready": r.lrange(k.ready(queue), 0, -1),
        "scheduled": r.zrange(k.scheduled(queue), 0, -1, withscores=True),
        "active": r.zrange(k.active(queue), 0, -1, withscores=True),
        "wake": r.llen(k.wake(queue)),
        "jobs": [r.hgetall(k.job(i)) for i in ids],
        "schema": r.hgetall(k.schema),
    }


@pytest.mark.slow
def test_the_schema_1_release_refuses_a_namespace_that_rules_it_out(redis_url, tq, masters,
                                                                    ledger, tmp_path):  # fmt: skip
    tree = export(SCHEMA_1, tmp_path, schema=1)
    new = masters(redis_url, *FLAGS, "--worker-prefix", "new", env=ledger.env(), imports=TASKS)
    new.wait_workers(1)
    # The one simulated step: no release in history rules schema 1 out (each declares
    # MIN_COMPATIBLE = 1), so the record's min_compatible is raised as a release of this schema
    # that drops schema 1 would raise it. The refusal itself is the schema 1 release's own code.
    tq.redis.hset(tq.keys.schema, "min_compatible", SCHEMA_VERSION)
    ids = tq.enqueue_many([("ledger.sleep", (0.02, i)) for i in range(100)])  # work meanwhile
    held = [tq.enqueue_with("ledger.noop", (i,), queue="held") for i in range(50)]
    before = snapshot(tq, "held", held)
    old = masters(redis_url, *FLAGS, "--queues", "held", env=release_env(tree, ledger),
                  imports=OLD_TASKS)  # fmt: skip
    assert old.wait(60) == 2
    lines = old.log().strip().splitlines()
    print(f"\nschema 1 ({SCHEMA_1[:7]}) refused: {lines}")
    assert len(lines) == 1 and "upgrade this host" in lines[0], lines
    assert f"data of schema {SCHEMA_VERSION}, which needs schema {SCHEMA_VERSION}" in lines[0]
    assert snapshot(tq, "held", held) == before, "the refused release touched a job"
    # The current release kept working through the refusal, and goes on.
    ids += tq.enqueue_many([("ledger.noop", (i,)) for i in range(100, 150)])
    assert [tq.result(i, timeout=30)["value"] for i in ids] == list(range(150))
    assert stored(tq)[:2] == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert new.stop() == 0
    report = check_ledger(tq.redis, ids, ledger, tq.keys)
    untouched = check_ledger(tq.redis, held, ledger, tq.keys, terminal=False)
    print(
        f"refusal: {len(held)} jobs of the refused release's queue, {untouched.runs} runs; "
        f"current release {len(ids)} jobs, {report.runs} runs, {len(report.excused)} duplicates"
    )
    assert untouched.runs == 0 and untouched.places == {"queued": len(held)}
    assert report.runs == len(ids) and not report.excused
