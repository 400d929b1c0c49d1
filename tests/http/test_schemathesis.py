"""schemathesis against a live ``forumcast serve``: every operation answers as the document says.

One real server (a subprocess on loopback, the fixture event and catalog, one uploaded STL)
for the module. For each role's token (producer of every stage, ops,
``exhibitor:cn-hydrogen-01``, ``viewer:closed``) schemathesis's CLI runs over every
operation but those :data:`EXCLUDED` (:data:`PHASES`: the boundaries of every parameter and
body, fuzzing, and stateful sequences along the document's links) with the checks of
:data:`CHECKS`: no 5xx, a documented status, content type, headers and body. Deterministic
(``--generation-deterministic``: no random seed, no example database) and bounded
(:data:`MAX_EXAMPLES`).

Inputs schemathesis's generation does not reach are sent raw (:data:`HOSTILE`, the model
file's ranges) and their answers checked by the same checks; a meeting request is followed
along its links (status URL, accept, decline) the same way.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.http.openapi_page import operations
from server.http.openapi_routes import document
from tests.conftest import FIXTURES, SECRET, TOKENS
from tests.exhibits.assets import export, tower
from tests.test_cli import Server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: Operations schemathesis cannot exercise statelessly, and why.
EXCLUDED = {
    # WebSocket upgrades: schemathesis speaks plain HTTP, and an upgraded connection stays
    # open for as long as the stream lasts (tests/live covers the protocols).
    "publishWebSocket": "WebSocket",
    "watchStage": "WebSocket",
    "previewInput": "WebSocket",
    # A publisher's live fMP4 stream for as long as the body lasts; random bytes would only
    # test the fMP4 parser, which tests/media covers with real and broken media.
    "publishHttp": "streaming",
    # Real 3D files run the ingest pipeline in worker processes (tests/exhibits covers it);
    # the model fixture below uploads one STL, and the runs then reach its job and files.
    "uploadModel": "3D files",
}
#: Examples per operation and phase: the four runs take about a minute on two cores.
MAX_EXAMPLES = 4
EXHIBIT = "cn-hydrogen-01"
#: A schemathesis run's output and JSON report.
Run = tuple[str, dict[str, Any]]
ROLES = {
    "producer": TOKENS.issue("producer", ttl=timedelta(hours=2), subject="schemathesis"),
    "ops": TOKENS.issue("ops", ttl=timedelta(hours=2)),
    "exhibitor": TOKENS.issue(f"exhibitor:{EXHIBIT}", ttl=timedelta(hours=2)),
    "viewer": TOKENS.issue("viewer:closed", ttl=timedelta(hours=2)),
}
PRODUCER = {"Authorization": f"Bearer {ROLES['producer']}"}
OWNER = {"Authorization": f"Bearer {ROLES['exhibitor']}"}
OPS = {"Authorization": f"Bearer {ROLES['ops']}"}
#: What each role's run does. The producer's also covers the boundaries of every parameter
#: and body (the coverage phase: most of the cases, and of the time); the others fuzz and
#: follow the links with their own token.
PHASES = {role: "coverage,fuzzing,stateful" if role == "producer" else "fuzzing,stateful" for role in ROLES}
#: Values that reach past the 404s: the fixture event's stages and inputs, the catalog's
#: exhibits, and (filled in per run) the uploaded model's job and files.
CONFIG = """
[dictionaries.jobs]
values = ["{job}"]
[dictionaries.models]
values = {models}
[dictionaries.stages]
values = ["main", "forum-a", "closed", "europe"]
[dictionaries.inputs]
values = ["main-cam", "stern-uk"]
[dictionaries.exhibits]
values = ["cn-hydrogen-01", "de-solar-01"]
[dictionaries.days]
values = ["1", "2", "2020-12-07"]

[parameters]
"path.stage" = { dictionary = "stages", probability = 0.7 }
"query.stage" = { dictionary = "stages", probability = 0.5 }
"path.input" = { dictionary = "inputs", probability = 0.7 }
"path.exhibit" = { dictionary = "exhibits", probability = 0.7 }
"query.day" = { dictionary = "days", probability = 0.5 }
"path.job" = { dictionary = "jobs", probability = 0.7 }
"path.sha" = { dictionary = "models", probability = 0.7 }
"""


@pytest.fixture(scope="module")
def live() -> Iterator[Server]:
    server = Server(
        "--event",
        str(FIXTURES / "event.yaml"),
        "--log-level",
        "error",  # the server's pipes are read only at the end: keep them small
        env={
            "FORUMCAST_SECRET": SECRET,
            "FORUMCAST_CATALOG": str(FIXTURES / "exhibits.yaml"),
            "FORUMCAST_SLATE_SIZE": "320x180",
            "FORUMCAST_INGEST_WORKERS": "1",
            # Blocking playlist reloads and held parts wait three target durations.
            "FORUMCAST_HLS_TARGET_DURATION": "0.2",
            "FORUMCAST_HLS_PART_TARGET": "0.1",
        },
    )
    yield server
    code, _, err = server.stop()
    assert code == 0, err[-5000:]


def url(server: Server, path: str = "") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


@pytest.fixture(scope="module")
def model(live: Server, schema: Any) -> tuple[str, list[str]]:
    """An STL uploaded to EXHIBIT and its job followed to the end (each answer checked): the
    job's id and the sha256 of each level of detail, for the runs to reach them."""
    upload = requests.post(
        url(live, f"/api/v1/exhibits/{EXHIBIT}/model"),
        params={"filename": "tower.stl", "unit": "mm", "up": "z"},
        data=export(tower(), "stl"),
        headers=OWNER,
        timeout=10,
    )
    check(schema, upload, query={"filename": "tower.stl", "unit": "mm", "up": "z"})
    assert upload.status_code == 202
    deadline = time.monotonic() + 60
    while (job := requests.get(url(live, upload.headers["Location"]), headers=OWNER, timeout=10)).json()[
        "state"
    ] not in ("done", "failed"):
        assert time.monotonic() < deadline, job.json()
        time.sleep(0.1)
    check(schema, job)
    assert job.json()["state"] == "done", job.json()
    exhibit = requests.get(url(live, f"/api/v1/exhibits/{EXHIBIT}"), timeout=10)
    check(schema, exhibit)
    lods = exhibit.json()["model"]["lods"]
    assert lods and exhibit.json()["model"]["status"] == "ready"
    return job.json()["id"], [lod["sha256"] for lod in lods]


@pytest.fixture(scope="module")
def runs(
    live: Server, model: tuple[str, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Run]:
    """One schemathesis run per role, all at once (they mostly wait on the server): the
    output and the JSON report of each."""
    excluded = [arg for op in EXCLUDED for arg in ("--exclude-operation-id", op)]
    started = {}
    for role, token in ROLES.items():
        where = tmp_path_factory.mktemp(f"schemathesis-{role}")
        job, shas = model
        (where / "schemathesis.toml").write_text(
            CONFIG.replace("{job}", job).replace("{models}", json.dumps(shas))
        )
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", "schemathesis.toml",
            "run", url(live, "/api/v1/openapi.json"),
            "-H", f"Authorization: Bearer {token}",
            "--checks", ",".join(check.__name__ for check in CHECKS),
            "--phases", PHASES[role], "--max-examples", str(MAX_EXAMPLES), "--generation-deterministic",
            "--request-timeout", "10", "--no-color",
            "--report", "json", "--report-json-path", "report.json",
            *excluded,
        ]  # fmt: skip
        started[role] = (where, subprocess.Popen(command, cwd=where, stdout=subprocess.PIPE, text=True))
    done = {}
    for role, (where, process) in started.items():
        output, _ = process.communicate(timeout=300)
        report = where / "report.json"
        assert report.exists(), output[-5000:]
        done[role] = (output, json.loads(report.read_text()))
    return done


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_documented(runs: dict[str, Run], role: str) -> None:
    output, report = runs[role]
    counted = report["operations"]
    assert counted["tested"] == counted["selected"] == counted["total"] - len(EXCLUDED)
    # schemathesis leaves out the operation it loaded the document from (GET /api/v1/openapi.json).
    assert counted["total"] == len(operations(document())) - 1
    assert report["test_cases"]["generated"] > 100
    assert report["test_cases"]["with_failures"] == 0 and report["exit_code"] == 0, output[-30000:]


@pytest.fixture(scope="module")
def schema(live: Server) -> Any:
    return schemathesis.openapi.from_url(url(live, "/api/v1/openapi.json"))


def _template(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The document's path template that ``path`` fills, and its path parameters."""
    for template, item in document()["paths"].items():
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
        match = re.fullmatch(pattern, path)
        if match and method.lower() in item:
            return template, match.groupdict()
    raise AssertionError(f"{method} {path} is no operation of the document")


def check(schema: Any, response: requests.Response, **case: Any) -> None:
    """schemathesis's checks of the answer to ``response.request``, against its operation."""
    method, path = str(response.request.method), urlsplit(str(response.request.url)).path
    template, params = _template(method, unquote(path))
    schema[template][method].Case(path_parameters=params, **case).validate_response(response, checks=CHECKS)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


MEETINGS = f"/api/v1/exhibits/{EXHIBIT}/meeting-requests"
#: (method, path, query, JSON body, headers): inputs schemathesis's generation does not reach.
HOSTILE = {
    # int() refuses more than 4300 digits; str.isdigit() is true for "²", which int() refuses.
    "day-5000-digits": ("GET", "/api/v1/sessions", {"day": "9" * 5000}, None, {}),
    "day-superscript": ("GET", "/api/v1/sessions", {"day": "²"}, None, {}),
    "hls-msn-superscript": ("GET", "/live/main/media.m3u8", {"_HLS_msn": "²"}, None, {}),
    "hls-part-superscript": ("GET", "/live/main/media.m3u8", {"_HLS_msn": "0", "_HLS_part": "²"}, None, {}),
    "page-5000-digits": ("GET", "/api/v1/exhibits", {"page": "9" * 5000}, None, {}),
    "tz-too-long": ("GET", "/api/v1/event", {"tz": "Europe/" * 600}, None, {}),
    # JSON nested past Python's recursion limit: json.loads raises RecursionError.
    "delay-nested": ("POST", "/api/v1/stages/main/delay", {}, nested(5000), PRODUCER),
    "take-nested": ("POST", "/api/v1/stages/main/take", {}, nested(5000), PRODUCER),
    "delay-huge-float": ("POST", "/api/v1/stages/main/delay", {}, b'{"minutes": 1e400}', PRODUCER),
    "take-cut-list": ("POST", "/api/v1/stages/main/take", {}, b'{"input": "slate", "cut": []}', PRODUCER),
    "views-kind-list": (
        "POST",
        f"/api/v1/exhibits/{EXHIBIT}/views",
        {},
        b'{"visitor": "v-123456", "kind": []}',
        {},
    ),
    "views-nested": ("POST", f"/api/v1/exhibits/{EXHIBIT}/views", {}, nested(500), {}),
    "meeting-nested": ("POST", MEETINGS, {}, nested(5000), {}),
    "accept-nested": ("POST", f"{MEETINGS}/0123456789abcdef/accept", {}, nested(2000), OWNER),
    "revoke-nested": ("POST", "/api/v1/tokens/revoke", {}, nested(5000), OPS),
    "revoke-5000-digits": ("POST", "/api/v1/tokens/revoke", {}, b'{"jti": ' + b"9" * 5000 + b"}", OPS),
    "audit-limit-superscript": ("GET", "/api/v1/audit", {"limit": "²"}, None, OPS),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_inputs_get_documented_answers(live: Server, schema: Any, name: str) -> None:
    method, path, query, body, headers = HOSTILE[name]
    if body is not None:
        headers = {**headers, "Content-Type": "application/json"}
    response = requests.request(method, url(live, path), params=query, data=body, headers=headers, timeout=10)
    check(schema, response, query=query)
    assert response.status_code < 500
    assert live.get("/healthz")[0] == 200  # nothing else broke


def quarter_hours_from_now(*hours: int) -> list[str]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 15) + timedelta(days=1)
    return [(start + timedelta(hours=h)).isoformat() for h in hours]


def test_meeting_request_links(live: Server, schema: Any) -> None:
    """Create → its status URL → accept (the 201's link) → decline too late (409), each answer checked."""
    slots = quarter_hours_from_now(2, 3)
    form = {"name": "Li Wei", "email": "li.wei@example.org", "message": "Let us meet.", "slots": slots}
    created = requests.post(url(live, MEETINGS), json=form, timeout=10)
    check(schema, created)
    assert created.status_code == 201
    body = created.json()
    status = requests.get(url(live, body["status_url"]), timeout=10)
    check(schema, status)
    assert status.json()["status"] == "pending"
    accept = url(live, f"{MEETINGS}/{body['id']}/accept")
    accepted = requests.post(accept, json={"slot": slots[1]}, headers=OWNER, timeout=10)
    check(schema, accepted)
    assert accepted.json()["status"] == "accepted"
    again = requests.post(url(live, f"{MEETINGS}/{body['id']}/decline"), headers=OWNER, timeout=10)
    check(schema, again)
    assert again.status_code == 409 and again.json()["error"]["code"] == "meeting.already_decided"
    after = requests.get(url(live, body["status_url"]), timeout=10)
    check(schema, after)
    assert after.json()["accepted_slot"] == slots[1]


def test_model_file_answers(live: Server, schema: Any, model: tuple[str, list[str]]) -> None:
    """A stored GLB whole, one range, past its end, revalidated: each answer as documented."""
    path = url(live, f"/models/{model[1][0]}.glb")
    whole = requests.get(path, timeout=10)
    check(schema, whole)
    assert whole.status_code == 200 and whole.content[:4] == b"glTF"
    part = requests.get(path, headers={"Range": "bytes=0-9"}, timeout=10)
    check(schema, part, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole.content[:10]
    tag = whole.headers["ETag"]
    again = requests.get(path, headers={"If-None-Match": tag}, timeout=10)
    check(schema, again, headers={"If-None-Match": tag})
    assert again.status_code == 304
    past = f"bytes={len(whole.content) + 10}-"
    beyond = requests.get(path, headers={"Range": past}, timeout=10)
    assert beyond.status_code == 416
    check(schema, beyond, headers={"Range": past})
