"""The golden model: runs an `Image` bit-exactly as DESIGN.md section 5 says.

The RTL is checked against this on every output of every layer. It decodes
the image's own entries (not the model it came from), so a packing bug shows
up here too. Vectorised: one sparse matrix product per layer for the whole
batch; the int64 sum is exact (|product| < 2**62 / n_in), so wrapping it once
equals wrapping after every addition.
"""

from __future__ import annotations

import numpy as np

from .fixedpoint import signed_range, wrap, writeback
from .image import Image

__all__ = ["run", "check_input", "output_dtype"]


def output_dtype(act_bits: int):
    """The smallest numpy signed integer type holding `act_bits` bits."""
    for dt in (np.int8, np.int16, np.int32, np.int64):
        if np.iinfo(dt).bits >= act_bits:
            return dt
    raise ValueError(f"act_bits = {act_bits} is too wide")


def check_input(image: Image, x) -> np.ndarray:
    """Validate inputs for `image`: integers in the signed ``act_bits`` range,
    shape ``(n_in,)`` or ``(B, n_in)``. Returns a 2-D int64 copy."""
    x = np.asarray(x)
    if x.dtype == object or not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"inputs must be integers in the accelerator's fixed-point format "
                        f"(see sw.quantize_input), got dtype {x.dtype}")
    if x.ndim not in (1, 2) or x.shape[-1] != image.n_in:
        raise ValueError(f"inputs must have shape ({image.n_in},) or (B, {image.n_in}) for this image, "
                         f"got {x.shape}")
    lo, hi = signed_range(image.config.act_bits)
    if x.size and (x.min() < lo or x.max() > hi):
        flat = np.argmax((x.reshape(-1) < lo) | (x.reshape(-1) > hi))
        pos = np.unravel_index(flat, x.shape)
        raise ValueError(f"input {tuple(int(p) for p in pos)} = {x[pos]} is outside the "
                         f"act_bits = {image.config.act_bits} range {lo}..{hi}")
    return np.atleast_2d(x.astype(np.int64))


def run_layers(image: Image, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output (int64, ``(B, n_out)``) for validated inputs."""
    c = image.config
    outs = []
    for layer in image.layers:
        acc = wrap(layer.matvec(x) + layer.bias, c.acc_bits)
        x = writeback(acc, layer.shift, layer.relu, c.act_bits)
        outs.append(x)
    return outs


def run(image: Image, x, trace: bool = False):
    """Run `image` on `x` (``(n_in,)`` or ``(B, n_in)`` integers).

    Returns the last layer's outputs with the same leading shape as `x`
    (int16 for the default 16-bit activations), or with ``trace=True`` a
    list of every layer's outputs.
    """
    squeeze = np.ndim(x) == 1
    outs = run_layers(image, check_input(image, x))
    dt = output_dtype(image.config.act_bits)
    outs = [o.astype(dt)[0] if squeeze else o.astype(dt) for o in outs]
    return outs if trace else outs[-1]
