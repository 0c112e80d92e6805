"""A self-signed certificate for 127.0.0.1, made with the ``openssl`` CLI, for local HTTPS fakes.

The ``cryptography`` package is not installed in the project's virtualenv, and ``openssl`` is wherever Python's
``ssl`` module is built; the tests that need the certificate are skipped on a machine without the CLI.
The certificate is its own CA: ``cert`` is also the bundle a client's ``ca_file`` names to trust it.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class SelfSigned:
    """A certificate and its key, in PEM files."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """What an aiohttp ``TCPSite(ssl_context=…)`` serves HTTPS with."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed(directory: Path) -> SelfSigned:
    """A fresh certificate for ``IP:127.0.0.1`` (valid two days) in ``directory``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI") == "true":  # .ci/run installs it: a skip there would hide the ca_file tests
            pytest.fail("CI=true but the openssl CLI is not installed: .ci/run must apt-get install openssl")
        pytest.skip("the openssl CLI is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(  # noqa: S603 - a fixed argv
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return SelfSigned(cert, key)
