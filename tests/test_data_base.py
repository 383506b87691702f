"""bench.data.base: the dataset contract is a leaf, and the modules of bench.data import it, never the package.

``bench/data/__init__.py`` registers the built-in adapters by importing them; an adapter that imported
``bench.data`` back (or a helper that imported an adapter) would close an import circle again (issue 14).
"""
from __future__ import annotations

import ast
from pathlib import Path

import bench.data
from bench.data import base, items

DATA = Path(bench.data.__file__).parent


def _imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` for every ``from bench.data... import name`` in a file, inside functions too."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench.data"):
            out += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names if a.name.startswith("bench.data")]
    return out


def _modules() -> list[Path]:
    return sorted(p for p in DATA.rglob("*.py") if p != DATA / "__init__.py")


def test_base_imports_nothing_from_bench_data():
    assert _imports(DATA / "base.py") == []


def test_no_module_imports_the_package_itself():
    """``from bench.data import imageio`` (a module) is fine; ``from bench.data import ArrayDataset`` is not."""
    bad = []
    for p in _modules():
        for module, name in _imports(p):
            if module == "bench.data" and not (DATA / f"{name}.py").exists() and not (DATA / name).is_dir():
                bad.append(f"{p.relative_to(DATA)}: from bench.data import {name}")
    assert not bad, "import from bench.data.base instead:\n" + "\n".join(bad)


def test_no_private_name_imported_across_modules():
    bad = [f"{p.relative_to(DATA)}: from {m} import {n}" for p in _modules() for m, n in _imports(p)
           if n.startswith("_")]
    assert not bad, "\n".join(bad)


def test_package_reexports_the_base_objects():
    for name in ("ArrayDataset", "DatasetSpec", "DatasetOptions", "DATASETS", "data_root", "load_dataset",
                 "register_dataset", "DatasetFormatError"):
        assert getattr(bench.data, name) is getattr(base, name)
    assert items.DatasetFormatError is base.DatasetFormatError


def test_builtins_are_registered_once_by_the_package():
    builtins = {"cbis-ddsm", "inbreast", "mias", "busi", "rodrigues-us", "breastmnist", "folder", "csv", "synth-ddsm",
                "synth-inbreast", "synth-mias", "synth-ultrasound", "synth-obvious"}
    assert builtins <= set(base.DATASETS.names())
    assert {base.DATASETS.origin_of(n) for n in builtins} == {"built-in"}
