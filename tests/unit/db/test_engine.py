"""Tests of engine set-up: the default URL from the options and UTC timestamps."""

from __future__ import annotations

import datetime

import pytest

from agent.common import config, exception
from agent.db import api, engine, migration
from agent.db.models import UTCDateTime


def test_default_url_under_state_path(tmp_path):
    conf = config.register_opts()
    conf.set_override("state_path", str(tmp_path / "state"))
    try:
        assert engine.default_url() == f"sqlite:///{tmp_path}/state/kiln.sqlite"
        api.configure()
        migration.upgrade()
        assert (tmp_path / "state" / "kiln.sqlite").is_file()
        assert api.create_node({"driver": "fake-hardware"}).provision_state == "enroll"
    finally:
        api.dispose()
        conf.clear_override("state_path")


def test_invalid_url():
    with pytest.raises(exception.InvalidParameterValue, match="'::not a url'"):
        api.configure("::not a url")


def test_utc_datetime_conversion():
    kind = UTCDateTime()
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    stored = kind.process_bind_param(datetime.datetime(2030, 1, 1, 12, 0, tzinfo=plus2), None)
    assert stored == datetime.datetime(2030, 1, 1, 10, 0)
    assert stored.tzinfo is None
    assert kind.process_bind_param(datetime.datetime(2030, 1, 1, 12, 0), None) == datetime.datetime(
        2030, 1, 1, 12
    )
    read = kind.process_result_value(datetime.datetime(2030, 1, 1, 10, 0), None)
    assert read == datetime.datetime(2030, 1, 1, 10, 0, tzinfo=datetime.UTC)
    with pytest.raises(TypeError, match="'2030-01-01'"):
        kind.process_bind_param("2030-01-01", None)
