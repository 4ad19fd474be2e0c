"""Azurite, Microsoft's Azure Storage emulator (npm ``azurite``, installed by scripts/setup.sh into
``.tools/azurite``), as a process on a loopback port: the storage account of the fake workspace.

Only the Blob service is started, in memory, with telemetry off (Azurite collects telemetry unless told not
to) and on 127.0.0.1 only. The account is Azurite's well-known ``devstoreaccount1``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.system.stack import free_port
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
AZURITE_BLOB = REPO / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite-blob"


class AzuriteNotInstalled(RuntimeError):
    """``scripts/setup.sh`` installs Azurite; this says so."""


class Azurite:
    """A running Azurite Blob service; ``url`` is its base (``http://127.0.0.1:<port>``)."""

    def __init__(self) -> None:
        if not AZURITE_BLOB.exists():
            raise AzuriteNotInstalled(f"Azurite is not installed at {AZURITE_BLOB}: run scripts/setup.sh")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="apr-azurite-"))
        self.log = self.workdir / "azurite.log"
        argv = [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
                "--disableTelemetry", "--skipApiVersionCheck", "--silent"]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True
            )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 60.0) -> None:
        def listening() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"Azurite exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        try:
            wait_until(listening, timeout=timeout, what=f"Azurite to listen on {self.url}", interval=0.1)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
