"""kiln-setup's pure steps: option parsing, kiln.conf, database URLs and the rendered units."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.cmd import setup
from agent.install import host, units


def _settings(**kwargs) -> host.Settings:
    return host.Settings(
        database_url="postgresql+psycopg2://kiln:secret@db.example/kiln",
        transport_url="rabbit://kiln:secret@mq.example:5672/kiln",
        **kwargs,
    )


def test_parse_option() -> None:
    assert host.parse_option("DEFAULT.debug=true") == ("DEFAULT", "debug", "true")
    assert host.parse_option("conductor.metrics_port = 9608") == ("conductor", "metrics_port", "9608")
    for bad in ("debug=true", "DEFAULT.debug", ".x=1"):
        with pytest.raises(host.SetupError, match="SECTION.OPTION=VALUE"):
            host.parse_option(bad)


def test_config_holds_the_urls_auth_state_directories_and_extra_options() -> None:
    settings = _settings(
        api_port=7000, options=[("DEFAULT", "debug", "true"), ("conductor", "metrics_port", "9608")]
    )
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(host.render_config(settings))
    assert conf["database"]["connection"] == settings.database_url
    assert conf["DEFAULT"]["transport_url"] == settings.transport_url
    assert conf["DEFAULT"]["auth_strategy"] == "http_basic"
    assert conf["DEFAULT"]["http_basic_auth_user_file"] == "/etc/kiln/htpasswd"
    assert conf["DEFAULT"]["state_path"] == "/var/lib/kiln/conductor"
    assert conf["agent"]["state_dir"] == "/var/lib/kiln/agent"
    assert conf["api"]["port"] == "7000"
    assert conf["DEFAULT"]["debug"] == "true"
    assert conf["conductor"]["metrics_port"] == "9608"


def test_config_is_read_by_the_services_options(tmp_path: Path) -> None:
    """Every option kiln-setup writes is one the services know (a typo would be ignored silently)."""
    from oslo_config import cfg

    from agent.common import config

    path = tmp_path / "kiln.conf"
    path.write_text(host.render_config(_settings()))
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf([], default_config_files=[str(path)])
    assert conf.database.connection.startswith("postgresql+psycopg2://")
    assert conf.auth_strategy == "http_basic"
    assert conf.agent.state_dir == "/var/lib/kiln/agent"
    assert conf.state_path == "/var/lib/kiln/conductor"
    assert conf.api.port == 6385


@pytest.mark.parametrize(
    ("url", "dialect"),
    [("postgresql+psycopg2://u:p@h/db", "postgresql"), ("mysql+pymysql://u:p@h/db", "mysql")],
)
def test_database_urls_accepted(url: str, dialect: str) -> None:
    assert host.check_database_url(url) == dialect


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("sqlite:////var/lib/kiln/kiln.sqlite", "PostgreSQL"),
        ("postgresql://u:p@h/db", "use postgresql\\+psycopg2"),
        ("mysql+mysqldb://u:p@h/db", "use mysql\\+pymysql"),
        ("not a url", "not a database URL"),
    ],
)
def test_database_urls_refused(url: str, error: str) -> None:
    with pytest.raises(host.SetupError, match=error):
        host.check_database_url(url)


def test_transport_url_must_be_rabbit() -> None:
    host.check_transport_url("rabbit://u:p@h:5672/v")
    with pytest.raises(host.SetupError, match="rabbit://"):
        host.check_transport_url("kafka://h:9092")


def test_units_point_at_the_environment(tmp_path: Path) -> None:
    written = units.install_units(Path("/opt/kiln/bin"), Path("/etc/kiln/kiln.conf"), tmp_path)
    assert [p.name for p in written] == [f"{name}.service" for name in units.SERVICES]
    for path in written:
        text = path.read_text()
        assert f"ExecStart=/opt/kiln/bin/{path.stem} --config-file /etc/kiln/kiln.conf\n" in text
        assert "/usr/local/bin" not in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_verify_refuses_a_unit_it_complains_about(tmp_path: Path) -> None:
    good = units.install_units(Path("/bin"), Path("/etc/kiln/kiln.conf"), tmp_path)
    for path in good:  # /bin/kiln-* does not exist: point them at a binary that does
        path.write_text(path.read_text().replace(f"/bin/{path.stem}", "/bin/true"))
    units.verify(good)
    good[0].write_text(good[0].read_text().replace("Restart=", "Restartt="))
    with pytest.raises(host.SetupError, match="Restartt"):
        units.verify(good)


def test_setup_refuses_without_root_or_with_bad_arguments(capsys) -> None:
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        assert setup.main(["--database-url", "mysql+pymysql://u@h/d", "--transport-url", "rabbit://h"]) == 1
        assert "run kiln-setup as root" in capsys.readouterr().err
    assert setup.main(["--database-url", "x", "--transport-url", "rabbit://h", "--set", "oops"]) == 1
    assert "SECTION.OPTION=VALUE" in capsys.readouterr().err
