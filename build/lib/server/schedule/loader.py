"""Where the program comes from: an event file (our YAML or frab/pretalx JSON) or the demo.

The built-in demo is the 2020 forum (``demo_event.yaml`` in this package). Served as is it
would be six years in the past, so by default it is moved in time so that the instant
:data:`DEMO_ANCHOR` — the morning of day one, with Lord Stern's dialogue on the main stage
and the professional forums running — falls on "now".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from server.errors import Problem, ScheduleError
from server.schedule.frab_import import load_frab_text
from server.schedule.model import Event
from server.schedule.yaml_format import load_yaml_text

DEMO_ANCHOR = datetime(2020, 12, 6, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
#: The demo's shift is a whole multiple of this, so sessions keep round start times.
DEMO_SHIFT_STEP = timedelta(minutes=5)


def load_event_file(path: str | Path) -> Event:
    """Read an event file; ``.json`` is frab/pretalx, ``.yaml``/``.yml`` our own format."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScheduleError([Problem(str(path), "$", "file does not exist")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScheduleError([Problem(str(path), "$", f"cannot read: {exc}")]) from None
    if path.suffix.lower() == ".json":
        return load_frab_text(text, file=str(path))
    if path.suffix.lower() in (".yaml", ".yml"):
        return load_yaml_text(text, file=str(path))
    raise ScheduleError([Problem(str(path), "$", "unknown format: use .yaml/.yml or frab .json")])


def demo_shift(now: datetime) -> timedelta:
    """How far to move the demo so that :data:`DEMO_ANCHOR` is within one step before ``now``."""
    offset = now - DEMO_ANCHOR
    return DEMO_SHIFT_STEP * (offset // DEMO_SHIFT_STEP)


def demo_event(*, now: datetime | None = None, real_dates: bool = False) -> Event:
    """The built-in 2020 forum; moved to be live at ``now`` unless ``real_dates``."""
    text = resources.files("server.schedule").joinpath("demo_event.yaml").read_text(encoding="utf-8")
    event = load_yaml_text(text, file="<demo>")
    if real_dates or now is None:
        return event
    return event.shifted(demo_shift(now))
