"""The single-user server's imports with the upstream proposal of bench/README.md applied, measured.

Runs inside the notebook image, on a throwaway copy of its JupyterHub package (the image is not changed):

    docker run --rm -i --entrypoint python3 jhub-docker/notebook:6.1.1 - < bench/upstream_imports.py

The copy gets the proposal: the module-level imports that bring the hub's database layer into
`import jupyterhub.singleuser` move into the functions that use them, and the request log recognises
health checks by the handler's class name instead of importing the hub's handlers. Then, in fresh
interpreters, alternating: `import jupyter_server.serverapp` (the plain server), `import
jupyterhub.singleuser` as released, and the same with the proposal; and which of sqlalchemy, alembic and
jupyterhub.orm each loads. Prints one JSON object.
"""

from __future__ import annotations

import ast
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPEAT = 9
# (file, the module-level import, the names that functions using them need)
LAZY = [
    ("metrics.py", "from . import orm", ["orm"]),
    ("scopes.py", "import sqlalchemy as sa", ["sa"]),
    ("scopes.py", "from . import orm, roles", ["orm", "roles"]),
    ("utils.py", "from sqlalchemy.exc import SQLAlchemyError", ["SQLAlchemyError"]),
]
HEALTH_IMPORT = "from .handlers.pages import HealthCheckHandler\n"
HEALTH_CHECK = ("isinstance(handler, StaticFileHandler | HealthCheckHandler)",
                'isinstance(handler, StaticFileHandler) or type(handler).__name__ == "HealthCheckHandler"')


def lazify(path: Path, statement: str, names: list[str]) -> int:
    """Drop a module-level import; every function that uses one of names runs it first. Returns their count."""
    source = path.read_text()
    assert statement + "\n" in source, f"{path.name} no longer has {statement!r}"
    lines = source.splitlines(keepends=True)
    inserts = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & set(names):
                body = node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
                first = body[0]
                line = min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])])
                inserts.append((line - 1, " " * first.col_offset + statement + "\n"))
    for index, text in sorted(inserts, reverse=True):
        lines.insert(index, text)
    path.write_text("".join(lines).replace(statement + "\n", "", 1))
    return len(inserts)


def run(code: str, path: str | None = None) -> str:
    env = {"PYTHONPATH": path} if path else {}
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd="/",
                          env={"PATH": "/usr/bin:/bin", **env}).stdout


def main() -> None:
    import jupyterhub  # pylint: disable=import-outside-toplevel

    copy = Path(tempfile.mkdtemp())
    package = copy / "jupyterhub"
    shutil.copytree(Path(jupyterhub.__file__).parent, package)
    log = package / "log.py"
    text = log.read_text()
    assert HEALTH_IMPORT in text and HEALTH_CHECK[0] in text, "log.py changed upstream"
    log.write_text(text.replace(HEALTH_IMPORT, "").replace(*HEALTH_CHECK))
    functions = {f"{name}: {statement}": lazify(package / name, statement, names) for name, statement, names in LAZY}

    loaded = "import sys, jupyterhub.singleuser; print([m for m in ('sqlalchemy', 'alembic', 'jupyterhub.orm') if m in sys.modules])"
    timed = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
    variants = {"plain": ("import jupyter_server.serverapp", None), "released": ("import jupyterhub.singleuser", None),
                "proposal": ("import jupyterhub.singleuser", str(copy))}
    for code, path in variants.values():
        run(timed.format(code), path)  # the page cache, as for every start after the first
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _round in range(REPEAT):
        for name, (code, path) in variants.items():
            times[name].append(float(run(timed.format(code), path)))
    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    print(json.dumps({
        "jupyterhub": jupyterhub.__version__, "repeat": REPEAT, "functions_changed": functions,
        "loads": {"released": json.loads(run(loaded).replace("'", '"')),
                  "proposal": json.loads(run(loaded, str(copy)).replace("'", '"'))},
        "help_all_runs": subprocess.run(["jupyterhub-singleuser", "--help-all"], capture_output=True, cwd="/",
                                        env={"PATH": "/opt/jupyter/bin:/usr/bin:/bin", "PYTHONPATH": str(copy)},
                                        check=False).returncode == 0,
        "median_s": medians,
        "extra_s": {"released": round(medians["released"] - medians["plain"], 3),
                    "proposal": round(medians["proposal"] - medians["plain"], 3)},
        "times_s": {name: [round(v, 3) for v in values] for name, values in times.items()},
    }, indent=1))


if __name__ == "__main__":
    main()
