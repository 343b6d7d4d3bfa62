"""The layers hold: every module imports only what its package may import (read from the source, AST);
no module over ~400 lines and no function over ~60 lines, the sizes a newcomer reads in one sitting.

The rule (docs/CONTRACTS.md, "Layers"): a small core imports no other project package; the libraries
(`cache`, `extractors`, `heads`, `fairness`) import only the core; the application (`benchmark/`) is layered
too, from the data packages up to the commands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT = ("benchmark", "cache", "extractors", "heads", "fairness")
LIBRARY = {"benchmark.core"}

ALLOWED: dict[str, set[str]] = {
    "benchmark.core": set(),
    "cache": LIBRARY,
    "extractors": LIBRARY,
    "heads": LIBRARY,
    "fairness": LIBRARY,
    "benchmark.ui": LIBRARY,
    "benchmark.datasets": LIBRARY,
    "benchmark.tasks": LIBRARY | {"benchmark.datasets"},
    "benchmark.finetune": LIBRARY,
    "benchmark.leaderboard": LIBRARY | {"fairness", "benchmark.ui"},
    "benchmark.pipelines": LIBRARY | {"cache", "extractors", "heads", "fairness", "benchmark.datasets",
                                      "benchmark.tasks", "benchmark.finetune"},
    "benchmark.experiments": LIBRARY | {"extractors", "heads", "benchmark.datasets", "benchmark.tasks",
                                        "benchmark.finetune", "benchmark.pipelines", "benchmark.leaderboard",
                                        "benchmark.ui", "benchmark.report"},
    "benchmark.prompt_sensitivity": LIBRARY | {"fairness", "benchmark.pipelines", "benchmark.leaderboard"},
    "benchmark.report": LIBRARY | {"fairness", "benchmark.leaderboard"},
    "benchmark.commands": {"*"},
    "benchmark.perf": {"*"},
    "benchmark.cli": {"*"},
    "benchmark": {"*"},  # benchmark/__init__.py: the version only
}
"""Package (longest prefix wins) -> the project packages it may import besides itself. "*": any."""


def project_modules() -> dict[str, Path]:
    modules = {}
    for top in PROJECT:
        for path in sorted((REPO / top).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def owner(module: str, table=ALLOWED) -> str | None:
    """The longest key of `table` that is `module` or a package above it."""
    candidates = [key for key in table if module == key or module.startswith(key + ".")]
    return max(candidates, key=len) if candidates else None


def imported(path: Path, module: str) -> list[tuple[str, int]]:
    """Project modules imported anywhere in the file (top level or inside functions), with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, node.lineno))
            found += [(f"{name}.{alias.name}", node.lineno) for alias in node.names]
    return [(name, line) for name, line in found if name.split(".")[0] in PROJECT]


def forbidden_edges() -> list[str]:
    modules = project_modules()
    problems = []
    for module, path in modules.items():
        layer = owner(module)
        if layer is None:
            problems.append(f"{module} ({path.relative_to(REPO)}) is in no layer; add its package to ALLOWED")
            continue
        allowed = ALLOWED[layer]
        if "*" in allowed:
            continue
        for name, line in imported(path, module):
            target = owner(name) if name not in modules or owner(name) else None
            target = target or name
            if target == layer or target in allowed:
                continue
            if name.rpartition(".")[0] in modules and owner(name.rpartition(".")[0]) in allowed | {layer}:
                continue  # `from package import module_or_name` resolved to an allowed package
            problems.append(f"{path.relative_to(REPO)}:{line}: {layer} may not import {name} (layer {target})")
    return problems


def test_every_import_respects_the_layers():
    problems = forbidden_edges()
    assert not problems, "forbidden imports:\n" + "\n".join(problems)


def test_the_rule_catches_a_forbidden_edge(tmp_path):
    source = tmp_path / "fake.py"
    source.write_text("from benchmark.ui import console\nimport numpy\n")
    edges = imported(source, "cache.fake")
    assert edges == [("benchmark.ui", 1), ("benchmark.ui.console", 1)]
    assert owner("benchmark.ui.console") == "benchmark.ui" not in ALLOWED["cache"]
    assert owner("benchmark.core.errors") == "benchmark.core" in ALLOWED["cache"]


MAX_MODULE_LINES = 420
MAX_FUNCTION_LINES = 60
STILL_LONG: tuple[str, ...] = ()
"""Functions written before the limit that are still to be split (none left); never to be added to."""


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
            length = node.end_lineno - body[0].lineno + 1  # the code, not the signature or docstring
            if length > MAX_FUNCTION_LINES:
                out.append(f"{path.relative_to(REPO)}:{node.name} at line {node.lineno} ({length} lines)")
    return out


def test_modules_and_functions_stay_small():
    long_modules = [f"{path.relative_to(REPO)} ({len(path.read_text().splitlines())} lines)"
                    for path in project_modules().values() if len(path.read_text().splitlines()) > MAX_MODULE_LINES]
    long_functions = [item for path in project_modules().values() for item in _long_functions(path)
                      if not any(item.startswith(known) for known in STILL_LONG)]
    assert not long_modules and not long_functions, (
        f"modules over {MAX_MODULE_LINES} lines: {long_modules}; functions over {MAX_FUNCTION_LINES} lines: "
        f"{long_functions}"
    )


@pytest.mark.parametrize("module", ["benchmark.core.errors", "benchmark.core.workdir", "benchmark.core.runs"])
def test_the_core_imports_no_other_project_package(module):
    path = project_modules()[module]
    assert all(name.startswith("benchmark.core") for name, _ in imported(path, module))
