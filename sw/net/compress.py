"""Deep Compression for networks: every engine layer of a lowered network
pruned, weight-shared and put in fixed point exactly as `sw.compress` does
a dense layer (same k-means, same format choice), on calibration images.

A convolution's density counts the weights it has (``C_out * kh * kw *
C_in / groups``), not the zeros of its lowered block-diagonal matrix. The
branches of a Concat end in one shared output format (the fewest fraction
bits any of them needs), so that the host joins integers that mean the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from ..arrays import real_array
from ..compress import DEFAULT_ACC_HEADROOM, _error, _quantize_layer, frac_bits_for, prune_and_share
from ..config import Config
from ..fixedpoint import from_fixed, to_fixed
from ..model import CompressedLayer, Layer, ModelError
from .lower import Engine, Join, Lowered, Step, engines, host, lower
from .nodes import Network

__all__ = ["CompressedNetwork", "compress_network"]


@dataclass
class CompressedNetwork:
    """A lowered network whose `Engine` steps hold `sw.CompressedLayer`s;
    `report` has one dict per engine layer (as `sw.compress`'s, plus the
    step, kind and node it comes from)."""
    input_shape: tuple
    output_shape: tuple
    steps: list
    input_frac_bits: int
    output_frac_bits: int
    report: list = field(default_factory=list)

    def engine_layers(self) -> list[CompressedLayer]:
        return [l for e in engines(self.steps) for l in e.layers]

    @property
    def nnz(self) -> int:
        return sum(l.nnz for l in self.engine_layers())


@dataclass
class _Context:
    config: Config
    densities: list
    headroom_bits: int
    acc_headroom: float
    kmeans_iterations: int
    progress: Callable | None
    report: list = field(default_factory=list)


def _structural(layer: Layer, structure) -> int:
    return layer.n_in * layer.n_out if structure is None else int(sp.csr_array(structure).count_nonzero())


def _engine(step: Engine, si, xf, xi, fa, ctx: _Context, fo_cap):
    n = xf.shape[0]
    vf, vs, vi = xf.reshape(-1, xf.shape[3]), xf.reshape(-1, xf.shape[3]), xi.reshape(-1, xi.shape[3])
    out = []
    for j, (layer, kind, node, structure) in enumerate(zip(step.layers, step.kinds, step.nodes, step.structure)):
        i = len(ctx.report)
        d = ctx.densities[node]
        total = _structural(layer, structure)
        keep = int(round(d * total))
        if keep == 0:
            raise ModelError(f"layer {i} ({kind}): density {d:g} keeps none of its {total:,} weights")
        pruned, centroids, codes, shared = prune_and_share(layer, keep / (layer.n_in * layer.n_out), ctx.config,
                                                           ctx.kmeans_iterations)
        cap = fo_cap if j == len(step.layers) - 1 else None
        clayer, vi, info = _quantize_layer(i, codes, centroids, layer.bias, layer.relu, fa, vi, ctx.config,
                                           ctx.headroom_bits, ctx.acc_headroom, cap)
        vf, vs = layer.forward(vf), shared.forward(vs)
        entry = {"layer": i, "step": si, "kind": kind, "node": node, "n_in": layer.n_in, "n_out": layer.n_out,
                 "relu": layer.relu, "vectors_per_image": step.pixels, "weights": total,
                 "density": pruned.nnz / total, "nnz": int(pruned.nnz),
                 "codebook_float": [0.0] + [float(v) for v in centroids],
                 "codebook": [int(v) for v in clayer.codebook], "fa": clayer.fa, "fw": clayer.fw, "fo": clayer.fo,
                 "shift": clayer.shift, "error_vs_float": _error(from_fixed(vi, clayer.fo), vf),
                 "error_vs_shared": _error(from_fixed(vi, clayer.fo), vs), **info}
        ctx.report.append(entry)
        out.append(clayer)
        fa = clayer.fo
        if ctx.progress:
            ctx.progress(f"layer {i} ({kind}): {layer.n_in} -> {layer.n_out} on {step.pixels} vectors per image, "
                         f"density {entry['density']:.3f}, fa/fw/fo {clayer.fa}/{clayer.fw}/{clayer.fo}, relative "
                         f"RMS error vs float {entry['error_vs_float']['relative_rms']:.4f}")
    shape = (n, *step.out_shape)
    return replace(step, layers=out, images=[]), vf.reshape(shape), vi.reshape(shape), fa


def _steps(steps: list[Step], xf, xi, fa, ctx: _Context, fo_cap=None):
    """Compress `steps` on calibration tensors; `fo_cap` bounds the format of
    the last step that sets one (an Engine or a Join)."""
    last = max((k for k, s in enumerate(steps) if isinstance(s, (Engine, Join))), default=None)
    if fo_cap is not None and last is None:
        raise ModelError("a Concat branch has no layer that sets its output format (it must contain a "
                         "convolution or linear layer)")
    out = []
    for si, step in enumerate(steps):
        cap = fo_cap if si == last else None
        if isinstance(step, Engine):
            step, xf, xi, fa = _engine(step, si, xf, xi, fa, ctx, cap)
        elif isinstance(step, Join):
            mark, progress = len(ctx.report), ctx.progress
            ctx.progress = None                  # a first pass only finds each branch's format
            fos = []
            for b in step.branches:
                if not any(isinstance(s, (Engine, Join)) for s in b):
                    raise ModelError("a Concat branch has no layer that sets its output format (it must contain "
                                     "a convolution or linear layer)")
                fos.append(_steps(b, xf, xi, fa, ctx)[3])
            target = min(fos + ([cap] if cap is not None else []))
            del ctx.report[mark:]            # again, every branch ending in the shared format
            ctx.progress = progress
            results = [_steps(b, xf, xi, fa, ctx, target) for b in step.branches]
            step = replace(step, branches=[r[0] for r in results])
            xf = np.concatenate([r[1] for r in results], axis=3)
            xi = np.concatenate([r[2] for r in results], axis=3)
            fa = target
        else:
            xf, xi = host(step, xf, fixed=False), host(step, xi, fixed=True)
        out.append(step)
    return out, xf, xi, fa


def compress_network(network, *, density, config: Config | None = None, code_bits: int | None = None,
                     calibration=None, headroom_bits: int = 0, acc_headroom: float = DEFAULT_ACC_HEADROOM,
                     kmeans_iterations: int = 30, progress: Callable[[str], None] | None = None) -> CompressedNetwork:
    """Compress a `Network` (or its `lower`ed form, e.g. after training) for
    `config`. `density`: one number or one per weighted node
    (`Network.weighted_nodes` order; a LowRank's two factors share one).
    `calibration`: float images ``(N, H, W, C)`` that choose the formats
    (default: 64 standard-normal images, and the report says so); the other
    options as `sw.compress`."""
    lowered = network if isinstance(network, Lowered) else lower(network) if isinstance(network, Network) else None
    if lowered is None:
        raise ModelError(f"compress_network takes an sw.Network, got {type(network).__name__}")
    config = Config() if config is None else config
    if code_bits is not None and code_bits != config.code_bits:
        config = config.replace(code_bits=code_bits)
    n = lowered.weighted
    densities = list(density) if np.ndim(density) else [density] * n
    if len(densities) != n:
        raise ModelError(f"density lists {len(densities)} values for {n} weighted nodes (Conv2d, Linear, LowRank)")
    for i, d in enumerate(densities):
        if not (isinstance(d, (int, float, np.floating, np.integer)) and not isinstance(d, bool) and 0 < d <= 1):
            raise ModelError(f"weighted node {i}: density must be in (0, 1], got {d!r}")
    warns = []
    if calibration is None:
        calibration = np.random.default_rng(0).standard_normal((64, *lowered.input_shape))
        warns.append("no calibration data: formats chosen for 64 standard-normal images")
    xf = real_array(calibration, "calibration images", ModelError)
    if xf.shape[1:] != tuple(lowered.input_shape) or xf.ndim != 4 or not xf.shape[0]:
        raise ModelError(f"calibration images must have shape (N, {', '.join(map(str, lowered.input_shape))}) "
                         f"with N >= 1, got {xf.shape}")
    fa = max(0, frac_bits_for(float(np.max(np.abs(xf))), config.act_bits))
    xi = to_fixed(xf, fa, config.act_bits).astype(np.int64)
    ctx = _Context(config, densities, headroom_bits, acc_headroom, kmeans_iterations, progress)
    steps, _, _, fo = _steps(lowered.steps, xf, xi, fa, ctx)
    if ctx.report:
        ctx.report[0]["warnings"] = warns + ctx.report[0]["warnings"]
    return CompressedNetwork(lowered.input_shape, lowered.output_shape, steps, fa, fo, ctx.report)
