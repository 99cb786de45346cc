"""Deep Compression's first two stages, then fixed point.

1. Magnitude pruning: keep the `density` fraction of each layer's weights
   with the largest magnitude.
2. Weight sharing: k-means (scipy's ``kmeans2``) over the surviving weights
   into ``2**code_bits - 1`` shared values, linearly initialised between the
   smallest and largest weight (Deep Compression found linear initialisation
   best: it keeps the rare large weights that matter most).
3. Fixed point, layer by layer on calibration inputs: ``fw`` as large as the
   codebook range allows, lowered until the exact accumulator stays inside
   ``acc_bits`` on the calibration set scaled up by ``acc_headroom`` (16x by
   default: accumulators wrap, which flips signs, so they keep headroom);
   ``fo`` as large as possible without
   saturating an output on it. Each layer's calibration input is the previous
   layer's fixed-point output, so the errors reported are the ones the
   hardware will make.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import scipy.cluster.vq as vq
import scipy.sparse as sp

from .arrays import check_ndim, real_array
from .config import Config
from .fixedpoint import fits, from_fixed, round_shift, signed_range, to_fixed, wrap, writeback
from .model import CompressedLayer, CompressedModel, Layer, ModelError, check_chain

__all__ = ["compress", "prune", "share_weights", "prune_and_share", "frac_bits_for", "forward", "quantize_input", "dequantize",
           "saturated_inputs",
           "wrap_scales", "DEFAULT_ACC_HEADROOM"]

DEFAULT_ACC_HEADROOM = 16.0


def prune(weight, density: float) -> sp.csr_array:
    """Keep the ``round(density * n_out * n_in)`` largest-magnitude weights."""
    w = sp.csr_array(weight, dtype=np.float64)
    w.eliminate_zeros()
    keep = int(round(density * w.shape[0] * w.shape[1]))
    if keep >= w.nnz:
        return w
    if keep <= 0:
        return sp.csr_array(w.shape, dtype=np.float64)
    drop = np.argpartition(np.abs(w.data), w.nnz - keep)[:w.nnz - keep]
    w.data[drop] = 0.0
    w.eliminate_zeros()
    return w


def share_weights(values: np.ndarray, n_clusters: int, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """1-D k-means, linear initialisation. Returns `(centroids, labels)`;
    centroids sorted ascending, ``labels[i]`` indexes them."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    unique = np.unique(values)
    if unique.size <= n_clusters:
        return unique, np.searchsorted(unique, values)
    init = np.linspace(values.min(), values.max(), n_clusters).reshape(-1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # an empty cluster keeps its centroid
        centroids, labels = vq.kmeans2(values.reshape(-1, 1), init, iter=iterations, minit="matrix",
                                       missing="warn")
    centroids = centroids[:, 0]
    order = np.argsort(centroids)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return centroids[order], rank[labels]


def prune_and_share(layer: Layer, density: float, config: Config, iterations: int = 30):
    """Deep Compression's first two stages for one layer: `prune` to
    `density` of its ``n_out x n_in`` weights, then `share_weights` into
    ``2**code_bits - 1`` values. Returns ``(pruned, centroids, codes,
    shared)``: the pruned float weights, the shared values, the codes (0:
    pruned) and the layer with its weights replaced by their shared values."""
    pruned = prune(layer.weight, density)
    centroids, labels = share_weights(pruned.data, config.n_codes - 1, iterations)
    codes = sp.csr_array(((labels + 1).astype(np.uint8 if config.code_bits <= 8 else np.int64),
                          pruned.indices, pruned.indptr), shape=pruned.shape)
    shared = Layer(sp.csr_array((centroids[labels], pruned.indices, pruned.indptr), shape=pruned.shape),
                   layer.bias, layer.relu)
    return pruned, centroids, codes, shared


def frac_bits_for(max_abs: float, bits: int) -> int:
    """Most fraction bits such that ``max_abs`` still fits a signed `bits`-bit
    integer after rounding; ``bits - 1`` for zero."""
    _, hi = signed_range(bits)
    if max_abs <= 0:
        return bits - 1
    f = int(np.floor(np.log2(hi / max_abs)))
    while f > -64 and np.floor(max_abs * 2.0 ** f + 0.5) > hi:
        f -= 1
    return f


def forward(layers: Sequence[Layer], x, trace: bool = False):
    """Float reference forward pass through `layers` (``sw.Layer``s)."""
    outs = []
    x = np.asarray(x, dtype=np.float64)
    for layer in layers:
        x = layer.forward(x)
        outs.append(x)
    return outs if trace else outs[-1]


def _check_format(frac_bits, act_bits=None):
    if not isinstance(frac_bits, (int, np.integer)) or isinstance(frac_bits, bool) or not 0 <= frac_bits <= 64:
        raise ValueError(f"frac_bits must be an int in 0..64, got {frac_bits!r}")
    if act_bits is not None:
        lo, hi = Config._RANGES["act_bits"]
        if not isinstance(act_bits, (int, np.integer)) or isinstance(act_bits, bool) or not lo <= act_bits <= hi:
            raise ValueError(f"act_bits must be an int in {lo}..{hi} (as sw.Config), got {act_bits!r}")


def quantize_input(x_float, frac_bits: int, act_bits: int = 16) -> np.ndarray:
    """Float inputs to the accelerator's fixed-point activations: signed
    `act_bits` integers with `frac_bits` fraction bits, rounded half up
    (int16 for 16-bit activations). Values beyond the format saturate, with
    a `UserWarning` that says how many."""
    from .golden import output_dtype
    _check_format(frac_bits, act_bits)
    x = real_array(x_float, "inputs to quantise")
    q = to_fixed(x, frac_bits, act_bits)
    clipped = saturated_inputs(x, frac_bits, act_bits)
    if clipped:
        _, hi = signed_range(act_bits)
        warnings.warn(f"quantize_input: {clipped} of {x.size} values lie outside the {act_bits}-bit format with "
                      f"{frac_bits} fraction bits (|x| <= {hi / 2.0 ** frac_bits:g}) and saturate",
                      stacklevel=2)
    return q.astype(output_dtype(act_bits))


def saturated_inputs(x: np.ndarray, frac_bits: int, act_bits: int) -> int:
    """How many float values of `x` lie outside the signed `act_bits`
    format with `frac_bits` fraction bits after rounding (they saturate)."""
    lo, hi = signed_range(act_bits)
    scaled = np.floor(x * 2.0 ** frac_bits + 0.5)
    return int(np.count_nonzero((scaled < lo) | (scaled > hi)))


def dequantize(y, frac_bits: int) -> np.ndarray:
    """Fixed-point outputs back to float."""
    _check_format(frac_bits)
    return from_fixed(y, frac_bits)


def _error(fixed: np.ndarray, ref: np.ndarray) -> dict:
    diff = fixed - ref
    scale = float(np.sqrt(np.mean(ref ** 2))) if ref.size else 0.0
    return {"max_abs": float(np.max(np.abs(diff))) if diff.size else 0.0,
            "rms": float(np.sqrt(np.mean(diff ** 2))) if diff.size else 0.0,
            "relative_rms": float(np.sqrt(np.mean(diff ** 2)) / scale) if scale else 0.0}


def wrap_scales(w_int: sp.csr_array, bias_int: np.ndarray, x_int: np.ndarray, acc_bits: int) -> tuple[float, float]:
    """How far a layer's inputs can grow before an accumulator wraps.

    `observed`: the smallest factor ``s`` such that ``s * x`` for one of the
    calibration vectors `x_int` takes some ``acc = W (s x) + bias`` out of
    the signed `acc_bits` range. `worst`: the same for the worst input whose
    values stay within ``s`` times the calibration's largest magnitude (every
    input of a row at that magnitude with the signs of its weights), from the
    codebook alone. ``inf`` where nothing can wrap; 0 where the bias alone
    does not fit."""
    lo, hi = signed_range(acc_bits)
    if np.any(bias_int < lo) or np.any(bias_int > hi):
        return 0.0, 0.0
    prod = np.asarray((w_int @ x_int.T).T, dtype=np.float64)          # (B, n_out), exact below 2**53
    b = bias_int.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(prod > 0, (hi - b) / prod, np.inf)
        down = np.where(prod < 0, (b - lo) / -prod, np.inf)
        observed = float(min(up.min(initial=np.inf), down.min(initial=np.inf)))
        amax = float(np.max(np.abs(x_int), initial=0))
        row_abs = np.asarray(abs(w_int).sum(axis=1), dtype=np.float64).reshape(-1) * amax
        room = np.minimum(hi - b, b - lo)
        worst = float(np.where(row_abs > 0, room / row_abs, np.inf).min(initial=np.inf))
    return observed, worst


def _quantize_layer(i, codes, centroids, bias, relu, fa, x_int, c: Config, headroom_bits: int,
                    acc_headroom: float, fo_max: int | None = None):
    """Choose ``fw`` and ``fo`` for one layer on calibration inputs `x_int`
    (``fo`` at most `fo_max`: branches joined by a concat share one
    format); returns the layer, its fixed-point outputs and what was seen."""
    acc_lo, acc_hi = signed_range(c.acc_bits)
    fw = max(0, min(frac_bits_for(float(np.max(np.abs(centroids), initial=0.0)), c.weight_bits), 48))
    while True:   # lower fw until the calibration accumulators keep `acc_headroom`
        codebook = np.concatenate([[0], to_fixed(centroids, fw, c.weight_bits)])
        bias_int = np.clip(np.floor(bias * 2.0 ** (fa + fw) + 0.5), acc_lo, acc_hi).astype(np.int64)
        bias_fits = bool(np.all(np.abs(bias * 2.0 ** (fa + fw)) <= acc_hi))
        w_int = sp.csr_array((codebook[codes.data.astype(np.int64)], codes.indices, codes.indptr),
                             shape=codes.shape)
        observed, worst = wrap_scales(w_int, bias_int, x_int, c.acc_bits)
        if (observed >= acc_headroom and bias_fits) or fw == 0:
            break
        fw -= 1
    exact = (w_int @ x_int.T).T + bias_int
    overflows = int(np.count_nonzero((exact < acc_lo) | (exact > acc_hi)))
    warns = []
    if not bias_fits:
        warns.append(f"layer {i}: the bias does not fit acc_bits = {c.acc_bits} even with fw = 0; clipped")
    if overflows:
        warns.append(f"layer {i}: the accumulator overflows acc_bits = {c.acc_bits} on {overflows} "
                     f"calibration outputs even with fw = 0")
    elif observed < acc_headroom:
        warns.append(f"layer {i}: calibration inputs {observed:.3g}x larger would wrap the accumulator, "
                     f"within the headroom asked for ({acc_headroom:g}x) even with fw = 0")
    acc = wrap(exact, c.acc_bits)
    fo, fo_min = fa + fw, max(0, fa + fw - c.max_shift)
    while fo > fo_min:   # most fraction bits that saturate nothing on the calibration set
        y = round_shift(acc, fa + fw - fo)
        if fits(np.maximum(y, 0) if relu else y, c.act_bits):
            break
        fo -= 1
    fo = max(fo_min, fo - headroom_bits)
    if fo_max is not None:
        if fo_max < fo_min:
            raise ModelError(f"layer {i}: its output cannot have as few as {fo_max} fraction bits (shift at most "
                             f"{c.max_shift}): joined branches' formats differ too much")
        fo = min(fo, fo_max)
    y = writeback(acc, fa + fw - fo, relu, c.act_bits)
    unclamped = round_shift(acc, fa + fw - fo)
    unclamped = np.maximum(unclamped, 0) if relu else unclamped
    saturated = int(np.count_nonzero(unclamped != y))
    if saturated:
        warns.append(f"layer {i}: {saturated} calibration outputs saturate at fo = {fo}")
    layer = CompressedLayer(codes, codebook, bias_int, relu, fa, fw, fo)
    return layer, y, {"acc_overflows": overflows, "acc_wrap_scale_observed": _json_float(observed),
                      "acc_wrap_scale_worst": _json_float(worst), "saturated": saturated, "warnings": warns}


def _json_float(v: float):
    """JSON has no infinity: None stands for "never"."""
    return None if np.isinf(v) else float(v)


def compress(layers: Sequence[Layer], *, density, code_bits: int | None = None,
             calibration=None, config: Config | None = None, headroom_bits: int = 0,
             acc_headroom: float = DEFAULT_ACC_HEADROOM, kmeans_iterations: int = 30, progress: Callable[[str], None] | None = None) -> CompressedModel:
    """Compress float `layers` into a `CompressedModel`.

    `density`: fraction of weights kept, one number or one per layer, in (0, 1].
    `code_bits`: codebook index width (default: `config`'s, else 4).
    `calibration`: float inputs ``(B, n_in)`` used to choose fixed-point
    formats and measure errors; without it, 256 standard-normal vectors are
    used and the report says so.
    `config`: widths (act, weight, accumulator) to quantise for; default
    `Config()`. `headroom_bits`: fraction bits given up per layer output
    against values beyond the calibration range (outputs saturate there).
    `acc_headroom`: how many times larger than the calibration inputs a
    layer's inputs may be before an accumulator wraps (which, unlike
    saturation, flips signs): ``fw`` is lowered until the calibration
    vectors scaled by this factor wrap nothing, and the report warns where
    even ``fw = 0`` cannot give it. Default 16 (4 bits of the accumulator).
    `progress`: called with a line of text as each layer is done.

    `layers` may also be an `sw.Network` (or a lowered one): then
    `sw.net.compress_network` compresses every engine layer it lowers to,
    `density` is per weighted node, and `calibration` holds images.

    The returned model's `report` has one dict per layer: density, nonzeros,
    codebook (float and integer), ``fa``/``fw``/``fo``, accumulator overflows
    and saturations seen, the input scale at which an accumulator first
    wraps (``acc_wrap_scale_observed``: the calibration vectors scaled up;
    ``acc_wrap_scale_worst``: any input within that many times the
    calibration's largest magnitude; None for never; see `wrap_scales`),
    and the error of the fixed-point outputs against
    the float model (``error_vs_float``) and against the float pruned and
    weight-shared model (``error_vs_shared``).
    """
    from .net import Lowered, Network, compress_network
    if isinstance(layers, (Network, Lowered)):      # a network: sw.net.compress_network, same options
        return compress_network(layers, density=density, config=config, code_bits=code_bits,
                                calibration=calibration, headroom_bits=headroom_bits, acc_headroom=acc_headroom,
                                kmeans_iterations=kmeans_iterations, progress=progress)
    config = Config() if config is None else config
    if code_bits is not None and code_bits != config.code_bits:
        config = config.replace(code_bits=code_bits)
    layers = check_chain(layers, Layer, "compress()")
    densities = list(density) if np.ndim(density) else [density] * len(layers)
    if len(densities) != len(layers):
        raise ModelError(f"density lists {len(densities)} values for {len(layers)} layers")
    for i, (layer, d) in enumerate(zip(layers, densities)):
        if not (isinstance(d, (int, float, np.floating, np.integer)) and not isinstance(d, bool) and 0 < d <= 1):
            raise ModelError(f"layer {i}: density must be in (0, 1], got {d!r}")
        size = layer.n_in * layer.n_out
        if round(d * size) == 0:
            raise ModelError(f"layer {i}: density {d:g} keeps none of its {size:,} weights "
                             f"(the smallest density that keeps one is {0.5 / size:.3g})")
    if not isinstance(headroom_bits, (int, np.integer)) or isinstance(headroom_bits, bool) or headroom_bits < 0:
        raise ModelError(f"headroom_bits must be a non-negative int, got {headroom_bits!r}")
    if not (isinstance(acc_headroom, (int, float, np.integer, np.floating)) and not isinstance(acc_headroom, bool)
            and 1 <= acc_headroom < np.inf):
        raise ModelError(f"acc_headroom must be a number >= 1 (1: no headroom), got {acc_headroom!r}")

    warns = []
    if calibration is None:
        calibration = np.random.default_rng(0).standard_normal((256, layers[0].n_in))
        warns.append("no calibration data: formats chosen for 256 standard-normal input vectors")
    calibration = real_array(calibration, "calibration inputs", ModelError)
    if calibration.ndim == 1:
        calibration = calibration[None, :]
    check_ndim(calibration, 2, "calibration inputs (B x n_in)", ModelError, nonempty=True)
    if calibration.shape[1] != layers[0].n_in:
        raise ModelError(f"calibration inputs have {calibration.shape[1]} values per vector, "
                         f"layer 0 takes {layers[0].n_in}")

    fa = frac_bits_for(float(np.max(np.abs(calibration))), config.act_bits)
    if fa < 0:
        warns.append(f"calibration inputs reach {np.max(np.abs(calibration)):.4g}, beyond the {config.act_bits}-bit "
                     f"input format even with fa = 0: they saturate (scale the inputs down)")
    fa = max(0, fa)
    x_int = to_fixed(calibration, fa, config.act_bits)
    x_float, x_shared = calibration, calibration
    out_layers, report = [], []
    for i, (layer, d) in enumerate(zip(layers, densities)):
        pruned, centroids, codes, shared = prune_and_share(layer, d, config, kmeans_iterations)
        clayer, y_int, info = _quantize_layer(i, codes, centroids, layer.bias, layer.relu, fa, x_int,
                                                 config, headroom_bits, acc_headroom)
        x_float = layer.forward(x_float)
        x_shared = shared.forward(x_shared)
        y = from_fixed(y_int, clayer.fo)
        entry = {
            "layer": i, "n_in": layer.n_in, "n_out": layer.n_out, "relu": layer.relu,
            "density": pruned.nnz / (layer.n_in * layer.n_out), "nnz": int(pruned.nnz),
            "codebook_float": [0.0] + [float(v) for v in centroids],
            "codebook": [int(v) for v in clayer.codebook],
            "fa": clayer.fa, "fw": clayer.fw, "fo": clayer.fo, "shift": clayer.shift,
            "error_vs_float": _error(y, x_float), "error_vs_shared": _error(y, x_shared),
            **info,
        }
        entry["warnings"] = (warns if i == 0 else []) + entry["warnings"]
        report.append(entry)
        out_layers.append(clayer)
        x_int, fa = y_int, clayer.fo
        if progress:
            e = entry["error_vs_float"]
            progress(f"layer {i}: {layer.n_in} -> {layer.n_out}, density {entry['density']:.3f}, "
                     f"{len(centroids)} shared weights, fa/fw/fo {clayer.fa}/{clayer.fw}/{clayer.fo}, "
                     f"relative RMS error vs float {e['relative_rms']:.4f}")
    return CompressedModel(out_layers, out_layers[0].fa, report)
