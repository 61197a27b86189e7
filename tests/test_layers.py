"""The house rules of DESIGN.md §1, checked on the source: the protocol
package is sans-I/O and imports nothing from the other layers."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "pysync"
FORBIDDEN_MODULES = {"socket", "subprocess", "threading", "select", "selectors", "asyncio",
                     "paramiko", "os", "io", "shutil", "tempfile", "mmap"}
FORBIDDEN_PACKAGES = {"engine", "io", "transport", "session", "cli", "api"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield (node.module or ""), node.level
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            yield "<open()>", 0


def test_protocol_is_sans_io():
    bad = []
    for path in sorted((ROOT / "protocol").glob("*.py")):
        for mod, level in _imports(path):
            top = mod.split(".")[0]
            if level == 0 and (top in FORBIDDEN_MODULES or mod == "<open()>"):
                bad.append(f"{path.name}: {mod}")
            if level >= 2 and top in FORBIDDEN_PACKAGES:
                bad.append(f"{path.name}: {'.' * level}{mod}")
    assert bad == []


def test_transport_knows_no_files():
    bad = []
    for path in sorted((ROOT / "transport").glob("*.py")):
        for mod, level in _imports(path):
            if level >= 2 and mod.split(".")[0] in {"engine", "io", "protocol"}:
                bad.append(f"{path.name}: {mod}")
    assert bad == []
