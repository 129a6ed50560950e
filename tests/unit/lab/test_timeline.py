"""Reading a deploy's phases from the lab's logs: the conductor's lines per node, from a given time on."""

from __future__ import annotations

import datetime as dt

from agent.lab import timeline

NODE = "27317312-7526-442f-b81f-de8ff50ded6a"
OTHER = "206bf0c4-aa09-47f3-bf47-b4606d4ec36c"
LOG = f"""\
2026-12-05 07:25:52.293 30702 INFO agent.conductor.task_manager [-] Issued the agent token of node {NODE}
2026-12-05 07:27:10.001 30702 INFO agent.conductor.deployments Node {OTHER}: deploy step prepare_instance_boot
2026-12-05 07:30:20.065 30702 INFO agent.conductor.task_manager [-] Issued the agent token of node {NODE}
2026-12-05 07:30:41.500 30702 INFO agent.conductor.deployments Node {NODE}: deploy step prepare_instance_boot
  a continuation line without a time, naming {NODE} and prepare_instance_boot
"""


def _at(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def test_lookup_and_step_times_per_node_after_a_time(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "kiln-conductor.log").write_text(LOG)
    assert timeline.lookup_time(tmp_path, NODE) == _at("2026-12-05 07:25:52.293")
    later = _at("2026-12-05 07:29:00.000")
    assert timeline.lookup_time(tmp_path, NODE, later) == _at("2026-12-05 07:30:20.065")
    assert timeline.lookup_time(tmp_path, OTHER) is None
    step = "deploy step prepare_instance_boot"
    assert timeline.conductor_time(tmp_path, NODE, step) == _at("2026-12-05 07:30:41.500")
    assert timeline.conductor_time(tmp_path, OTHER, step) == _at("2026-12-05 07:27:10.001")
    assert timeline.conductor_time(tmp_path, OTHER, step, later) is None


def test_missing_log_means_not_seen(tmp_path):
    assert timeline.lookup_time(tmp_path, NODE) is None
    assert timeline.conductor_time(tmp_path, NODE, "anything") is None
