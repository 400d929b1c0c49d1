"""Configuration layers and validation (server/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Config, load_config
from server.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "forumcast.toml"
    path.write_text(text)
    return path


def test_defaults_without_any_layer() -> None:
    config = load_config(env={})
    assert config == Config()
    assert (config.port, config.redis_url, config.log_format) == (8080, "", "text")


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 9000\nhost = "127.0.0.1"\nlog_format = "json"\nupcoming_minutes = 5\n')
    env = {"FORUMCAST_PORT": "9100", "FORUMCAST_REAL_DATES": "yes"}
    config = load_config(path, env=env, overrides={"port": 9200, "host": None})
    assert config.port == 9200  # flag beats environment beats file
    assert config.host == "127.0.0.1"  # an absent flag (None) does not mask the file
    assert config.real_dates is True  # from the environment
    assert (config.log_format, config.upcoming_minutes) == ("json", 5)
    assert load_config(path, env=env).port == 9100


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "port = 9300\n")
    assert load_config(env={"FORUMCAST_CONFIG": str(path)}).port == 9300


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("prot = 1\n", {}, "unknown key 'prot'"),
        ('port = "eighty"\n', {}, "'port' in"),
        ("port = 70000\n", {}, "between 1 and 65535"),
        ("workers = 0\n", {}, "'workers' in"),
        ("real_dates = 3\n", {}, "must be true or false"),
        ('log_format = "xml"\n', {}, "must be one of text, json"),
        ("shutdown_timeout = -1\n", {}, "must be positive"),
        ("port = [\n", {}, "is not valid TOML"),
        ("stall_after = 0\n", {}, "must be positive"),
        ("failback_after = -2\n", {}, "must be positive"),
        ('slate_size = "1280"\n', {}, "must be WIDTHxHEIGHT"),
        ('slate_size = "1281x720"\n', {}, "must be WIDTHxHEIGHT"),
        ("", {"FORUMCAST_SLATE_SIZE": "8000x8000"}, "must be WIDTHxHEIGHT"),
        ("", {"FORUMCAST_PORT": "abc"}, "environment variable FORUMCAST_PORT must be an integer"),
        ("", {"FORUMCAST_NOPE": "1"}, "unknown environment variable FORUMCAST_NOPE"),
        ('previous_secrets = ["short"]\n', {}, "list of secrets of at least 32 bytes"),
        ("previous_secrets = 5\n", {}, "list of secrets of at least 32 bytes"),
        ("", {"FORUMCAST_PREVIOUS_SECRETS": "x" * 40 + ",short"}, "list of secrets of at least 32 bytes"),
        ('[stream_keys]\nmain-cam = "short-key"\n', {}, "main-cam are shorter than 16 characters"),
        ("", {"FORUMCAST_STREAM_KEYS": "a=0123456789abcdef,b=abc"}, "of b are shorter than 16"),
        ("rtmp_port = 70000\n", {}, "between 0 (off) and 65535"),
        ("", {"FORUMCAST_SRT_PORT": "-1"}, "between 0 (off) and 65535"),
        ("fragment_ms = 5\n", {}, "between 20 and 5000 ms"),
        ('srt_passphrase = "short"\n', {}, "10 to 79 characters"),
        ('rtmp_app = "live/x"\n', {}, "without '/' or '?'"),
        ("srt_latency_ms = 10\n", {}, "between 20 and 8000 ms"),
        ("ingest_handshake_timeout = 0\n", {}, "must be positive"),
        ('tls_cert = "a.pem"\n', {}, "'tls_cert' and 'tls_key' go together"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"file '.*nowhere.toml' does not exist"):
        load_config(tmp_path / "nowhere.toml", env={})


def test_previous_secrets_from_a_file_and_the_environment(tmp_path: Path) -> None:
    old, older = "o" * 32, "p" * 40
    assert load_config(write(tmp_path, f'previous_secrets = ["{old}"]\n'), env={}).previous_secrets == [old]
    env = {"FORUMCAST_PREVIOUS_SECRETS": f"{old}, {older}"}
    assert load_config(env=env).previous_secrets == [old, older]


def test_slate_size_is_parsed() -> None:
    assert load_config(env={"FORUMCAST_SLATE_SIZE": "640x360"}).slate_dimensions == (640, 360)
