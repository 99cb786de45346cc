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
SUPPORTED_NETWORK = ("Conv2d, BatchNorm2d (folded into the layer before), ReLU, MaxPool2d, AvgPool2d, "
                     "AdaptiveAvgPool2d, ChannelShuffle, Flatten, Linear, Identity, Dropout (and nested Sequential); "
                     "a module with branches (a Concat) goes through ONNX: torch.onnx.export(module, x, path, dynamo=False) "
                     "with a fixed batch size, then sw.from_onnx(path)")


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
    checked on the user's own data.

    A Sequential with convolutions (``Conv2d`` with groups, ``BatchNorm2d``
    folded into the layer before it, pooling, ``ChannelShuffle``) becomes an
    `sw.Network`; it needs `example_input` ``(B, C, H, W)`` for its input
    shape, and is checked on it the same way."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"from_torch() takes a torch.nn.Module, got {type(module).__name__}")
    nn = torch.nn
    if any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                          nn.ChannelShuffle)) for _, m in _leaves(module, "")):
        return _network(module, example_input)
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


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _network(module, example_input):
    """A Sequential with convolutions as an `sw.Network` (see `from_torch`)."""
    from ..net import lower, nchw_to_nhwc
    from .netbuilder import NetBuilder
    torch = _torch()
    nn = torch.nn
    source = f"the {type(module).__name__}"
    if example_input is None:
        raise ModelError(f"{source} has convolutions: give example_input (B, C, H, W); the network's input shape "
                         f"comes from it")
    x = torch.as_tensor(example_input)
    if x.ndim != 4:
        raise ModelError(f"{source}: example_input must be (B, C, H, W), got shape {tuple(x.shape)}")
    b = NetBuilder(source)
    numpy = lambda t: None if t is None else t.detach().cpu().double().numpy()
    for name, m in _leaves(module, ""):
        where = f"module {name} ({type(m).__name__})"
        if isinstance(m, nn.Conv2d):
            if _pair(m.dilation) != (1, 1) or isinstance(m.padding, str) or m.padding_mode != "zeros":
                raise b.error(where, "dilation, string padding and non-zero padding modes are not supported")
            b.conv(_weight(m), numpy(m.bias), _pair(m.stride), _pair(m.padding), m.groups, where)
        elif isinstance(m, nn.BatchNorm2d):
            if not m.track_running_stats or m.running_mean is None:
                raise b.error(where, "a BatchNorm without running statistics cannot be folded")
            gamma = numpy(m.weight) if m.affine else np.ones(m.num_features)
            beta = numpy(m.bias) if m.affine else np.zeros(m.num_features)
            b.batchnorm(gamma, beta, numpy(m.running_mean), numpy(m.running_var), m.eps, where)
        elif isinstance(m, nn.Linear):
            b.linear(_weight(m), numpy(m.bias), where)
        elif isinstance(m, nn.ReLU):
            b.relu(where)
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            if getattr(m, "ceil_mode", False) or _pair(getattr(m, "dilation", 1)) != (1, 1):
                raise b.error(where, "ceil_mode and dilation are not supported")
            if isinstance(m, nn.AvgPool2d) and (not m.count_include_pad or m.divisor_override):
                raise b.error(where, "the average must count the padding (count_include_pad, no divisor_override)")
            b.pool("max" if isinstance(m, nn.MaxPool2d) else "avg", _pair(m.kernel_size),
                   _pair(m.stride if m.stride is not None else m.kernel_size), _pair(m.padding), where)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            b.global_pool(_pair(m.output_size))
        elif isinstance(m, nn.ChannelShuffle):
            b.shuffle(m.groups)
        elif isinstance(m, nn.Flatten):
            if (m.start_dim, m.end_dim) != (1, -1):
                raise b.error(where, "only Flatten(1, -1), which keeps the batch, is supported")
            b.flatten()
        elif not isinstance(m, (nn.Identity, nn.Dropout)):
            raise b.error(where, f"not supported: OpenEIE imports {SUPPORTED_NETWORK}")
    net = b.network((int(x.shape[2]), int(x.shape[3]), int(x.shape[1])))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ref = module(x.to(next(module.parameters()).dtype)).double().numpy().reshape(x.shape[0], -1)
    finally:
        module.train(was_training)
    got = lower(net).forward(nchw_to_nhwc(x.double().numpy())).reshape(x.shape[0], -1)
    err = float(np.max(np.abs(got - ref), initial=0.0)) if got.shape == ref.shape else np.inf
    if err > 1e-4 * max(1.0, float(np.max(np.abs(ref), initial=0.0))):
        raise ModelError(f"{source}: the imported network differs from the module on example_input by up to "
                         f"{err:.3g}; the module does something the import did not read")
    return net
