"""The error a step raises: its message says what failed, on which device, and what to do."""

from __future__ import annotations


class StepError(Exception):
    """A step failed for a reason the operator can act on (no traceback needed)."""
