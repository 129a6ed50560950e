"""The error a step raises: its message says what failed, on which device, and what to do."""

from __future__ import annotations

from typing import Any


class StepError(Exception):
    """A step failed for a reason the operator can act on (no traceback needed).

    ``details``: what the step found, reported as the failed result's ``result`` (e.g. the GPU
    gate's findings), so the conductor can act on it without parsing the message.
    """

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details = dict(details or {})
