"""Options of the broker accounts kiln-broker and the conductors manage in RabbitMQ (rabbitmqctl)."""

from oslo_config import cfg

GROUP = "broker"

OPTS = [
    cfg.StrOpt(
        "agent_accounts",
        default="none",
        choices=[
            ("none", "agents use whatever transport URL the operator serves them (one shared account)"),
            ("shared", "one kiln-agent account whose permissions allow only what agents may do"),
            (
                "per_node",
                "an account per node (kiln-agent-<uuid>), made when the node boots the ramdisk "
                "and deleted at ramdisk clean-up, that reads only its own node's commands",
            ),
        ],
        help="Which RabbitMQ accounts the agents get. per_node: the conductor serves each node its own "
        "signed agent.conf at <[pxe]http_url>/<uuid>/agent.conf and puts it on the kernel command line.",
    ),
    cfg.ListOpt(
        "rabbitmqctl",
        default=["rabbitmqctl"],
        help="The rabbitmqctl command, as a list (e.g. sudo,rabbitmqctl,-n,rabbit@broker1): it needs the "
        "broker node's Erlang cookie.",
    ),
    cfg.StrOpt(
        "vhost",
        help="RabbitMQ virtual host of the accounts. Unset: the one of [DEFAULT]transport_url ('/' if none).",
    ),
    cfg.StrOpt(
        "agent_broker_url",
        help="How agents reach the broker, without credentials (e.g. rabbit://10.9.0.1:5671/kiln); the "
        "conductor adds each node's account to it in the agent.conf it serves. Required for per_node.",
    ),
    cfg.StrOpt(
        "agent_ssl_ca_file",
        help="Path, on the ramdisk, of the CA certificate the agent checks the broker's TLS certificate "
        "against. Set: the served agent.conf turns [oslo_messaging_rabbit]ssl on with it.",
    ),
    cfg.StrOpt(
        "config_signing_key_file",
        help="PEM file of the ed25519 key the conductor signs each served agent.conf with (kiln-broker "
        "keygen makes one); its public key goes on the kernel command line as kiln.config_key. "
        "Unset: the served agent.conf is not signed.",
    ),
    cfg.FloatOpt("rabbitmqctl_timeout", default=60.0, min=1.0, help="Seconds one rabbitmqctl call may take."),
]
