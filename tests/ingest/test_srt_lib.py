"""server/ingest/srt_lib.py against the installed libsrt: the library loads (or the error
names the package), the option ids we declared are the ones libsrt 1.5 means, and the
sockaddr helpers round-trip."""

from __future__ import annotations

import pytest

from server.errors import SrtError, SrtUnavailable
from server.ingest import srt_lib
from tests.ingest.srt_support import library


def test_the_installed_library_is_srt_1_5() -> None:
    lib = library()
    assert lib.version.startswith("1.5.")
    assert "srt" in lib.path


def test_a_missing_library_names_the_debian_packages() -> None:
    with pytest.raises(SrtUnavailable) as caught:
        srt_lib.open_library(("libsrt-nonexistent.so.9",), find=lambda _name: None)
    assert caught.value.code == "srt.unavailable"
    assert "libsrt1.5-openssl" in caught.value.message
    assert "libsrt1.5-gnutls" in caught.value.message
    assert "srt-tools" in caught.value.message
    assert "libsrt-nonexistent.so.9" in caught.value.message


def test_option_ids_mean_what_we_declared() -> None:
    lib = library()
    lib.startup()
    try:
        sock = lib.create_socket()
        try:
            lib.set_str(sock, srt_lib.SRTO_STREAMID, "#!::r=in,k=K")
            assert lib.get_str(sock, srt_lib.SRTO_STREAMID) == "#!::r=in,k=K"
            lib.set_int(sock, srt_lib.SRTO_LATENCY, 345)
            assert lib.get_int(sock, srt_lib.SRTO_LATENCY) == 345
            lib.set_int(sock, srt_lib.SRTO_RCVSYN, 0)
            assert lib.get_int(sock, srt_lib.SRTO_RCVSYN) == 0
            lib.set_int(sock, srt_lib.SRTO_TRANSTYPE, srt_lib.SRTT_LIVE)  # write-only
            assert lib.get_int(sock, srt_lib.SRTO_PEERIDLETIMEO) == 5000  # the defaults tell the ids apart
            assert lib.get_int(sock, srt_lib.SRTO_IPV6ONLY) == -1
            assert lib.get_int(sock, srt_lib.SRTO_ENFORCEDENCRYPTION) == 1
            assert lib.get_int(sock, srt_lib.SRTO_PAYLOADSIZE) == 1316  # live mode's default: 7 TS packets
            lib.set_int(sock, srt_lib.SRTO_PBKEYLEN, 32)
            assert lib.get_int(sock, srt_lib.SRTO_PBKEYLEN) == 32
            with pytest.raises(SrtError, match="srt_setsockflag"):
                lib.set_str(sock, srt_lib.SRTO_PASSPHRASE, "short")  # 10..79 characters only
            lib.set_str(sock, srt_lib.SRTO_PASSPHRASE, "long-enough-passphrase")
            assert lib.state(sock) == 1  # SRTS_INIT
        finally:
            lib.close(sock)
    finally:
        lib.cleanup()


def test_sockaddr_round_trips() -> None:
    v4 = srt_lib.sockaddr("127.0.0.1", 9000)
    assert len(v4) == 16
    assert srt_lib.format_sockaddr(v4) == "127.0.0.1:9000"
    v6 = srt_lib.sockaddr("::1", 9001)
    assert len(v6) == 28
    assert srt_lib.format_sockaddr(v6) == "[::1]:9001"
    assert srt_lib.format_sockaddr(srt_lib.sockaddr("::ffff:10.0.0.7", 5)) == "10.0.0.7:5"
    assert srt_lib.format_sockaddr(b"\x00" * 16) == "?"
    assert srt_lib.format_sockaddr(b"") == "?"
