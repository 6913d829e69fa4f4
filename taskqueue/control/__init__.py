"""Client side of the control plane: find supervisors in Redis, send them commands, read state."""

from .client import ControlClient, ControlError, NoSuchMaster, ReplyTimeout

__all__ = ["ControlClient", "ControlError", "NoSuchMaster", "ReplyTimeout"]
