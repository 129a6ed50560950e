"""The upgrade tests reuse the conductor-and-agent cluster of test_conductor_rabbit."""

from tests.functional.test_conductor_rabbit import cluster, transport  # noqa: F401 - fixtures
