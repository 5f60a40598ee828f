"""Import layering of the library, checked statically with `ast` (no module is imported).

Every `import x`, `from x import y` and relative `from .x import y` is resolved to an absolute
module name, wherever it appears (module level or inside a function), as are string-literal
`importlib.import_module("x")` / `__import__("x")` calls.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "vidgen"
SOURCES = sorted(PKG.rglob("*.py"))
# The whole package, vidgen/ui/ included: only app.py imports gradio, so every helper stays unit-testable.
LIBRARY_SOURCES = SOURCES


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> list[str]:
    """The package a file's relative imports are resolved against."""
    return list(path.relative_to(ROOT).parent.parts)


@cache
def imports(path: Path) -> frozenset[str]:
    """Absolute names of every module `path` imports. `from pkg import name` yields both `pkg` and
    `pkg.name` (name may be a submodule: `from . import world`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path)
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return frozenset(found)


def vidgen_modules(path: Path) -> set[str]:
    """The vidgen submodules `path` imports directly (e.g. {"schedules"}), by top-level name.
    `from vidgen import world` and `from .world import X` both give "world"."""
    out = set()
    for name in imports(path):
        parts = name.split(".")
        if parts[0] == "vidgen" and len(parts) > 1 and ((PKG / f"{parts[1]}.py").exists() or (PKG / parts[1]).is_dir()):
            out.add(parts[1])
    return out


def closure(start: str) -> set[str]:
    """Every vidgen module reachable from `start` through vidgen-internal imports."""
    seen, todo = set(), [start]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        path = PKG / f"{mod}.py"
        if not path.exists():
            path = PKG / mod / "__init__.py"
        if path.exists():
            todo.extend(vidgen_modules(path))
    return seen


def is_top(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


# ----------------------------------------------------------------------------------- the parser
def test_parser_resolves_every_import_form(tmp_path, monkeypatch):
    fake_root = tmp_path
    pkg = fake_root / "vidgen" / "sub"
    pkg.mkdir(parents=True)
    src = pkg / "mod.py"
    src.write_text(
        "import os, gradio.blocks\n"
        "from . import sibling\n"
        "from .. import world\n"
        "from ..schedules import NoiseSchedule\n"
        "from vidgen.maps import strip\n"
        "def f():\n"
        "    import importlib\n"
        "    importlib.import_module('pipeline_x')\n"
        "    from .deep.er import thing\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake_root)
    imports.cache_clear()
    try:
        got = imports(src)
    finally:
        imports.cache_clear()
    for name in ("os", "gradio.blocks", "vidgen.sub", "vidgen.sub.sibling", "vidgen", "vidgen.world",
                 "vidgen.schedules", "vidgen.maps", "importlib", "pipeline_x", "vidgen.sub.deep.er"):
        assert name in got, name


def test_sources_found():
    names = {module_name(p) for p in SOURCES}
    assert {"vidgen.samplers", "vidgen.model", "vidgen.attention", "vidgen.schedules"} <= names


# ------------------------------------------------------------------------------------ the rules
@pytest.mark.parametrize("path", LIBRARY_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_gradio_under_vidgen(path):
    bad = sorted(n for n in imports(path) if is_top(n, "gradio") or is_top(n, "gradio_client"))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}; the library must not depend on the UI"


def test_samplers_only_use_schedules():
    path = PKG / "samplers.py"
    assert vidgen_modules(path) <= {"schedules"}, vidgen_modules(path)
    assert not any(is_top(n, "vidgen") and n not in ("vidgen", "vidgen.schedules") and not n.startswith("vidgen.schedules.")
                   for n in imports(path))
    assert closure("samplers") <= {"samplers", "schedules"}


@pytest.mark.parametrize("name", ["model", "attention"])
def test_model_and_attention_do_not_reach_pipeline_app_or_train(name):
    forbidden = {"pipeline", "app", "train", "cli", "ui"}
    direct = vidgen_modules(PKG / f"{name}.py")
    assert not (direct & forbidden), direct
    assert not any(is_top(n, "app") or is_top(n, "gradio") for n in imports(PKG / f"{name}.py"))
    # ... not even indirectly.
    assert not (closure(name) & forbidden), closure(name)


def test_judge_imports_only_world():
    path = PKG / "judge.py"
    if not path.exists():
        pytest.skip("no vidgen/judge.py yet")
    assert vidgen_modules(path) <= {"world"}, vidgen_modules(path)
    assert closure("judge") <= {"judge", "world"} | closure("world")
