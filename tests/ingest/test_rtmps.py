"""RTMPS: the same listener over TLS when a certificate is configured, and a clear refusal to
start with an unreadable one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from server.errors import ForumcastError
from server.http.keys import INGEST, STREAM_KEYS
from server.ingest.rtmp_server import tls_context
from tests.conftest import Serve
from tests.ingest.rtmp_publishers import FfmpegPublisher
from tests.ingest.test_rtmp_server import wait_up
from tests.support.redis_server import free_port


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 made by the openssl command (Debian's openssl)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.fail("the RTMPS test needs the openssl command (Debian package openssl)")
    return cert, key


async def test_an_encoder_publishes_over_rtmps(serve: Serve, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    client = await serve(rtmp_port=0, rtmps_port=port, tls_cert=str(cert), tls_key=str(key))
    assert [s.protocol for s in client.app[INGEST]] == ["rtmps"]
    keys = client.app[STREAM_KEYS]
    url = f"rtmps://127.0.0.1:{port}/live/main-cam?key={keys.key('main-cam')}"
    # ffmpeg verifies the server's certificate against the one it is given.
    publisher = FfmpegPublisher(url, seconds=30, output_options=("-ca_file", str(cert)))
    try:
        found = await wait_up(client, "main-cam")
        assert found["publisher"]["kind"] == "rtmps"
        assert [t["kind"] for t in found["tracks"]] == ["video", "audio"]
    finally:
        publisher.stop()


def test_an_unreadable_certificate_is_named(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    with pytest.raises(ForumcastError) as info:
        tls_context(str(tmp_path / "cert.pem"), str(tmp_path / "missing.pem"))
    assert info.value.code == "ingest.bad_certificate" and "cert.pem" in info.value.message
