"""Azurite, Microsoft's Azure Storage emulator (npm ``azurite``, installed by scripts/setup.sh into
``.tools/azurite``), as a process on a loopback port: the storage account of the fake workspace.

Only the Blob service is started, in memory, with telemetry off (Azurite collects telemetry unless told not
to) and on 127.0.0.1 only. The account is Azurite's well-known ``devstoreaccount1``.

It serves HTTPS with a self-signed certificate made for the run (:attr:`Azurite.ca`, which the test's clients
trust) and ``--oauth basic``: besides account keys and SAS tokens it then accepts bearer tokens, checking each
one's issuer, audience and lifetime and refusing a token for another audience as Azure Storage does (Azurite's
README, "OAuth Configuration"; "OAuth requires HTTPS endpoint").
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
        self.url = f"https://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="apr-azurite-"))
        self.log = self.workdir / "azurite.log"
        self.ca, key = self_signed_certificate(self.workdir)
        argv = [
            str(AZURITE_BLOB),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
            "--cert",
            str(self.ca),
            "--key",
            str(key),
            "--oauth",
            "basic",
        ]
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


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and the account's public blob host (the wire sends that host's requests to
    Azurite with their ``Host`` unchanged), and its key, as PEM files in ``folder``; the certificate is its own CA."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azurite.test")])
    now = datetime.datetime.now(datetime.UTC)
    names = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
        x509.DNSName("*.blob.core.windows.net"),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "azurite.pem", folder / "azurite-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
