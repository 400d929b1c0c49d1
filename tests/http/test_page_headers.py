"""The pages' security headers, over HTTP from the real app: every page and static file gets
them, the policy is the one written here, ``frame_ancestors`` reaches the pages an organiser
may embed and only those, the camera and microphone only the speaker page, and the pages'
HTML has nothing inline that the policy refuses (so the browser tests can hold them to it)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from server.config import Config, load_config
from server.errors import ConfigError
from server.http.page_headers import CAPTURING, EMBEDDABLE, parse_frame_ancestors
from server.http.page_routes import PAGES, WEB_ROOT
from tests.conftest import Serve

#: The policy of a page without import maps, written out once: what the pages may load.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss: blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STATIC_FILES = ["/static/common.js", "/static/style.css", "/static/vendor/three/three.module.min.js"]


def import_map_hash() -> str:
    """The hash of the hall's import map, computed here from the page independently."""
    html = (WEB_ROOT / "hall.html").read_text(encoding="utf-8")
    start = html.index('<script type="importmap">') + len('<script type="importmap">')
    body = html[start : html.index("</script>", start)]
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


def expected_csp(path: str, frame_ancestors: str = "'none'") -> str:
    csp = CSP.replace("frame-ancestors 'none'", f"frame-ancestors {frame_ancestors}")
    if path == "/hall":
        csp = csp.replace("script-src 'self'", f"script-src 'self' {import_map_hash()}")
    return csp


async def test_every_page_and_static_file_has_the_headers(serve: Serve) -> None:
    client = await serve()
    for path in [*PAGES, *STATIC_FILES, "/static/no-such-file.js"]:
        response = await client.get(path)
        assert response.status == (404 if "no-such" in path else 200), path
        headers = response.headers
        page = path if path in PAGES else "/static/"
        assert headers["Content-Security-Policy"] == expected_csp(page), path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        assert headers["X-Frame-Options"] == "DENY", path
        allowed = "(self)" if path in CAPTURING else "()"
        assert headers["Permissions-Policy"] == f"camera={allowed}, microphone={allowed}", path
    assert (await client.get("/speaker")).headers["Permissions-Policy"] == "camera=(self), microphone=(self)"
    # The API is not a page: its answers are JSON, framed by no one.
    assert "Content-Security-Policy" not in (await client.get("/api/v1/event")).headers


async def test_frame_ancestors_reach_the_embeddable_pages_only(serve: Serve) -> None:
    origins = "https://www.example.org https://*.example.com:8443"
    client = await serve(frame_ancestors=origins)
    for path in PAGES:
        headers = (await client.get(path)).headers
        if path in EMBEDDABLE:
            assert headers["Content-Security-Policy"] == expected_csp(path, origins), path
            assert "X-Frame-Options" not in headers, path
        else:  # a take or a go-live must not be clickjacked from an organiser's site
            assert headers["Content-Security-Policy"] == expected_csp(path), path
            assert headers["X-Frame-Options"] == "DENY", path
    assert (await client.get("/static/common.js")).headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("setting", ["", "'none'", "  'none'  "])
def test_none_and_empty_frame_ancestors_mean_none(setting: str) -> None:
    assert parse_frame_ancestors(setting) == ()


@pytest.mark.parametrize(
    "setting",
    [
        "https://a.example; script-src *",  # would write the policy
        "https://a.example,https://b.example",  # commas are not CSP's separator
        "'unsafe-inline'",
        "https://a.example/'x'",  # quotes belong to keywords only
        "'none' https://a.example",
    ],
)
def test_bad_frame_ancestors_are_refused_by_name(setting: str, tmp_path: Path) -> None:
    file = tmp_path / "forumcast.toml"
    file.write_text(f"frame_ancestors = {json.dumps(setting)}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="frame_ancestors"):
        load_config(file, env={})
    assert Config().frame_ancestors == "'none'"  # the default stays what it was


def test_frame_ancestors_from_the_environment(tmp_path: Path) -> None:
    config = load_config(env={"FORUMCAST_FRAME_ANCESTORS": "https://www.example.org 'self'"})
    assert parse_frame_ancestors(config.frame_ancestors) == ("https://www.example.org", "'self'")


class _Inline(HTMLParser):
    """What a page writes inline: scripts without src (and their type), handlers, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.handlers: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and "src" not in names:
            self.scripts.append(names.get("type") or "classic")
        self.handlers += [f"{tag} {name}" for name in names if name.startswith("on")]
        self.styles += [tag for name in names if name == "style"] + (["<style>"] if tag == "style" else [])


@pytest.mark.parametrize("name", sorted(PAGES.values()))
def test_pages_have_nothing_inline_but_import_maps(name: str) -> None:
    found = _Inline()
    found.feed((WEB_ROOT / name).read_text(encoding="utf-8"))
    assert set(found.scripts) <= {"importmap"} and found.handlers == [] and found.styles == [], vars(found)


def test_scripts_write_no_markup() -> None:
    """Text users write (titles, names, messages, errors) goes in as text, never as markup."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|srcdoc|DOMParser|createContextualFragment"
    )
    found = [
        f"{path.name}:{n}"
        for path in sorted(WEB_ROOT.glob("*.js"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if sinks.search(line)
    ]
    assert found == []
