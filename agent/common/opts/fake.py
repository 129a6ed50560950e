"""Options of the fake interfaces (Ironic's [fake] group): delays that make them behave like slow hardware."""

from oslo_config import cfg

GROUP = "fake"

OPTS = [
    cfg.FloatOpt(
        "power_delay",
        default=0.0,
        min=0.0,
        help="Seconds the fake power interface takes for each power change or reboot, as a slow BMC "
        "would; for tests and benchmarks of how many nodes a conductor drives at once.",
    ),
]
