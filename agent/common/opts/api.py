"""Options of the REST API service (kiln-api)."""

from oslo_config import cfg

GROUP = "api"

OPTS = [
    cfg.HostAddressOpt("host_ip", default="0.0.0.0", help="Address kiln-api listens on."),
    cfg.PortOpt("port", default=6385, help="TCP port kiln-api listens on (Ironic's is 6385)."),
    cfg.IntOpt(
        "max_limit",
        default=1000,
        min=1,
        help="Most items one collection request returns; a larger limit= is cut to this.",
    ),
    cfg.StrOpt(
        "public_endpoint",
        help=(
            "Public URL of this API (e.g. https://bm.example.com:6385) used in links; unset: the URL the "
            "request came in on."
        ),
    ),
    cfg.IntOpt("api_workers", default=16, min=1, help="Threads serving requests in one kiln-api process."),
    cfg.IntOpt(
        "max_request_body_size",
        default=114688,
        min=1024,
        help="Largest request body (bytes) kiln-api reads; a larger one is answered 413 unread "
        "(oslo.middleware's default, 112 KiB).",
    ),
    cfg.IntOpt(
        "rpc_timeout",
        default=60,
        min=1,
        help="Seconds the API waits for a conductor to answer a call before answering 503.",
    ),
    cfg.BoolOpt(
        "metrics_enabled",
        default=True,
        help="Serve Prometheus metrics of the fleet (nodes, GPUs, heartbeat ages) and of the API's "
        "requests at /metrics.",
    ),
    cfg.BoolOpt(
        "metrics_auth",
        default=True,
        help="Serve /metrics only to administrators authenticated as [DEFAULT]auth_strategy says, as "
        "the API. False serves it to anyone who reaches kiln-api (a Prometheus without credentials; "
        "firewall the port instead).",
    ),
]
