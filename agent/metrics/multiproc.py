"""prometheus_client's multiprocess mode for kiln-conductor and its forked heartbeat process.

No prometheus_client import here: the mode must be chosen before that module is first imported.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

#: The variable prometheus_client reads (once, at import) to write values to per-process files.
ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(directory: str | None) -> tuple[str, bool]:
    """Point prometheus_client at an empty directory for per-process files; return it and whether it was made.

    ``directory``: one to use (emptied first: files of an earlier run would be added in), or None
    for a new temporary one. Must run before prometheus_client is imported.
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess mode could be chosen")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            if name.endswith(".db"):
                os.unlink(os.path.join(directory, name))
        made = False
    else:
        directory, made = tempfile.mkdtemp(prefix="kiln-conductor-metrics-"), True
    os.environ[ENV] = directory
    return directory, made


def cleanup(directory: str, made: bool) -> None:
    """Remove the per-process files' directory if ``prepare`` made it."""
    if made:
        shutil.rmtree(directory, ignore_errors=True)
