"""Names of the three standard queues, in priority order."""

HIGH_PRIORITY = "high_priority"
DEFAULT = "default"
LOW_PRIORITY = "low_priority"

#: The queues a worker serves when none are given, highest priority first.
ALL = (HIGH_PRIORITY, DEFAULT, LOW_PRIORITY)
