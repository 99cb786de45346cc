"""Models from where users come from: PyTorch modules and ONNX graphs, as
chains of `sw.Layer`.

Both importers read the same thing, a chain of affine layers each optionally
followed by a ReLU, and build it with `Chain`; what they cannot express on
the accelerator (a convolution, a residual branch, a ReLU before the first
layer) is refused with an error that names the module or node.
"""

from __future__ import annotations

from pathlib import Path

from ..model import ModelError
from .chain import Chain
from .from_onnx import from_onnx
from .from_torch import from_torch, load_torch

__all__ = ["Chain", "from_torch", "from_onnx", "load_any", "SUFFIXES"]

SUFFIXES = {".npz": "an sw model (.npz)", ".onnx": "an ONNX graph", ".pt": "a pickled PyTorch module",
            ".pth": "a pickled PyTorch module"}


def load_any(path):
    """A model from a file, by its suffix: ``.npz`` (`sw.load_model`: float
    or compressed), ``.onnx`` (`from_onnx`), ``.pt``/``.pth`` (a whole
    module saved with ``torch.save(module, path)``; unpickling runs code, so
    only load files you trust)."""
    from ..modelio import load_model
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return from_onnx(path)
    if suffix in (".pt", ".pth"):
        return load_torch(path)
    if suffix == ".npz" or not suffix:
        return load_model(path)
    raise ModelError(f"{path}: unknown model file suffix {path.suffix!r}; OpenEIE reads "
                     + ", ".join(f"{k} ({v})" for k, v in SUFFIXES.items()))
