"""The layers hold: read every import of our packages (top-level, function-local and
``TYPE_CHECKING`` ones alike) from the source and check the rules.

- ``server/media`` (the sans-I/O core) imports no asyncio, aiohttp, redis or websockets, and of
  our modules only ``server.errors`` and itself.
- ``server/schedule`` and ``server/store`` import nothing of ``server/live``, ``server/cluster``
  or ``server/http``; ``server/live`` nothing of ``server/cluster`` or ``server/http`` (a
  cluster plugs into the hub through its ``Cluster`` protocol) or ``server/ingest``;
  ``server/ingest`` (the RTMP and SRT listeners, above the live path) and ``server/cluster``
  nothing of ``server/http``.
- Nothing under ``server/`` or ``exhibits/`` imports ``clients/`` (the top layer).
- No circle among our modules, and no import of our modules inside a function (the way
  circles used to be dodged).

The checker is tried on a small tree that breaks every rule, so this test can fail.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
OURS = ("server", "exhibits", "clients")
#: Third-party and standard modules the media core must not use: it does no I/O.
IO_MODULES = ("asyncio", "aiohttp", "redis", "websockets")


@dataclass
class Imports:
    #: module -> modules it imports (ours and foreign, by full dotted name)
    edges: dict[str, set[str]] = field(default_factory=dict)
    #: (module, imported module of ours, line) for imports inside a function
    local: list[tuple[str, str, int]] = field(default_factory=list)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_imports(root: Path, packages: tuple[str, ...] = OURS) -> Imports:
    found = Imports()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(path, root)
            is_package = path.name == "__init__.py"
            tree = ast.parse(path.read_text(encoding="utf-8"))
            targets = found.edges.setdefault(name, set())
            functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            inside = {id(n) for f in functions for n in ast.walk(f)}
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                        base = ".".join([*anchor, base] if base else anchor)
                    # "from pkg import mod" imports pkg.mod when that is a module
                    names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
                for target in names:
                    targets.add(target)
                    if id(node) in inside and target.split(".")[0] in packages:
                        found.local.append((name, target, node.lineno))
    return found


def violations(found: Imports, packages: tuple[str, ...] = OURS) -> list[str]:
    modules = set(found.edges)
    problems = []
    for module, targets in sorted(found.edges.items()):
        ours = {t for t in targets if t in modules and t != module}
        if module == "server.media" or module.startswith("server.media."):
            problems += [f"{module} imports {t} (I/O in the media core)" for t in sorted(targets)
                         if t.split(".")[0] in IO_MODULES]  # fmt: skip
            problems += [f"{module} imports {t} (the media core needs none of our modules)"
                         for t in sorted(ours)
                         if t != "server.errors" and not t.startswith("server.media")]  # fmt: skip
        above = {
            "server.schedule": ("server.live", "server.cluster", "server.http"),
            "server.store": ("server.live", "server.cluster", "server.http"),
            "server.live": ("server.cluster", "server.http", "server.ingest"),
            "server.ingest": ("server.cluster", "server.http"),
            "server.cluster": ("server.http",),
        }
        for layer, higher in above.items():
            if module == layer or module.startswith(layer + "."):
                problems += [f"{module} imports {t} (a lower layer reaching up)" for t in sorted(ours)
                             if t.startswith(higher)]  # fmt: skip
        if module.startswith(("server", "exhibits")):
            problems += [f"{module} imports {t} (the clients are the top layer)" for t in sorted(targets)
                         if t == "clients" or t.startswith("clients.")]  # fmt: skip
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    graph.add_edges_from((m, t) for m, ts in found.edges.items() for t in ts if t in modules and t != m)
    for circle in nx.strongly_connected_components(graph):
        if len(circle) > 1:
            problems.append(f"import circle: {', '.join(sorted(circle))}")
    problems += [f"{m} imports {t} inside a function (line {line})" for m, t, line in found.local]
    return problems


def test_our_modules_keep_the_layers() -> None:
    found = read_imports(ROOT)
    assert len(found.edges) > 100  # the whole tree was read
    assert violations(found) == []


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_every_kind_of_crossing(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "server/__init__.py": "",
            "server/errors.py": "",
            "server/media/__init__.py": "",
            "server/media/fmp4.py": "import asyncio\nfrom server.errors import X\n"
            "from server.live import hub\n",
            "server/media/boxes.py": "from . import fmp4\nfrom ..errors import X\n",
            "server/live/__init__.py": "",
            "server/live/hub.py": "from server.http.app import create_app\n",
            "server/http/__init__.py": "",
            "server/http/app.py": "from server.live.hub import LiveHub\nfrom clients import cli\n",
            "server/store/__init__.py": "def f():\n    from server.http import app\n",
            "server/cluster/__init__.py": "",
            "server/cluster/node.py": "from server.http import keys\n",
            "server/live/program.py": "from server.cluster import node\n",
            "clients/__init__.py": "",
            "clients/cli.py": "from server.http.app import create_app\n",
        },
    )
    found = read_imports(tmp_path)
    assert violations(found) == [
        "server.cluster.node imports server.http (a lower layer reaching up)",
        "server.http.app imports clients (the clients are the top layer)",
        "server.http.app imports clients.cli (the clients are the top layer)",
        "server.live.hub imports server.http.app (a lower layer reaching up)",
        "server.live.program imports server.cluster (a lower layer reaching up)",
        "server.live.program imports server.cluster.node (a lower layer reaching up)",
        "server.media.fmp4 imports asyncio (I/O in the media core)",
        "server.media.fmp4 imports server.live (the media core needs none of our modules)",
        "server.media.fmp4 imports server.live.hub (the media core needs none of our modules)",
        "server.store imports server.http (a lower layer reaching up)",
        "server.store imports server.http.app (a lower layer reaching up)",
        "import circle: clients.cli, server.http.app, server.live.hub",
        "server.store imports server.http inside a function (line 2)",
        "server.store imports server.http.app inside a function (line 2)",
    ]
