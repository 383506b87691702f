"""Moving pretrained weights into a fresh network: ``full`` and ``hybrid`` transfer.

``full`` reuses every tensor whose name and shape match (a source with another head, such as
ImageNet's 1000 classes, leaves the classifier at its random init). ``hybrid`` (Raghu et al.,
"Transfusion") reuses the weights up to and including a named stage (block2 in the paper); the
network it loads into is normally a *slim* one from :func:`bench.backbones.hybrid.create_hybrid`,
whose later stages are narrower and randomly initialised. Which tensors sit up to the stage comes
from a traced forward pass (:mod:`bench.backbones.stages`).

A first-layer weight of shape ``(O, 3, k, k)`` loaded into a 1-channel network (``in_chans=1``) is
summed over its input channels (timm's ``adapt_input_conv``): the same function on gray input
repeated into three equally normalised channels.
"""
from __future__ import annotations

from torch import nn

from bench.backbones.specs import STAGE_NAMES
from bench.backbones.stages import spec_for, stage_boundaries, stage_names, stage_of_tensors

__all__ = ["MIN_MATCHED", "PartialWeightsError", "STAGE_NAMES", "stage_boundaries", "transfer_weights"]

MIN_MATCHED = 0.9
"""Share of the tensors a transfer should load (those before the head) below which it stops: a weights file that
fills a few tensors (a torchvision ``vgg16`` file for timm's ``vgg16_bn``) is the wrong file, not a pre-training."""


class PartialWeightsError(ValueError):
    """A weights file filled fewer than :data:`MIN_MATCHED` of the tensors before the head."""


def transfer_weights(model: nn.Module, state: dict, *, mode: str = "full", hybrid_stage: str = "block2",
                     stages: tuple[str, ...] = (), spec=None, accept_partial: bool = False) -> dict:
    """Copy ``state`` into ``model`` in place according to ``mode``; return what was copied.

    A network built by ``create_hybrid`` maps its own keys to the source's (``bench_source_prefix``)
    and adds its slimming summary (``bench_hybrid``) to the result.

    The tensors the mode should fill are those it reuses (all, or up to ``hybrid_stage``) minus the head's (an
    ImageNet head never fits) and minus ``num_batches_tracked``. When fewer than :data:`MIN_MATCHED` of them
    load, it raises :class:`PartialWeightsError` (nothing is loaded) unless ``accept_partial``.

    Returns:
        ``{"loaded": n, "kept_random": n, "skipped_shape": [keys], "adapted_in_chans": [keys],
        "boundary": module or None, "hybrid_stage": stage or None, "expected_before_head": n,
        "matched_before_head": n, "partial": bool, **slimming summary}``.
    """
    own = model.state_dict()
    keys = list(own)
    prefix = getattr(model, "bench_source_prefix", "")
    boundary = None
    if mode == "hybrid":
        spec = spec_for(model, spec or tuple(stages) or None)
        names = stage_names(model, spec)
        if hybrid_stage not in names:
            raise ValueError(f"hybrid_stage must be one of {', '.join(names)} (the stages of this network); got "
                             f"{hybrid_stage!r}")
        boundary = stage_boundaries(model, spec)[hybrid_stage]
        upto = set(names[: names.index(hybrid_stage) + 1])
        allowed = {k for k, s in stage_of_tensors(model, spec).items() if s in upto}
    elif mode == "full":
        allowed = set(keys)
    else:
        raise ValueError(f"transfer mode must be 'full' or 'hybrid', got {mode!r}")
    new, skipped, adapted = {}, [], []
    for k in keys:
        src = k[len(prefix):] if k.startswith(prefix) else None
        if k not in allowed or src not in state:
            continue
        w = state[src]
        if tuple(w.shape) == tuple(own[k].shape):
            new[k] = w
        elif w.ndim == 4 and own[k].ndim == 4 and own[k].shape[1] == 1 and w.shape[1] == 3 \
                and w.shape[0] == own[k].shape[0] and w.shape[2:] == own[k].shape[2:]:
            new[k] = w.sum(dim=1, keepdim=True)  # RGB first layer -> gray input (timm adapt_input_conv)
            adapted.append(k)
        else:
            skipped.append(k)
    if not any((k[len(prefix):] if k.startswith(prefix) else None) in state for k in keys):
        raise ValueError("pretrained state dict shares no tensor name with the model: wrong architecture?")
    stage_of = stage_of_tensors(model, spec_for(model, spec or tuple(stages) or None))
    expected = [k for k in keys if k in allowed and stage_of[k] != "head" and not k.endswith("num_batches_tracked")]
    matched = sum(1 for k in expected if k in new)
    partial = bool(expected) and matched < MIN_MATCHED * len(expected)
    if partial and not accept_partial:
        missing = [k for k in expected if k not in new]
        raise PartialWeightsError(
            f"only {matched} of the {len(expected)} tensors before the head matched (name and shape); not matched: "
            f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}. It is probably the weights of another "
            "architecture (e.g. torchvision's vgg16 for timm's vgg16_bn); use the backbone's own weights, or set "
            "'accept_partial_weights: true' in the suite to train on anyway")
    model.load_state_dict(new, strict=False)
    out = {"loaded": len(new), "kept_random": len(keys) - len(new), "skipped_shape": skipped,
           "adapted_in_chans": adapted, "boundary": boundary, "hybrid_stage": hybrid_stage if mode == "hybrid" else None,
           "expected_before_head": len(expected), "matched_before_head": matched, "partial": partial}
    out.update(getattr(model, "bench_hybrid", {}) or {})
    return out
