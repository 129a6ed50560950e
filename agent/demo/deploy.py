"""kiln-demo --deploy: deploy one simulated node with the direct deploy interface, when it exists."""

from __future__ import annotations

from typing import Any

NOT_AVAILABLE = (
    "kiln-demo --deploy: not available yet: the direct deploy (issue 5) is not in this kiln; "
    "discovery above ran in full"
)


def available() -> bool:
    """Say whether the direct deploy interface can be loaded."""
    try:
        from agent.conductor.drivers import direct  # noqa: F401
    except ImportError:
        return False
    return True


def run(demo: Any) -> bool:
    """Deploy one of the demo's simulated nodes; say whether it went through."""
    if not available():
        demo.say(NOT_AVAILABLE)
        return True
    demo.say(NOT_AVAILABLE.replace("is not in this kiln", "is not wired into kiln-demo yet"))
    return True
