"""Moving pretrained weights into a fresh network: ``full`` and ``hybrid`` transfer.

``full`` reuses every tensor whose name and shape match (a source with another head, such as
ImageNet's 1000 classes, leaves the classifier at its random init). ``hybrid`` (Raghu et al.,
"Transfusion") reuses the weights up to and including a named stage (block2 in the paper) and
leaves everything after it randomly initialised.
"""
from __future__ import annotations

from torch import nn

STAGE_NAMES = ("conv1", "block1", "block2", "block3", "block4")


def stage_boundaries(model: nn.Module, stages: tuple[str, ...] = ()) -> dict[str, str]:
    """Map conv1, block1 .. block4 to module names, from explicit ``stages`` or timm's ``feature_info``."""
    if not stages:
        info = getattr(model, "feature_info", None)
        if info is None:
            raise ValueError(f"{type(model).__name__} has no timm feature_info; declare BackboneSpec.stages")
        stages = tuple(f["module"] for f in info)
    if len(stages) < len(STAGE_NAMES):
        raise ValueError(f"need {len(STAGE_NAMES)} stages ({', '.join(STAGE_NAMES)}), got {list(stages)}")
    # Models with more than five taps (rare) keep the last five, i.e. the deepest of each resolution.
    return dict(zip(STAGE_NAMES, stages[-len(STAGE_NAMES):]))


def _prefix_of(key: str, module: str) -> bool:
    return key == module or key.startswith(module + ".")


def keys_up_to(state_keys: list[str], modules: list[str], index: int) -> list[str]:
    """State-dict keys up to and including stage ``modules[index]``, in the model's (forward) order.

    timm's convolutional networks register parameters in forward order, so "everything up to the last
    key of block2" is the stem plus blocks 1-2. A stage without parameters of its own (resnet's ``act1``
    as conv1) ends just before the first key of the next stage.
    """
    hits = [i for i, k in enumerate(state_keys) if _prefix_of(k, modules[index])]
    if hits:
        return state_keys[: hits[-1] + 1]
    nxt = [i for i, k in enumerate(state_keys) if index + 1 < len(modules) and _prefix_of(k, modules[index + 1])]
    if not nxt:
        raise ValueError(f"cannot place stage module {modules[index]!r} among the model's parameters")
    return state_keys[: nxt[0]]


def transfer_weights(model: nn.Module, state: dict, *, mode: str = "full", hybrid_stage: str = "block2",
                     stages: tuple[str, ...] = ()) -> dict:
    """Copy ``state`` into ``model`` in place according to ``mode``; return what was copied.

    Returns:
        ``{"loaded": n, "kept_random": n, "skipped_shape": [keys], "boundary": module or None}``.
    """
    own = model.state_dict()
    keys = list(own)
    boundary = None
    if mode == "hybrid":
        bounds = stage_boundaries(model, stages)
        boundary = bounds[hybrid_stage]
        allowed = set(keys_up_to(keys, list(bounds.values()), STAGE_NAMES.index(hybrid_stage)))
    elif mode == "full":
        allowed = set(keys)
    else:
        raise ValueError(f"transfer mode must be 'full' or 'hybrid', got {mode!r}")
    new, skipped = {}, []
    for k in keys:
        if k in allowed and k in state:
            if tuple(state[k].shape) == tuple(own[k].shape):
                new[k] = state[k]
            else:
                skipped.append(k)
    missing_all = [k for k in keys if k not in state]
    if len(missing_all) == len(keys):
        raise ValueError("pretrained state dict shares no tensor name with the model: wrong architecture?")
    model.load_state_dict(new, strict=False)
    return {"loaded": len(new), "kept_random": len(keys) - len(new), "skipped_shape": skipped, "boundary": boundary}
