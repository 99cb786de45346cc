"""The golden model: runs an `Image` bit-exactly as docs/design.md §5 says.

The RTL is checked against this on every output of every layer. It decodes
the image's own entries (not the model it came from), so a packing bug shows
up here too. Vectorised: one sparse matrix product per layer for the whole
batch; the int64 sum is exact (|product| < 2**62 / n_in), so wrapping it once
equals wrapping after every addition.
"""

from __future__ import annotations

import numpy as np

from .arrays import as_array
from .fixedpoint import signed_range, wrap, writeback
from .image import Image

__all__ = ["run", "run_network", "margin", "exits_taken", "layers_run", "check_input", "output_dtype", "accumulators", "accumulator_wraps"]


def output_dtype(act_bits: int):
    """The smallest numpy signed integer type holding `act_bits` bits."""
    for dt in (np.int8, np.int16, np.int32, np.int64):
        if np.iinfo(dt).bits >= act_bits:
            return dt
    raise ValueError(f"act_bits = {act_bits} is too wide")


def check_input(image: Image, x) -> np.ndarray:
    """Validate inputs for `image`: integers in the signed ``act_bits`` range,
    shape ``(n_in,)`` or ``(B, n_in)`` (``B`` may be 0). Returns a 2-D int64
    copy."""
    x = as_array(x, "inputs", TypeError)
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.integer):
        raise TypeError(f"inputs must be integers in the accelerator's fixed-point format "
                        f"(see sw.quantize_input), got dtype {x.dtype}")
    if x.ndim not in (1, 2) or x.shape[-1] != image.n_in:
        n = image.n_in // x.shape[-1] if x.ndim in (1, 2) and 0 < x.shape[-1] < image.n_in else 0
        hint = (f" (if it was packed from sw.batched(model, {n}), stack {n} vectors a run: sw.stack(x, {n}), or "
                f"--batch {n} on the command line)") if n > 1 and image.n_in % x.shape[-1] == 0 else ""
        raise ValueError(f"inputs must have shape ({image.n_in},) or (B, {image.n_in}) for this image, "
                         f"got {x.shape}{hint}")
    lo, hi = signed_range(image.config.act_bits)
    if x.dtype == np.uint64 and x.size and int(x.max()) > hi:
        x = np.minimum(x, np.uint64(hi + 1))            # out of range either way; int64 cannot hold it
    x = x.astype(np.int64)
    if x.size and (x.min() < lo or x.max() > hi):
        flat = np.argmax((x.reshape(-1) < lo) | (x.reshape(-1) > hi))
        pos = np.unravel_index(flat, x.shape)
        raise ValueError(f"input {tuple(int(p) for p in pos)} = {x[pos]} is outside the "
                         f"act_bits = {image.config.act_bits} range {lo}..{hi}")
    return np.atleast_2d(x)


def accumulators(image: Image, x: np.ndarray, layers: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer (the first `layers`, default all), ``(exact, wrapped)``
    accumulators ``(B, n_out)`` int64 for validated inputs: the exact ``W x
    + bias`` and its value modulo ``2**acc_bits``, which is what the hardware
    holds."""
    c = image.config
    out, ys = [], []
    for layer in image.layers[:layers]:
        src = x if layer.src == -1 else ys[layer.src]      # the layer it reads (an exit head: not the one before)
        exact = layer.matvec(src) + layer.bias
        acc = wrap(exact, c.acc_bits)
        out.append((exact, acc))
        ys.append(writeback(acc, layer.shift, layer.relu, c.act_bits))
    return out


def run_layers(image: Image, x: np.ndarray, layers: int | None = None) -> list[np.ndarray]:
    """Every layer's output (int64, ``(B, n_out)``; the first `layers`,
    default all) for validated inputs, in the hardware's order
    (`Image.model_order` puts them back)."""
    c = image.config
    return [writeback(acc, layer.shift, layer.relu, c.act_bits)
            for layer, (_, acc) in zip(image.layers, accumulators(image, x, layers))]


def accumulator_wraps(image: Image, x) -> np.ndarray:
    """``wraps[b, l]``: how many of layer ``l``'s accumulators wrapped (left
    the signed ``acc_bits`` range) for input ``b``. The result is still the
    bit-exact one the hardware gives, but usually not the intended one: a
    wrapped accumulator flips sign. Nonzero counts mean inputs larger than
    the model's formats were chosen for (`sw.compress`'s ``acc_headroom``)."""
    x = check_input(image, x)
    out = np.zeros((x.shape[0], len(image.layers)), dtype=np.int64)
    for l, (exact, acc) in enumerate(accumulators(image, x)):
        out[:, l] = np.count_nonzero(exact != acc, axis=1)
    return out


def margin(y: np.ndarray) -> np.ndarray:
    """Per row of `y` ``(B, n)``, its largest value minus its second largest
    (the exit test's confidence, docs/design.md §15)."""
    top = np.sort(y, axis=1)
    return top[:, -1] - top[:, -2]


def exits_taken(image: Image, ys: list[np.ndarray]) -> np.ndarray:
    """For every layer's outputs `ys` (`run_layers`), which exit each input
    leaves by: ``k`` for the ``k``-th exit head in the order the layers run
    (the first whose margin reaches its threshold), 0 for none (the last
    layer's outputs)."""
    taken = np.zeros(ys[-1].shape[0], dtype=np.int64)
    for k, l in enumerate(image.exits, start=1):
        hit = (taken == 0) & (margin(ys[l]) >= image.layers[l].exit_threshold)
        taken[hit] = k
    return taken


def layers_run(image: Image, taken: np.ndarray) -> np.ndarray:
    """How many layers of the table run for inputs that leave by exits
    `taken` (`exits_taken`): up to and including the exit's head, or all."""
    ends = np.array([len(image.layers)] + [l + 1 for l in image.exits], dtype=np.int64)
    return ends[np.asarray(taken, dtype=np.int64)]


def run(image: Image, x, trace: bool = False, exits: bool = False):
    """Run `image` on `x` (``(n_in,)`` or ``(B, n_in)`` integers).

    Returns the run's outputs with the same leading shape as `x` (int16 for
    the default 16-bit activations): the last layer's, or for an input that
    leaves by an exit head, that head's. With ``exits=True``, also which
    exit each input left by (`exits_taken`; 0: none). With ``trace=True``,
    a list of every layer's outputs instead (every layer computed). An empty
    batch ``(0, n_in)`` gives ``(0, n_out)``.
    """
    x = as_array(x, "inputs", TypeError)
    squeeze = x.ndim == 1
    ys = run_layers(image, check_input(image, x))
    dt = output_dtype(image.config.act_bits)
    if trace:
        outs = [image.model_order(y, l).astype(dt) for l, y in enumerate(ys)]
        return [o[0] for o in outs] if squeeze else outs
    taken = exits_taken(image, ys)
    y = ys[-1]
    for k, l in enumerate(image.exits, start=1):       # the outputs of the layer each run ends at
        y = np.where((taken == k)[:, None], ys[l], y)
    y = image.run_order(y, taken).astype(dt)
    if squeeze:
        y, taken = y[0], taken[0]
    return (y, taken) if exits else y


def run_network(program, x, trace: bool = False):
    """Run a packed network (`sw.net.NetworkProgram`) on integer images
    ``(N, H, W, C)``: each program bit-exactly as `run`, the host steps
    between (see `sw.net.run_network`)."""
    from .net.program import run_network as run_program
    return run_program(program, x, trace)
