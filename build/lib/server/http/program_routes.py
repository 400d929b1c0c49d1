"""Producer control of a stage's program: ``POST /api/v1/stages/{stage}/take`` and ``/auto``.

A take puts an input (or the slate) on the program at its next keyframe (``"cut":
"cached"``: at once, from its cached GOP) and pauses the stage's automation; ``auto`` hands
the stage back to the schedule. Both need a producer token for the stage and answer with
the program's state; an input that is not publishing is a 409 (``program.input_down``).
"""

from __future__ import annotations

from aiohttp import web

from server import audit
from server.auth import Principal
from server.errors import ForumcastError
from server.http.access import require_producer
from server.http.bodies import read_object
from server.http.keys import LIVE
from server.live.program import Program
from server.media.switcher import Cut

routes = web.RouteTableDef()
TAKE_EXAMPLE = '{"input": "main-cam"}'
#: Longest input id a take may name (ids are short slugs; the refusal echoes it).
MAX_INPUT_ID = 64


def _produced(request: web.Request) -> tuple[Program, Principal]:
    """The request's stage program and its producer (404 before 401: stages are public)."""
    program = request.app[LIVE].program(request.match_info["stage"])
    return program, require_producer(request, program.stage.id)


def _answer(request: web.Request, program: Program) -> web.Response:
    return web.json_response({"program": request.app[LIVE].program_state(program.stage.id)})


@routes.post("/api/v1/stages/{stage}/take")
async def take(request: web.Request) -> web.Response:
    program, who = _produced(request)
    payload = await read_object(request, code="program.bad_take", example=TAKE_EXAMPLE, empty=True)
    source = payload.get("input")
    if not isinstance(source, str) or not 0 < len(source) <= MAX_INPUT_ID:
        raise ForumcastError(
            "program.bad_take",
            f"'input' must name one of the stage's inputs or 'slate' (at most {MAX_INPUT_ID} characters)",
        )
    try:
        cut = Cut(payload.get("cut", Cut.KEYFRAME.value))
    except ValueError:
        raise ForumcastError("program.bad_take", "'cut' must be 'keyframe' or 'cached'") from None
    await request.app[LIVE].take(program.stage.id, source, cut=cut)
    await audit.record(request, who, "program.take", f"stage:{program.stage.id}", input=source, cut=cut.value)
    return _answer(request, program)


@routes.post("/api/v1/stages/{stage}/auto")
async def auto(request: web.Request) -> web.Response:
    program, who = _produced(request)
    await request.app[LIVE].resume(program.stage.id)
    await audit.record(request, who, "program.auto", f"stage:{program.stage.id}")
    return _answer(request, program)


@routes.get("/api/v1/stages/{stage}/program")
async def get_program(request: web.Request) -> web.Response:
    """The program's state alone (producers poll it; the stage document carries it too)."""
    return _answer(request, _produced(request)[0])


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
