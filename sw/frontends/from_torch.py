"""`sw.from_torch`: a PyTorch ``nn.Sequential`` as `sw.Layer`s.

PyTorch is an optional extra (``pip install 'openeie[torch]'``); nothing
here imports it until it is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model import Layer, ModelError
from .chain import Chain

__all__ = ["from_torch", "load_torch"]

SUPPORTED = "Linear, ReLU, Flatten, Identity, Dropout (and nested Sequential)"


def _torch():
    try:
        import torch
    except ImportError:
        raise ModelError("PyTorch is not installed: pip install 'openeie[torch]' (or torch itself)") from None
    return torch


def _leaves(module, prefix: str):
    """The modules of a (nested) Sequential in order, with their dotted names."""
    torch = _torch()
    if isinstance(module, torch.nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix or type(module).__name__, module


def _weight(linear) -> np.ndarray:
    """The weight a pruned module computes with: ``weight_orig *
    weight_mask`` while `torch.nn.utils.prune` is attached (`weight` is only
    refreshed by the forward pre-hook), else `weight`."""
    params = dict(linear.named_parameters(recurse=False))
    buffers = dict(linear.named_buffers(recurse=False))
    if "weight_orig" in params and "weight_mask" in buffers:
        w = params["weight_orig"] * buffers["weight_mask"]
    else:
        w = linear.weight
    return w.detach().cpu().double().numpy()


def from_torch(module, example_input=None) -> list[Layer]:
    """Float `sw.Layer`s from a PyTorch module: an ``nn.Sequential`` (nested
    ones are flattened) of ``Linear``, ``ReLU``, ``Flatten``, ``Identity``
    and ``Dropout`` (dropped: inference), or one ``Linear``. Modules pruned
    with ``torch.nn.utils.prune`` are read as ``weight_orig * weight_mask``
    (or ``weight`` after ``prune.remove``). A ``ReLU`` after a ``Linear``
    becomes that layer's ReLU; a ``Linear`` with none after it is linear.

    `example_input` (a tensor or array ``(B, ...)``), if given, is run
    through both the module (in eval mode) and the imported layers, and a
    difference beyond float rounding raises `ModelError`: the import is
    checked on the user's own data."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"from_torch() takes a torch.nn.Module, got {type(module).__name__}")
    chain = Chain(f"the {type(module).__name__}")
    for name, m in _leaves(module, ""):
        where = f"module {name} ({type(m).__name__})"
        if isinstance(m, torch.nn.Linear):
            chain.affine(_weight(m), None if m.bias is None else m.bias.detach().cpu().double().numpy(), where)
        elif isinstance(m, torch.nn.ReLU):
            chain.relu(where)
        elif isinstance(m, (torch.nn.Flatten, torch.nn.Identity, torch.nn.Dropout)):
            if isinstance(m, torch.nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
                raise ModelError(f"{chain.source}: {where} flattens dimensions {m.start_dim}..{m.end_dim}: "
                                 f"only Flatten(1, -1), which keeps the batch, is supported")
        else:
            raise ModelError(f"{chain.source}: {where} is not supported: OpenEIE imports {SUPPORTED}")
    layers = chain.layers()
    if example_input is not None:
        _check(module, layers, example_input, chain.source)
    return layers


def _check(module, layers, example_input, source):
    torch = _torch()
    x = torch.as_tensor(example_input)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ref = module(x.to(next(module.parameters()).dtype)).double().numpy()
    finally:
        module.train(was_training)
    flat = x.double().numpy().reshape(x.shape[0], -1)
    if flat.shape[1] != layers[0].n_in:
        raise ModelError(f"{source}: example_input has {flat.shape[1]} values per vector, the first "
                         f"layer takes {layers[0].n_in}")
    h = flat
    for layer in layers:
        h = layer.forward(h)
    err = float(np.max(np.abs(h - ref.reshape(h.shape)), initial=0.0))
    scale = float(np.max(np.abs(ref), initial=0.0))
    if err > 1e-4 * max(1.0, scale):
        raise ModelError(f"{source}: the imported layers differ from the module on example_input by up to "
                         f"{err:.3g} (outputs up to {scale:.3g}); the module does something the import did not "
                         f"read")


def load_torch(path) -> list[Layer]:
    """A whole module saved with ``torch.save(module, path)``. Unpickling
    runs the file's code: only load files you trust."""
    torch = _torch()
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:      # torch raises many kinds for a file that is not its own
        raise ModelError(f"{path}: not a PyTorch file torch.load can read ({type(e).__name__}: {e})") from None
    if isinstance(obj, dict):
        raise ModelError(f"{path}: holds a state_dict (a dict of {len(obj)} tensors), which has no "
                         f"architecture: save the module itself (torch.save(module, path)) or export it to "
                         f"ONNX, or build the module and call sw.from_torch(module)")
    try:
        return from_torch(obj)
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None
