"""The fleet page as a person sees it: headless Chromium against a real kiln-api holding the demo fleet.

kiln-demo enrolls its fixture nodes, with their inventories, into a throwaway PostgreSQL database
(its conductor and agents discover them as they would real machines); the test gives two of them an
owner, GPU-quarantines one and signs turnover records for another; then a kiln-api process with
HTTP Basic authentication serves that database, and Chromium loads the page. Screenshots are kept
under $KILN_ARTIFACTS (else the test's temporary directory).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import bcrypt
import pytest
from oslo_config import cfg

from agent.common import config
from agent.conductor import gpu_acceptance, turnover
from agent.db import api as db_api
from tests.functional import procs

CONF = cfg.CONF
CHROMIUM = shutil.which("chromium")
USER, PASSWORD = "operator", "fleet-page-pw"
DEMO_NODES = ["gpu-node-01", "kiln-vm-01", "mi300x-node-01", "stor-01"]
RESULTS = {"erase_devices_metadata": {"disks": {"/dev/sda": {"removed": ["gpt", "xfs"]}}}}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


class _Tables(HTMLParser):
    """The text of each row of each table with an id: {table id: [[cell text, ...], ...]}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            if self._table:
                self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(dom: str) -> dict[str, list[list[str]]]:
    """The tables of a dumped DOM, by id, each a list of rows of cell texts (header row first)."""
    parser = _Tables()
    parser.feed(dom)
    return parser.tables


class Browser:
    """Headless Chromium with a profile of its own under ``home`` (nothing left in the real home)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir()
        self.env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(home / "cache"),
        }

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={self.home}/profile",
        ]
        return subprocess.run([*cmd, *args], env=self.env, capture_output=True, text=True, timeout=120)

    def dom(self, url: str) -> str:
        """The DOM of the page at ``url`` after Chromium loaded it."""
        done = self._run("--dump-dom", url)
        assert done.returncode == 0, (
            f"chromium --dump-dom {url} exited {done.returncode}: {done.stderr[-1500:]}"
        )
        return done.stdout

    def screenshot(self, url: str, path: Path, size: str = "1400,900") -> None:
        """A PNG of the page at ``url`` in a window of ``size``."""
        done = self._run(f"--screenshot={path}", f"--window-size={size}", url)
        assert done.returncode == 0 and path.exists(), f"chromium --screenshot {url}: {done.stderr[-1500:]}"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG; AssertionError when the file is not one."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _demo_fleet(url: str, tmp: Path) -> None:
    """kiln-demo's fixture nodes enrolled into ``url`` with their inventories, kept there."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cmd.demo",
            "--no-host",
            "--database-url",
            url,
            "--keep",
            "--no-gate",  # the test sets quarantine and turnover records itself
            "--timeout",
            "90",
        ],
        cwd=procs.REPO,
        env={**os.environ, "PYTHONPATH": str(procs.REPO), "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, (
        f"kiln-demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-2000:]}"
    )
    assert "4 of 4 nodes reported" in done.stdout, done.stdout


def _operator_changes(tmp: Path) -> None:
    """Owners on two nodes, a GPU quarantine on one, two signed turnover records (one altered) on another."""
    db_api.update_node("gpu-node-01", {"owner": "team-llm"})
    db_api.update_node(
        "mi300x-node-01",
        {
            "owner": "team-hpc",
            "maintenance": True,
            "maintenance_reason": "GPU acceptance gate failed: GPU 0000:83:00.0 missing",
        },
    )
    db_api.add_node_trait("mi300x-node-01", gpu_acceptance.TRAIT_QUARANTINE)
    CONF.set_override("signing_key_file", str(tmp / "turnover-ed25519.pem"), group="turnover")
    try:
        node = db_api.get_node("stor-01")
        turnover.record_cleaning(node, RESULTS, False, "cleaned")
        forged = turnover.record_cleaning(node, RESULTS, True, "cleaned")
    finally:
        CONF.clear_override("signing_key_file", group="turnover")
    from sqlalchemy import update

    from agent.db import engine as db_engine
    from agent.db.models import TurnoverRecord

    with db_engine.session(write=True) as sess:
        row = sess.query(TurnoverRecord).filter_by(uuid=forged).one()
        text = row.record.replace(
            '"before":{"lessee":null,"owner":null}', '"before":{"lessee":null,"owner":"x"}'
        )
        assert text != row.record
        sess.execute(update(TurnoverRecord).where(TurnoverRecord.uuid == forged).values(record=text))


@pytest.fixture(scope="module")
def served_fleet(tmp_path_factory):
    """A kiln-api process (HTTP Basic) serving the demo fleet; yields its base URL with credentials."""
    tmp = tmp_path_factory.mktemp("fleet-page")
    config.register_opts(CONF)
    with procs.throwaway_postgres() as url:
        _demo_fleet(url, tmp)
        db_api.configure(url)
        try:
            _operator_changes(tmp)
        finally:
            db_api.dispose()
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        (tmp / "htpasswd").write_text(f"{USER}:{hashed}\n")
        port = procs.free_port()
        conf = procs.write_conf(
            tmp / "kiln.conf",
            {
                "DEFAULT": {
                    "auth_strategy": "http_basic",
                    "http_basic_auth_user_file": tmp / "htpasswd",
                    "transport_url": "kombu+memory:////",
                    "state_path": tmp,
                },
                "database": {"connection": url},
                "api": {"host_ip": "127.0.0.1", "port": port},
                "turnover": {"public_key_file": tmp / "turnover-ed25519.pem.pub"},
            },
        )
        api = procs.start("agent.cmd.api", conf, tmp / "api.log")
        try:
            procs.wait_for(lambda: procs.http_answers(f"http://127.0.0.1:{port}/"), 60, "kiln-api", (api,))
            yield f"http://127.0.0.1:{port}", f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"
        finally:
            procs.stop(api, 15)


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium with its profile in this test's temporary directory."""
    return Browser(tmp_path / "chromium")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    """Where screenshots are kept: $KILN_ARTIFACTS when set, else a temporary directory."""
    where = os.environ.get("KILN_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_a_person_sees_the_fleet_and_narrows_it(served_fleet, browser, artifacts):
    plain, authed = served_fleet
    # Behind the API's authentication: without credentials the browser gets no page.
    assert not any(name in browser.dom(f"{plain}/fleet") for name in DEMO_NODES)
    rows = tables(browser.dom(f"{authed}/fleet"))["fleet"]
    header, body = rows[0], rows[1:]
    assert header[:5] == ["Node", "Provision state", "Power", "Owner", "GPUs"]
    seen = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    assert sorted(seen) == DEMO_NODES
    assert seen["gpu-node-01"]["GPUs"] == "H100 SXM5 80GB x 8"
    assert seen["gpu-node-01"]["GPU NUMA"] == "4+4" and "1 degraded" in seen["gpu-node-01"]["GPU links"]
    assert seen["gpu-node-01"]["Owner"] == "team-llm"
    assert seen["mi300x-node-01"]["GPUs"] == "Instinct MI300X 192GB x 8"
    assert "GPU quarantine" in seen["mi300x-node-01"]["Health"]
    assert seen["stor-01"]["GPUs"] == "-" and seen["stor-01"]["Provision state"] == "enroll"
    # The filters as the form submits them narrow the table.
    narrowed = tables(
        browser.dom(f"{authed}/fleet?state=&sku=H100_SXM5_80GB&owner=&quarantine=&maintenance=")
    )
    assert [r[0] for r in narrowed["fleet"][1:]] == ["gpu-node-01"]
    quarantined = tables(browser.dom(f"{authed}/fleet?quarantine=yes"))["fleet"][1:]
    assert [r[0] for r in quarantined] == ["mi300x-node-01"]
    owned = tables(browser.dom(f"{authed}/fleet?owner=team-hpc&quarantine=no"))["fleet"][1:]
    assert owned == [["No node matches these filters."]]
    shot = artifacts / "fleet-page.png"
    browser.screenshot(f"{authed}/fleet", shot)
    assert png_size(shot) == (1400, 900)
    assert shot.stat().st_size > 20_000, f"{shot} is {shot.stat().st_size} bytes: a blank page?"


def test_a_person_sees_one_node_its_gpus_and_turnover(served_fleet, browser, artifacts):
    _, authed = served_fleet
    page = tables(browser.dom(f"{authed}/fleet/nodes/gpu-node-01"))
    gpus = page["gpus"]
    assert len(gpus) == 9 and gpus[0][:7] == [
        "PCI address",
        "Model",
        "SKU",
        "Memory",
        "NUMA node",
        "PCIe switch",
        "PCIe link",
    ]
    by_address = {row[0]: row for row in gpus[1:]}
    assert by_address["0000:18:00.0"][1:7] == [
        "H100 SXM5 80GB",
        "H100_SXM5_80GB",
        "80 GB",
        "0",
        "0000:16:00.0",
        "x16 @ 32.0 GT/s",
    ]
    assert by_address["0000:ba:00.0"][4] == "1"
    assert by_address["0000:ba:00.0"][6] == "x8 @ 32.0 GT/s (max x16 @ 32.0 GT/s) degraded"
    assert len(page["nics"]) == 10 and len(page["disks"]) == 11
    assert page["history"][1][1] == "Inventory reported"
    stor = browser.dom(f"{authed}/fleet/nodes/stor-01")
    records = tables(stor)["turnover"][1:]
    assert len(records) == 2
    assert records[0][-1] == "signature verifies"
    assert records[1][-1].startswith("does NOT verify: the signature does not match the record text")
    assert "/dev/sda (metadata)" in records[0][5]
    quarantined = browser.dom(f"{authed}/fleet/nodes/mi300x-node-01")
    assert "GPU acceptance gate failed: GPU 0000:83:00.0 missing" in quarantined
    missing = browser.dom(f"{authed}/fleet/nodes/no-such-node")
    assert "Node no-such-node could not be found" in missing
    shot = artifacts / "fleet-node-page.png"
    browser.screenshot(f"{authed}/fleet/nodes/gpu-node-01", shot, "1400,1600")
    assert png_size(shot) == (1400, 1600) and shot.stat().st_size > 40_000
