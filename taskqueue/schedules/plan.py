"""What a scheduler does with one due schedule: a pure decision, tested without Redis.

Duties: given the schedule's spec, its stored next slot, Redis's ``now``, the misfire grace and
the schedule's misfire policy, list the ``Step``s to apply, in order. Each step is one call of
the ``schedule_fire`` script, which applies it only if the stored next slot still equals
``expect`` (so of several masters planning the same slot, exactly one step lands).

- Slots at most ``grace`` old are on time: each gets its own job, oldest first.
- Older slots were missed (every master was down, or the schedule could not fire):
  ``skip`` fires none of them; ``run_once`` fires one catch-up job, at the first missed slot,
  that stands for all of them (``missed`` says how many). The next slot is then the first one
  on time.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import Spec

MISFIRE_POLICIES = ("run_once", "skip")
#: Most missed slots counted one by one (a cron schedule down for a year is not iterated).
COUNT_CAP = 1000
#: Most on-time steps planned at once; the rest follow on the next pass.
MAX_STEPS = 100


@dataclass(frozen=True)
class Step:
    expect: int  # the stored next slot this step consumes (compare-and-set)
    fire: int | None  # the slot of the job to enqueue, or None (skipped)
    missed: int  # missed slots this step stands for (0 = an on-time slot)
    next: int  # the stored next slot after this step


def count_missed(spec: Spec, first: int, until: int) -> tuple[int, int]:
    """(number of slots in [first, until], capped at COUNT_CAP; the first slot after until)."""
    n, slot = 0, first
    while slot <= until and n < COUNT_CAP:
        n += 1
        slot = spec.next_after(slot)
    return n, slot if slot > until else spec.next_after(until)


def plan(spec: Spec, stored: int, now: int, grace_ms: int, misfire: str) -> list[Step]:
    """The steps that bring a schedule whose next slot is ``stored`` up to ``now``."""
    steps: list[Step] = []
    slot = stored
    late = now - grace_ms
    if slot <= late:
        missed, first_ok = count_missed(spec, slot, late)
        fire = slot if misfire == "run_once" else None
        steps.append(Step(slot, fire, missed, first_ok))
        slot = first_ok
    while slot <= now and len(steps) < MAX_STEPS:
        following = spec.next_after(slot)
        steps.append(Step(slot, slot, 0, following))
        slot = following
    return steps
