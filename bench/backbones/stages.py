"""Named stages of a network (conv1, block1 .. block4, head; or the backbone's own) and what belongs to each.

The training modes (frozen backbone, unfreeze from a stage, staged schedules), hybrid transfer and
per-layer analyses all ask the same question: *which parameters sit up to, or after, a stage?* The
answer here comes from one traced forward pass on a tiny input (forward hooks record the order in
which modules run), so it holds for any ``nn.Module`` whatever order it registers its children in.
A module belongs to the first stage whose module has finished when it first runs; modules that run
after the last stage (pooling, classifier) are the ``"head"``. A backbone has one or more stages; their names are
its spec's (``BackboneSpec.stage_names``: conv1, block1 .. block4 for the five stages of every built-in).

Public helpers (``spec`` may be omitted for networks made by ``create_backbone``/``create_hybrid``)::

    stage_names(model, spec)              ("conv1", "block1", ..., "block4"): the network's stages in order
    stage_modules(model, spec)            {"conv1": [modules], ..., "block4": [...], "head": [...]}
    stage_of_tensors(model, spec)         {state_dict key: stage}
    parameters_after(model, "block2")     parameters of block3, block4 and the head (what stays trainable)
    freeze_up_to(model, "block2")         requires_grad=False for conv1 .. block2; returns the frozen names
    stage_shapes(model, spec)             {stage: output shape (C, H, W)} on a tiny input

Freezing does not stop BatchNorm layers from updating their running statistics in train mode: put
``stage_modules(...)[s]``'s BatchNorm modules in eval mode as well if frozen must mean frozen.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from bench.backbones.specs import STAGE_NAMES, default_stage_names, spec_stage_names

if TYPE_CHECKING:
    from bench.backbones.specs import BackboneSpec

HEAD = "head"
ALL_STAGES = STAGE_NAMES + (HEAD,)  # those of a five-stage backbone
_FALLBACK_SIZE = 96  # a side every built-in accepts (inception_v3 needs >= 75)


def spec_for(model: nn.Module, spec: BackboneSpec | tuple[str, ...] | None) -> BackboneSpec | tuple | None:
    """``spec`` as given (a spec or a tuple of stage module names), else the spec of the backbone
    the model was created from (``create_backbone`` tags its networks with ``bench_backbone``)."""
    if spec:
        return spec
    name = getattr(model, "bench_backbone", None)
    if name:
        from bench.backbones.specs import BACKBONES

        return BACKBONES.get(name)
    return None


def stage_boundaries(model: nn.Module, stages: tuple[str, ...] | BackboneSpec | None = ()) -> dict[str, str]:
    """Map each stage name (conv1, block1 .. block4 for five stages) to its module name, in forward order.

    From, in order: the model's own ``bench_stages`` (networks built by ``create_hybrid``: a mapping, or a tuple of
    module names), ``stages`` (a spec, with its ``stage_names``; or a tuple of module names, named conv1,
    block1 ..), timm's ``feature_info`` (its deepest five taps that own parameters, or all if fewer).
    """
    own = getattr(model, "bench_stages", None)
    if own:
        return dict(own) if isinstance(own, dict) else dict(zip(default_stage_names(len(own)), own))
    if stages is not None and not isinstance(stages, (tuple, list)):
        return dict(zip(spec_stage_names(stages), stages.stages))
    if not stages:
        info = getattr(model, "feature_info", None)
        if info is None:
            raise ValueError(f"{type(model).__name__} has no timm feature_info; declare BackboneSpec.stages")
        from bench.backbones.probe import nonempty_taps

        stages = tuple(nonempty_taps(model, [f["module"] for f in info]))[-len(STAGE_NAMES):]
    if not stages:
        raise ValueError(f"{type(model).__name__}: no stage module to map; declare BackboneSpec.stages")
    return dict(zip(default_stage_names(len(stages)), stages))


def stage_names(model: nn.Module, spec: BackboneSpec | None = None) -> tuple[str, ...]:
    """The network's stage names in forward order (conv1, block1 .. block4 for a five-stage backbone)."""
    return tuple(stage_boundaries(model, spec_for(model, spec)))


def _input_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


@torch.no_grad()
def trace_stages(model: nn.Module, spec) -> tuple[dict[str, int], dict[str, int], dict[str, tuple]]:
    """One forward pass: first-call index of every module, end index and output shape of every stage."""
    bounds = stage_boundaries(model, spec)
    size = max(getattr(spec, "min_size", _FALLBACK_SIZE), getattr(model, "bench_min_size", 0), 32)
    first: dict[str, int] = {}
    ends: dict[str, int] = {}
    shapes: dict[str, tuple] = {}
    counter = [0]
    handles = []
    by_module = {name: stage for stage, name in bounds.items()}

    def pre(name):
        def hook(mod, args):
            counter[0] += 1
            first.setdefault(name, counter[0])
        return hook

    def post(stage):
        def hook(mod, args, out):
            ends.setdefault(stage, counter[0])
            if isinstance(out, torch.Tensor):
                shapes.setdefault(stage, tuple(out.shape[1:]))
        return hook

    for name, mod in model.named_modules():
        handles.append(mod.register_forward_pre_hook(pre(name)))
        if name in by_module:
            # prepend: run before any hook that ends the forward early (hybrid trunks)
            handles.append(mod.register_forward_hook(post(by_module[name]), prepend=True))
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        x = torch.zeros(1, _input_channels(model), size, size, device=param.device if param is not None else "cpu")
        model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    missing = [s for s in bounds if s not in ends]
    if missing:
        raise ValueError(f"stage module(s) {', '.join(repr(bounds[s]) for s in missing)} ({', '.join(missing)}) "
                         f"never ran in {type(model).__name__}'s forward; fix BackboneSpec.stages")
    return first, {s: ends[s] for s in bounds}, shapes  # ends in the stages' order


def _stage_of(index: int | None, ends: dict[str, int]) -> str:
    if index is None:
        return HEAD
    for stage, end in ends.items():
        if index <= end:
            return stage
    return HEAD


def stage_modules(model: nn.Module, spec: BackboneSpec | None = None) -> dict[str, list[nn.Module]]:
    """The modules owning parameters or buffers, grouped by stage (conv1 .. block4, then ``"head"``)."""
    spec = spec_for(model, spec)
    first, ends, _ = trace_stages(model, spec)
    out: dict[str, list[nn.Module]] = {s: [] for s in (*ends, HEAD)}
    for name, mod in model.named_modules():
        if any(True for _ in mod.parameters(recurse=False)) or any(True for _ in mod.buffers(recurse=False)):
            out[_stage_of(first.get(name), ends)].append(mod)
    return out


def stage_of_tensors(model: nn.Module, spec: BackboneSpec | None = None) -> dict[str, str]:
    """The stage of every state-dict key (parameters and persistent buffers)."""
    spec = spec_for(model, spec)
    first, ends, _ = trace_stages(model, spec)
    owner_stage = {name: _stage_of(first.get(name), ends) for name, _ in model.named_modules()}
    return {k: owner_stage[k.rpartition(".")[0]] for k in model.state_dict()}


def parameters_after(model: nn.Module, stage: str, spec: BackboneSpec | None = None) -> list[nn.Parameter]:
    """Parameters of every stage strictly after ``stage`` (the head included): what stays trainable."""
    order = _check_stage(stage, model, spec)
    keep = set(order[order.index(stage) + 1:])
    mods = stage_modules(model, spec)
    return [p for s in keep for m in mods[s] for p in m.parameters(recurse=False)]


def freeze_up_to(model: nn.Module, stage: str, spec: BackboneSpec | None = None) -> list[str]:
    """Set ``requires_grad=False`` on every parameter of conv1 .. ``stage``; return the frozen names.

    Give only ``[p for p in model.parameters() if p.requires_grad]`` (or :func:`parameters_after`) to the
    optimiser, and keep the frozen stages' BatchNorm layers in eval mode (see the module docstring).
    """
    order = _check_stage(stage, model, spec)
    stages = stage_of_tensors(model, spec)
    upto = set(order[: order.index(stage) + 1])
    frozen = []
    for name, p in model.named_parameters():
        if stages[name] in upto:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def stage_shapes(model: nn.Module, spec: BackboneSpec | None = None) -> dict[str, tuple]:
    """Output shape ``(C, H, W)`` of every stage on the tiny trace input (``spec.min_size`` square)."""
    _, ends, shapes = trace_stages(model, spec_for(model, spec))
    return {s: shapes.get(s) for s in ends}


def _check_stage(stage: str, model: nn.Module, spec) -> tuple[str, ...]:
    """The network's stages and the head, in order; ValueError naming them when ``stage`` is not one."""
    order = (*stage_names(model, spec), HEAD)
    if stage not in order:
        raise ValueError(f"stage must be one of {', '.join(order)} (the stages of this network); got {stage!r}")
    return order
