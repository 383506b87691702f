"""Loading a suite: find its file, read the YAML strictly, validate, import its plugins, check and expand it."""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from bench.registry import closest, import_plugin_module
from bench.suite.base import SUITES_DIR, SuiteError
from bench.suite.cells import expand
from bench.suite.checks import check_analysis, check_exclusions, check_names, check_per_backbone, check_suite_stages
from bench.suite.messages import check_unknown_keys, format_errors
from bench.suite.schema import Suite, SuiteConfig


def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A suite is named by its file stem in ``suites/`` or by a path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise SuiteError(f"{p}: no such suite file")
        return p
    for d in (Path.cwd() / "suites", SUITES_DIR):
        for ext in (".yaml", ".yml"):
            if (d / f"{name_or_path}{ext}").exists():
                return d / f"{name_or_path}{ext}"
    known = list_suites()
    hint = closest(str(name_or_path), known)
    raise SuiteError(f"unknown suite {str(name_or_path)!r}." + (f" Did you mean: {', '.join(hint)}?" if hint else "")
                     + f" Available: {', '.join(known) or '(none)'}; or pass a path to a .yaml file.")


def list_suites() -> list[str]:
    names = set()
    for d in (Path.cwd() / "suites", SUITES_DIR):
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.y*ml"))
    return sorted(names)


def suite_description(name: str) -> str:
    """A suite file's ``description:`` (read without validating the suite: fast, and never an error)."""
    try:
        raw = yaml.safe_load(resolve_suite_path(name).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001  (a broken suite still gets listed; `bench validate` says what is wrong)
        return ""
    return str(raw.get("description") or "") if isinstance(raw, dict) else ""


def load_suite(name_or_path: str | Path) -> Suite:
    """Read, validate and expand a suite. Raises :class:`SuiteError` with a precise message."""
    path = resolve_suite_path(name_or_path)
    if path.is_dir():
        raise SuiteError(f"{path}: is a folder, not a suite file; pass a .yaml file (or a suite name: bench list suites)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        tabs = " (YAML indents with spaces, never tabs)" if "'\\t'" in str(exc) else ""
        raise SuiteError(f"{path}: not valid YAML{tabs}: {exc}") from None
    if raw is None:
        raise SuiteError(f"{path}: the file is empty (or only comments); a suite is a YAML mapping with at least "
                         "'axes:' (see suites/smoke.yaml)")
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite is a YAML mapping with at least 'axes:'; got {type(raw).__name__}")
    return build_suite(raw, path=path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (plain YAML keeps the last one silently)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden here
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: let the constructor report it
            break
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice in one mapping (first on line {first + 1}, again on line "
                f"{key_node.start_mark.line + 1}); YAML would silently keep only the last one: remove one",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def build_suite(raw: dict, *, path: Path | None = None, name: str | None = None) -> Suite:
    where = str(path) if path else "<suite>"
    check_unknown_keys(raw, SuiteConfig, where, ())
    try:
        cfg = SuiteConfig(**raw)
    except ValidationError as exc:
        raise SuiteError(format_errors(exc, where)) from None
    suite_name = name or cfg.name or (path.stem if path else "suite")
    for mod in cfg.plugins:
        try:
            import_plugin_module(mod, adopt=_adopt_backbone_specs)
        except ImportError as exc:
            raise SuiteError(f"{where}: plugins: {exc}") from None
    check_names(cfg, where)
    check_per_backbone(cfg, where)
    check_exclusions(cfg, where)
    check_analysis(cfg, where)
    cells = expand(cfg, where=where)
    check_suite_stages(cfg, cells, where)  # hybrid_stage, trainable stages: each backbone's own
    return Suite(name=suite_name, path=path, config=cfg, cells=tuple(cells))


def _adopt_backbone_specs(module) -> None:
    """Register the module-level ``BackboneSpec`` objects of a plugin module that did not register them itself,
    so the module an entry point names (``my_pkg:SPEC``) also works as ``plugins: [my_pkg]``."""
    from bench.backbones import BACKBONES, BackboneSpec, register_backbone

    for value in list(vars(module).values()):
        if isinstance(value, BackboneSpec) and value.name not in BACKBONES.names():
            register_backbone(value)
