"""Where a model loses accuracy, layer by layer.

`compare(float_layers, image, x)` runs the same float inputs through

* the user's float model,
* the compressed model in float (the image's codebooks and biases
  dequantised: what pruning, weight sharing and the weights' fixed point
  leave), and
* the golden model (the bit-exact hardware: activations in fixed point,
  rounding, saturation, accumulators that wrap),

and reports per layer the error of each against the float model, the
outputs that saturated and the accumulators that wrapped, and the first
layer where the hardware's outputs leave the float model's by more than a
tolerance, with the stage that got there first.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import golden
from .arrays import check_ndim, real_array
from .compress import quantize_input, saturated_inputs
from .fixedpoint import from_fixed, round_shift, signed_range, writeback
from .image import Image
from .model import Layer, ModelError, check_chain
from .pack import unpack

__all__ = ["compare", "Comparison"]


def _error(y: np.ndarray, ref: np.ndarray) -> dict:
    diff = y - ref
    scale = float(np.sqrt(np.mean(ref ** 2))) if ref.size else 0.0
    rms = float(np.sqrt(np.mean(diff ** 2))) if diff.size else 0.0
    return {"max_abs": float(np.max(np.abs(diff), initial=0.0)), "rms": rms,
            "relative_rms": rms / scale if scale else (0.0 if rms == 0 else float("inf"))}


@dataclasses.dataclass
class Comparison:
    """What `compare` found. `layers`: one dict per layer with
    ``compressed_vs_float`` and ``hardware_vs_float`` (``max_abs``, ``rms``,
    ``relative_rms``), ``hardware_vs_compressed``, ``saturated`` and
    ``wrapped`` (counts over the batch), ``outputs`` (values compared).
    `first_divergent`: the first layer whose hardware outputs are off the
    float model's by more than `tolerance` relative RMS (None: none is),
    and `cause` there, the first that applies: ``"wrapped accumulators"``
    (they flip signs), ``"saturated inputs"``, ``"compression"`` (the
    compressed float model is already that far off: pruning, sharing, the
    weights' format), ``"saturation"``, ``"fixed-point rounding"``.
    `top1_agreement`: the fraction of vectors whose largest final output
    is the float model's.
    `input_saturated`: input values beyond the image's input format (they
    saturate on the way in, which shows as layer 0's hardware error)."""

    layers: list[dict]
    tolerance: float
    first_divergent: int | None
    cause: str | None
    top1_agreement: float
    vectors: int
    input_saturated: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        rows = [f"{'layer':>5}  {'shape':>11}  {'compressed':>10}  {'hardware':>9}  {'hw vs comp':>10}  "
                f"{'saturated':>9}  {'wrapped':>7}",
                f"{'':>5}  {'':>11}  {'rel. RMS error against float':^32}"]
        for e in self.layers:
            mark = "  <- first beyond tolerance" if e["layer"] == self.first_divergent else ""
            rows.append(f"{e['layer']:>5}  {e['n_in']:>5}->{e['n_out']:<5}  "
                        f"{e['compressed_vs_float']['relative_rms']:>10.4f}  "
                        f"{e['hardware_vs_float']['relative_rms']:>9.4f}  "
                        f"{e['hardware_vs_compressed']['relative_rms']:>10.4f}  "
                        f"{e['saturated']:>9,}  {e['wrapped']:>7,}{mark}")
        if self.first_divergent is None:
            rows.append(f"no layer is beyond the tolerance ({self.tolerance:g} relative RMS)")
        else:
            rows.append(f"layer {self.first_divergent} is the first beyond {self.tolerance:g} relative RMS; "
                        f"cause: {self.cause}")
        if self.input_saturated:
            rows.append(f"{self.input_saturated:,} input values lie beyond the input format and saturate")
        rows.append(f"largest final output agrees with the float model on {100 * self.top1_agreement:.2f}% "
                    f"of {self.vectors:,} vectors")
        return "\n".join(rows)

    def plot(self, path) -> Path:
        """The three errors per layer as a bar chart (matplotlib), written
        atomically to `path` (PNG)."""
        try:
            import matplotlib
        except ImportError:
            raise ModelError("plotting needs matplotlib: pip install 'openeie[bench]' (or matplotlib)") from None
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from .files import save_figure
        n = len(self.layers)
        fig, ax = plt.subplots(figsize=(max(5, 1.6 * n + 2), 3.6))
        x = np.arange(n)
        for k, (key, label) in enumerate([("compressed_vs_float", "compressed (float) vs float"),
                                          ("hardware_vs_float", "hardware vs float"),
                                          ("hardware_vs_compressed", "hardware vs compressed")]):
            ax.bar(x + (k - 1) * 0.27, [e[key]["relative_rms"] for e in self.layers], 0.27, label=label)
        ax.axhline(self.tolerance, color="tab:red", lw=0.8, ls="--", label=f"tolerance {self.tolerance:g}")
        ax.set_xticks(x, [f"layer {e['layer']}\n{e['n_in']}->{e['n_out']}" for e in self.layers])
        ax.set_ylabel("relative RMS error")
        ax.set_title("Where the model loses accuracy")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        save_figure(fig, Path(path))
        return Path(path)


def compare(float_layers: Sequence[Layer], image: Image, x_float, *, tolerance: float = 0.1) -> Comparison:
    """Compare the float model `float_layers` (the one `image` was
    compressed from, e.g. `sw.load_any`'s) with the compressed model and
    the golden model of `image`, on float inputs `x_float` ``(B, n_in)``
    (quantised to the image's input format as the hardware would get
    them: values beyond it saturate, with a warning)."""
    float_layers = check_chain(float_layers, Layer, "compare()'s float model")
    if not isinstance(image, Image):
        raise TypeError(f"compare() takes an sw.Image, got {type(image).__name__}")
    if len(float_layers) != len(image.layers):
        raise ModelError(f"the float model has {len(float_layers)} layers, the image {len(image.layers)}")
    for i, (f, l) in enumerate(zip(float_layers, image.layers)):
        if (f.n_in, f.n_out) != (l.n_in, l.n_out):
            raise ModelError(f"layer {i}: the float model's is {f.n_in} -> {f.n_out}, the image's "
                             f"{l.n_in} -> {l.n_out}: not the model this image was packed from")
        if f.relu != l.relu:
            raise ModelError(f"layer {i}: the float model {'has' if f.relu else 'has no'} ReLU, the image "
                             f"{'has' if l.relu else 'has none'}")
    if not (isinstance(tolerance, (int, float)) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number, got {tolerance!r}")
    x = real_array(x_float, "inputs", ModelError)
    x = x[None, :] if x.ndim == 1 else x
    check_ndim(x, 2, "inputs (B x n_in)", ModelError, nonempty=True)
    if x.shape[1] != image.n_in:
        raise ModelError(f"inputs have {x.shape[1]} values per vector, the model takes {image.n_in}")

    c = image.config
    fa = image.layers[0].fa
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                          # counted below instead
        x_int = quantize_input(x, fa, c.act_bits)
    input_saturated = saturated_inputs(x, fa, c.act_bits)
    lo, hi = signed_range(c.act_bits)
    h_float = h_comp = x
    entries = []
    # the golden model's accumulators, once: its outputs and the counts both come from them
    accs = golden.accumulators(image, golden.check_input(image, x_int))
    for i, (f, cl, il, (exact, acc)) in enumerate(zip(float_layers, unpack(image).float_layers(),
                                                       image.layers, accs)):
        h_float, h_comp = f.forward(h_float), cl.forward(h_comp)
        y_int = image.model_order(writeback(acc, il.shift, il.relu, c.act_bits), i)
        y_hw = from_fixed(y_int, il.fo)
        y = round_shift(acc, il.shift)
        y = np.maximum(y, 0) if il.relu else y
        entries.append({
            "layer": i, "n_in": il.n_in, "n_out": il.n_out, "outputs": int(y_hw.size),
            "compressed_vs_float": _error(h_comp, h_float), "hardware_vs_float": _error(y_hw, h_float),
            "hardware_vs_compressed": _error(y_hw, h_comp),
            "saturated": int(np.count_nonzero((y < lo) | (y > hi))),
            "wrapped": int(np.count_nonzero(exact != acc)),
        })
    first = next((e["layer"] for e in entries if e["hardware_vs_float"]["relative_rms"] > tolerance), None)
    cause = None
    if first is not None:
        e = entries[first]
        cause = ("wrapped accumulators" if e["wrapped"]
                 else "saturated inputs" if first == 0 and input_saturated
                 else "compression" if e["compressed_vs_float"]["relative_rms"] > tolerance
                 else "saturation" if e["saturated"]
                 else "fixed-point rounding")
    top1 = float(np.mean(np.argmax(y_int, axis=1) == np.argmax(h_float, axis=1)))
    return Comparison(entries, float(tolerance), first, cause, top1, int(x.shape[0]), input_saturated)
