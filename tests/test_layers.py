"""The package's folders are its layers, and imports only point down: read every module's imports
(including those inside functions) with `ast` and check them against the table below."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ctrnn_jax"

# Each layer and the layers it may import from. `base` is the package's own shared helpers (`_checks.py`,
# `_files.py`, `_imports.py`, `_results.py`); `top` is the CLI and the public API (the `_cli/` package, `__init__.py`).
ALLOWED = {
    "base": set(),
    "models": {"base"},
    "tasks": {"base"},
    "training": {"base", "models", "tasks"},
    "dynamics": {"base", "models", "tasks", "training"},
    "io": {"base", "models", "tasks", "training", "dynamics"},
    "analysis": {"base", "models", "tasks", "training", "dynamics", "io"},
    "top": {"base", "models", "tasks", "training", "dynamics", "io", "analysis"},
}
BASE = {"_checks", "_files", "_imports", "_results"}
TOP = {"_cli", "__init__", "__main__"}


def layer_of(parts: tuple[str, ...]) -> str:
    """The layer of the module `ctrnn_jax.<parts>` (a file or a package)."""
    if not parts:
        return "top"
    if parts[0] in ALLOWED:
        return parts[0]
    if parts[0] in BASE:
        return "base"
    if parts[0] in TOP:
        return "top"
    raise AssertionError(f"ctrnn_jax.{'.'.join(parts)} belongs to no layer; add it to the table in {__file__}.")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def own_imports(path: Path, root: Path = PACKAGE) -> list[tuple[int, tuple[str, ...]]]:
    """`(line, parts)` for every import of a ctrnn_jax module in `path`, resolved to `ctrnn_jax.<parts>`."""
    here = path.relative_to(root).with_suffix("").parts  # e.g. ("io", "_run")
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                if node.level - 1 > len(package):
                    raise AssertionError(f"{path}:{node.lineno}: relative import above the package.")
                target = base + tuple(node.module.split(".")) if node.module else base
            elif node.module and node.module.split(".")[0] == "ctrnn_jax":
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            if node.module is None:  # `from . import _x`: each name is a module
                found += [(node.lineno, target + (a.name,)) for a in node.names]
            else:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, tuple(a.name.split(".")[1:])) for a in node.names if a.name.split(".")[0] == "ctrnn_jax"
            ]
    return found


def violations(path: Path, root: Path = PACKAGE) -> list[str]:
    """The imports of `path` (a module under `root`, the package folder) that break the table."""
    here = layer_of(path.relative_to(root).with_suffix("").parts)
    bad = []
    for line, target in own_imports(path, root):
        there = layer_of(target)
        if there != here and there not in ALLOWED[here]:
            bad.append(f"line {line}: ctrnn_jax.{'.'.join(target)} ({there}) from {here}")
    return bad


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    bad = violations(path)
    assert not bad, f"{path.relative_to(PACKAGE)} imports from a layer above or beside it: {bad}"


def test_the_cli_package_is_the_top_layer():
    cli = sorted(p.relative_to(PACKAGE) for p in (PACKAGE / "_cli").glob("*.py"))
    assert Path("_cli", "__init__.py") in cli and Path("_cli", "_train.py") in cli
    assert {layer_of(p.with_suffix("").parts) for p in cli} == {"top"}


def test_no_import_cycles_between_modules():
    graph = {}
    for path in modules():
        name = path.relative_to(PACKAGE).with_suffix("").parts
        graph[name] = {t for _, t in own_imports(path) if (PACKAGE.joinpath(*t).with_suffix(".py")).is_file()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in graph.get(node, ()):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(".".join(c) for c in cycle))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node, [node])


def test_checker_sees_violations(tmp_path):
    """The checker itself: upward and sideways imports are found, inside functions too; downward pass."""
    (tmp_path / "models").mkdir()
    (tmp_path / "tasks").mkdir()
    up = tmp_path / "models" / "_probe.py"
    up.write_text("def f():\n    from ..analysis._report import analyze_run\n")
    side = tmp_path / "tasks" / "_probe.py"
    side.write_text("from ctrnn_jax.models._model import CTRNN\nfrom .. import _checks\n")
    (tmp_path / "io").mkdir()
    down = tmp_path / "io" / "_probe.py"
    down.write_text("from ..dynamics import _cube\nfrom ._run import RunConfig\nimport numpy\n")
    assert violations(up, tmp_path) == ["line 2: ctrnn_jax.analysis._report (analysis) from models"]
    assert violations(side, tmp_path) == ["line 1: ctrnn_jax.models._model (models) from tasks"]
    assert violations(down, tmp_path) == []


def _imports_matplotlib(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        )
        if any(n.split(".")[0] == "matplotlib" for n in names):
            return True
    return False


def test_only_analysis_imports_matplotlib():
    users = [p.relative_to(PACKAGE) for p in modules() if _imports_matplotlib(p)]
    assert users and all(p.parts[0] == "analysis" for p in users), users
