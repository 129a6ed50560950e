"""kiln-broker: make Kiln's RabbitMQ accounts (rabbitmqctl), sign agent configs, make the signing key."""

from __future__ import annotations

import os
import secrets
import sys

from oslo_config import cfg

from agent.common import config

CONF = cfg.CONF


def _add_commands(subparsers) -> None:
    setup = subparsers.add_parser(
        "setup",
        help="Create the vhost and the kiln-conductor and kiln-api accounts (and kiln-agent with "
        "[broker]agent_accounts = shared); write each one's transport URL to <out-dir>/<user>.conf (0600).",
    )
    setup.add_argument(
        "--broker-url", required=True, help="Broker URL without credentials, e.g. rabbit://10.0.0.1:5671/kiln"
    )
    setup.add_argument("--out-dir", required=True, help="Directory for the <user>.conf files (made 0700).")
    grant = subparsers.add_parser(
        "grant-node", help="Make one node's agent account and print its agent.conf."
    )
    grant.add_argument("node_uuid")
    revoke = subparsers.add_parser("revoke-node", help="Delete one node's agent account.")
    revoke.add_argument("node_uuid")
    keygen = subparsers.add_parser(
        "keygen", help="Write a new ed25519 config signing key (and .pub beside it)."
    )
    keygen.add_argument("path")
    sign = subparsers.add_parser("sign-config", help="Sign an agent config file for kiln.config_url.")
    sign.add_argument("source")
    sign.add_argument("target")
    subparsers.add_parser("list", help="List the broker's Kiln accounts.")


CLI_OPTS = [cfg.SubCommandOpt("command", title="Commands", handler=_add_commands)]


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _setup(broker_url: str, out_dir: str) -> None:
    from agent.conductor import broker_accounts as ba

    ctl = ba.Rabbitmqctl()
    ctl.ensure_vhost()
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    accounts = [(ba.CONDUCTOR_USER, ba.conductor_permissions()), (ba.API_USER, ba.api_permissions())]
    if CONF.broker.agent_accounts == "shared":
        accounts.append((ba.AGENT_USER, ba.agent_permissions(None)))
    for user, perms in accounts:
        password = secrets.token_urlsafe(24)
        ctl.put_user(user, password, perms)
        path = os.path.join(out_dir, f"{user}.conf")
        url = ba.with_credentials(broker_url, user, password)
        if user == ba.AGENT_USER:
            _write_private(path, ba.agent_config(url))
        else:
            _write_private(path, f"[DEFAULT]\ntransport_url = {url}\n")
        print(f"{user}: account made on vhost {ctl.vhost}; transport URL in {path}")


def run() -> int:
    """Run the parsed command; return the exit status."""
    from agent.common import config_signing
    from agent.conductor import broker_accounts as ba

    name = CONF.command.name
    if name == "setup":
        _setup(CONF.command.broker_url, CONF.command.out_dir)
    elif name == "grant-node":
        path = ba.grant_agent_access(CONF.command.node_uuid)
        print(f"{ba.agent_user(CONF.command.node_uuid)}: account made; agent.conf at {path}")
    elif name == "revoke-node":
        ba.revoke_agent_access(CONF.command.node_uuid)
        print(f"{ba.agent_user(CONF.command.node_uuid)}: account deleted")
    elif name == "keygen":
        key = config_signing.generate_key()
        config_signing.write_private_key(CONF.command.path, key)
        print(f"kiln.config_key={config_signing.public_b64(key.public_key())}")
    elif name == "sign-config":
        key = config_signing.load_private_key(CONF.broker.config_signing_key_file or "")
        with open(CONF.command.source, "rb") as f:
            signed = config_signing.sign_config(f.read(), key)
        _write_private(CONF.command.target, signed.decode("utf-8"))
    elif name == "list":
        for user in sorted(u for u in ba.Rabbitmqctl().users() if u.startswith("kiln-")):
            print(user)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of kiln-broker; 0 on success, 1 when the broker or a file refused, 2 on bad arguments."""
    from agent.common import exception
    from agent.common.config_signing import ConfigSignatureError

    try:
        CONF.register_cli_opts(CLI_OPTS)
    except cfg.ArgsAlreadyParsedError:
        pass
    try:
        config.parse_args(argv if argv is not None else sys.argv[1:])
    except (cfg.Error, ValueError) as exc:
        print(f"kiln-broker: {exc}", file=sys.stderr)
        return 2
    try:
        return run()
    except (exception.KilnException, ConfigSignatureError, OSError) as exc:
        print(f"kiln-broker {CONF.command.name}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
