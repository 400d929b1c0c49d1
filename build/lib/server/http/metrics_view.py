"""What ``/metrics`` shows a scraper without an ``ops`` token: no closed-door names.

Closed-door stages and their inputs appear in metric labels (viewers, sources on air,
input health). Scraped anonymously, each of those label values is replaced by a stable
pseudonym (``closed-`` and an HMAC of the token secret), so the series keep their shape and
continuity for dashboards while a closed seminar's name, and its inputs', never leave the
server. Scraped with an ``ops`` token, the names are shown.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

#: A label value in the Prometheus text format: ``name="value"`` (values here never hold quotes).
_VALUE = r'(?<==")({names})(?=")'


@functools.lru_cache(maxsize=8)
def _pattern(names: frozenset[str]) -> re.Pattern[bytes]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(_VALUE.format(names=alternatives).encode())


def redact(text: bytes, names: Iterable[str], pseudonym: Callable[[str], str]) -> bytes:
    """``text`` (the exposition format) with every label value in ``names`` replaced."""
    hidden = frozenset(names)
    if not hidden:
        return text
    return _pattern(hidden).sub(lambda m: f"closed-{pseudonym(m.group(1).decode())}".encode(), text)
