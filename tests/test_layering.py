"""The package's folders are its architecture: each floor imports only the floors below it,
nothing imports in a circle, and the engine never sees an MNE object.

The imports are read from the source (every ``import``, also those inside functions),
not by importing the package, so a lazy import cannot hide a circle.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "minnorm"

# floor of each top-level part, lowest first; a module may import its own floor and below
FLOORS = {
    "_log": 0, "_version": 0,
    "engine": 1,
    "_mne": 2,
    "inverse": 3,
    "io": 4,
    "resolution": 4,
    "time_frequency": 4,
    "beamformer": 4,
    "decoding": 5,
    "teaching": 6,
    "cli": 7,
    "__init__": 8,  # the public API: minnorm/__init__.py
}
MAX_LINES = 420  # "no module longer than ~400 lines"


def _modules() -> dict:
    """Dotted name (without 'minnorm.') → path, for every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _package_of(name: str, path: Path) -> list:
    parts = [] if name == "__init__" else name.split(".")
    return parts if path.name == "__init__.py" else parts[:-1]


def _resolve(target: str) -> str | None:
    """The module a dotted target names (a name inside a module resolves to the module)."""
    while target:
        if target in MODULES:
            return target
        target = target.rpartition(".")[0]
    return "__init__" if target == "" else None


def imports(name: str) -> set:
    """Modules of the package that module ``name`` imports (anywhere in its source)."""
    path = MODULES[name]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("minnorm."):
                    found.add(_resolve(alias.name[len("minnorm."):]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(name, path)[: len(_package_of(name, path)) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("minnorm"):
                stem = node.module[len("minnorm."):] if node.module != "minnorm" else ""
            else:
                continue
            for alias in node.names:
                full = f"{stem}.{alias.name}" if stem else alias.name
                found.add(_resolve(full) if full in MODULES else _resolve(stem))
    found.discard(None)
    found.discard(name)
    return found


def floor(name: str) -> int:
    return FLOORS[name.split(".")[0]]


def test_every_part_has_a_floor():
    assert {n.split(".")[0] for n in MODULES} <= set(FLOORS)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_only_from_its_floor_and_below(name):
    higher = sorted(m for m in imports(name) if floor(m) > floor(name))
    assert not higher, f"minnorm.{name} (floor {floor(name)}) imports a higher floor: {higher}"


def test_no_import_circles():
    graph = {name: imports(name) for name in MODULES}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import circle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if floor(n) <= 1))
def test_the_engine_never_imports_mne(name):
    tree = ast.parse(MODULES[name].read_text())
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        assert not any(n == "mne" or n.startswith("mne.") for n in names), \
            f"minnorm.{name} imports mne: MNE objects belong to minnorm._mne"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_fit_on_a_few_screens(name):
    n_lines = len(MODULES[name].read_text().splitlines())
    assert n_lines <= MAX_LINES, f"minnorm.{name} has {n_lines} lines: split it by job"


def test_the_checker_sees_a_circle_and_a_higher_floor(tmp_path, monkeypatch):
    """The rules above can fail: a fake engine module importing the CLI breaks both."""
    fake = tmp_path / "fake.py"
    fake.write_text("from ..cli import main\n\ndef f():\n    from ..engine import fake\n")
    monkeypatch.setitem(MODULES, "engine.fake", fake)
    assert "cli" in imports("engine.fake")
    with pytest.raises(AssertionError, match="imports a higher floor"):
        test_imports_only_from_its_floor_and_below("engine.fake")
