"""The autoscaler: a pure decision core (``decide``) the master feeds with metric samples.

    from taskqueue.autoscaler import Policy, Sample, State, decide

``decide(sample, state, policy)`` returns a ``Decision`` (up n, down n or hold, with reasons)
and the next ``State``; it never touches Redis or processes. ``reader.py`` is the I/O side:
it turns what Redis holds into a ``Sample``, and ``get_scaling_recommendations(tq)`` gives
plain-language advice from the current metrics.
"""

from .adaptive import Adjustment, Window
from .decide import Decision, State, decide
from .policy import SLA, Policy, Thresholds
from .reader import get_scaling_recommendations
from .sample import Sample, Signals

__all__ = [
    "SLA",
    "Adjustment",
    "Decision",
    "Policy",
    "Sample",
    "Signals",
    "State",
    "Thresholds",
    "Window",
    "decide",
    "get_scaling_recommendations",
]
