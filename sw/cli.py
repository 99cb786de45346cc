"""``python -m sw``: pack, inspect and run images from the command line.

Every output a command writes (an image directory, ``-o``,
``--save-compressed``) is written atomically and replaces an existing one
only with ``--force``; outputs are checked before any work is done.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading
import warnings
from pathlib import Path

import numpy as np

from . import golden
from .batching import batched, check_batch, check_batched, stack, unstack
from .compress import DEFAULT_ACC_HEADROOM, compress, quantize_input
from .config import PRESETS, Config, ConfigError
from .files import OutputExistsError, atomic_file, output_path
from .format import FormatError
from .model import CompressedModel, ModelError
from .frontends import load_any
from .modelio import load_array, save_model
from .pack import PackError, pack

__all__ = ["main", "add_config_options", "add_batch_option", "config_from_args", "cli_errors", "load_inputs",
           "warn_wraps"]


def add_config_options(parser: argparse.ArgumentParser, title: str = "hardware configuration (defaults: sw.Config())"):
    """One ``--field`` option per `Config` field, plus ``--config FILE.json``
    and ``--preset``."""
    group = parser.add_argument_group(title)
    group.add_argument("--config", type=Path, metavar="JSON",
                       help="read the configuration from a JSON file (fields it lacks keep their defaults)")
    group.add_argument("--preset", choices=sorted(PRESETS),
                       help="start from a configuration sized for an FPGA part (the options below override it)")
    for f in dataclasses.fields(Config):
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=int, metavar="N",
                           help=f"(default {f.default})")


def add_batch_option(parser: argparse.ArgumentParser):
    """``--batch N``: the image was packed from ``sw.batched(model, N)``;
    the inputs (and outputs) are one copy's, N vectors a run."""
    parser.add_argument("--batch", type=int, default=1, metavar="N",
                        help="the image was packed with --batch N: inputs and outputs are one copy's, N a run")


def config_from_args(args) -> Config:
    base = Config()
    if args.config and args.preset:
        raise ConfigError("give --config or --preset, not both")
    if args.preset:
        base = Config.preset(args.preset)
    if args.config:
        try:
            base = Config.from_json(args.config.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"--config {args.config}: not valid JSON ({e})") from None
        except ConfigError as e:
            raise ConfigError(f"--config {args.config}: {e}") from None
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
               if getattr(args, f.name) is not None}
    return base.replace(**changes)


def _log(line: str):
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def cli_errors():
    """Turn the errors a user can cause into one ``error: ...`` line on
    stderr and exit status 2 (`SystemExit`); Python warnings become
    ``warning: ...`` lines."""
    def show(message, category, filename, lineno, file=None, line=None):
        _log(f"warning: {message}")

    saved = warnings.showwarning
    warnings.showwarning = show
    # SIGTERM ends the process through SystemExit, so the atomic writers
    # remove their temporaries on the way out (SIGKILL's are removed by the
    # next write of the same target)
    saved_term = None
    if threading.current_thread() is threading.main_thread():
        saved_term = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    except OutputExistsError as e:
        hint = " (--force replaces it)" if e.reason == "exists" else ""
        _fail(f"{e}{hint}")
    except OSError as e:
        where = e.filename if e.filename is not None else ""
        _fail(f"{where}: {e.strerror or e}" if where else str(e))
    except (ConfigError, ModelError, PackError, FormatError, TypeError, ValueError) as e:
        _fail(str(e))
    finally:
        warnings.showwarning = saved
        if saved_term is not None:
            signal.signal(signal.SIGTERM, saved_term)


def _terminate(signum, frame):
    _log("terminated")
    raise SystemExit(128 + signum)


def _fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_inputs(path: Path, image, *, quantize: bool, batch: int = 1) -> np.ndarray:
    """Input vectors for `image` from an ``.npy`` file: integers, or floats
    quantised with the image's input format when `quantize`; at least one.
    With `batch` > 1 the image was packed from ``sw.batched(model, batch)``
    and the vectors are one copy's (``n_in / batch`` values each), checked
    as the image would check them stacked (`sw.stack`)."""
    check_batched(image, batch)
    x = load_array(path, "input vectors")
    if np.issubdtype(x.dtype, np.floating):
        if not quantize:
            raise TypeError(f"{path} holds floats ({x.dtype}); pass --quantize to convert them with "
                            f"the image's input format (fa = {image.layers[0].fa})")
        x = quantize_input(x, image.layers[0].fa, image.config.act_bits)
    if batch > 1:
        n_in = image.n_in // batch
        if x.ndim not in (1, 2) or x.shape[-1] != n_in:
            raise ValueError(f"{path}: input vectors of shape {x.shape}; with --batch {batch} the image takes "
                             f"vectors of {n_in} values ({batch} a run)")
        x = np.atleast_2d(x)
        if x.shape[0]:
            golden.check_input(image, stack(x, batch))              # the values' range
        x = x.astype(np.int64)
    else:
        x = golden.check_input(image, x)
    if x.shape[0] == 0:
        raise ValueError(f"{path} holds no input vectors (shape {x.shape})")
    return x


def warn_wraps(image, x):
    """Say so when an accumulator wraps on these inputs (the outputs are still
    the hardware's, bit for bit, but a wrapped sum has the wrong sign)."""
    wraps = golden.accumulator_wraps(image, x)
    for l in np.flatnonzero(wraps.sum(axis=0)):
        n = int(np.count_nonzero(wraps[:, l]))
        _log(f"warning: layer {l}: accumulators wrap (acc_bits = {image.config.acc_bits}) in {n} of "
             f"{len(x)} vectors, {int(wraps[:, l].sum())} outputs: these inputs are larger than the "
             f"formats were chosen for (see acc_headroom in sw.compress)")


def cmd_pack(args) -> int:
    config = config_from_args(args)
    check_batch(args.batch)
    output_path(args.output, overwrite=args.force, kind="directory")
    if args.save_compressed:
        output_path(args.save_compressed, overwrite=args.force)
    model = load_any(args.model)
    if not isinstance(model, CompressedModel):
        if args.density is None:
            raise ModelError(f"{args.model} is a float model: give --density to compress it")
        calibration = load_array(args.calibration, "calibration inputs") if args.calibration else None
        _log(f"compressing {len(model)} layers to density {args.density}")
        model = compress(model, density=args.density, calibration=calibration, config=config,
                         headroom_bits=args.headroom_bits, acc_headroom=args.acc_headroom, progress=_log)
        for entry in model.report:
            for w in entry["warnings"]:
                _log(f"warning: {w}")
        if args.save_compressed:
            save_model(model, args.save_compressed, overwrite=args.force)
            _log(f"wrote the compressed model to {args.save_compressed}")
    elif args.density is not None or args.calibration or args.save_compressed:
        raise ModelError(f"{args.model} is already compressed: --density, --calibration and "
                         f"--save-compressed do not apply")
    if args.batch > 1:
        model = batched(model, args.batch)
        _log(f"batched {args.batch} vectors a run: {model.n_in} inputs -> {model.n_out} outputs "
             f"(python -m sim --batch {args.batch} runs it on per-vector inputs)")
    image = pack(model, config, balance=args.balance, shorten_runs=args.shorten_runs)
    image.save(args.output, overwrite=args.force)
    _log(f"wrote {image} to {args.output}" + (" (rows reordered: see --balance, --shorten-runs)" if image.balanced else ""))
    print(image.stats().table())
    return 0


def cmd_inspect(args) -> int:
    from .image import Image
    image = Image.load(args.image)
    stats = image.stats()
    if args.json:
        print(json.dumps({"config": image.config.to_dict(), **stats.to_dict()}, indent=1, allow_nan=False))
        return 0
    c = image.config
    print(f"{image}: {len(image.layers)} layers")
    print(f"config: n_pe={c.n_pe} code_bits={c.code_bits} run_bits={c.run_bits} act_bits={c.act_bits} "
          f"weight_bits={c.weight_bits} acc_bits={c.acc_bits} entries_per_word={c.entries_per_word}")
    for i, l in enumerate(image.layers):
        print(f"layer {i}: {l.n_in} -> {l.n_out}  relu={l.relu}  fa/fw/fo={l.fa}/{l.fw}/{l.fo}  shift={l.shift}")
    print()
    print(stats.table())
    return 0


def cmd_run(args) -> int:
    from .image import Image
    if args.output:
        if args.output.suffix != ".npy":
            raise ValueError(f"-o {args.output}: the output file must end in .npy")
        output_path(args.output, overwrite=args.force)
    image = Image.load(args.image)
    x = load_inputs(args.input, image, quantize=args.quantize, batch=args.batch)
    runs = stack(x, args.batch)
    y = unstack(golden.run(image, runs), args.batch, len(x))
    warn_wraps(image, runs)
    if args.output:
        with atomic_file(args.output, overwrite=args.force) as f:
            np.save(f, y)
        _log(f"wrote outputs {y.shape} {y.dtype} to {args.output}")
    else:
        np.set_printoptions(threshold=200, linewidth=120)
        print(y)
    return 0


def cmd_compare(args) -> int:
    from .compare import compare
    from .image import Image
    if args.plot:
        output_path(args.plot, overwrite=args.force)
    model = load_any(args.model)
    if isinstance(model, CompressedModel):
        raise ModelError(f"{args.model} is a compressed model: compare takes the float model the image was "
                         f"compressed from")
    image = Image.load(args.image)
    x = load_array(args.input, "float inputs")
    result = compare(model, image, x, tolerance=args.tolerance)
    print(json.dumps(result.to_dict(), indent=1) if args.json else result.table())
    if args.plot:
        result.plot(args.plot)
        _log(f"wrote {args.plot}")
    return 0


def cmd_splice(args) -> int:
    from synth.bitstream import BitstreamError, splice

    from .image import Image
    image = Image.load(args.image)
    try:
        splice(args.build_dir, image, args.output, progress=_log, overwrite=args.force)
    except BitstreamError as e:
        raise ValueError(str(e)) from None
    return 0


def cmd_board(args) -> int:
    from .board import BoardError, Device, LinkError
    from .image import Image
    if getattr(args, "output", None):
        output_path(args.output, overwrite=args.force)
    # the image and the inputs are checked before the board is touched
    image = Image.load(args.image) if args.action != "info" else None
    x = load_inputs(args.input, image, quantize=args.quantize, batch=args.batch) if args.action == "run" else None
    try:
        with Device(args.port, baud=args.baud) as dev:
            _log(f"board on {args.port}: OpenEIE, {dev.config.n_pe} PEs")
            if args.action == "info":
                print(json.dumps(dev.config.to_dict(), indent=1))
                return 0
            if args.action == "load" or not args.no_load:
                words = sum(m.depth for m in image.memories().values())
                _log(f"loading {words:,} words ...")
                dev.load(image)
                dev.verify(image)
                _log("loaded; every memory read back equals the image")
            else:
                # the bitstream should hold the image: check that it does (an iCE40's
                # SPRAM never does, a bitstream cannot initialise it)
                _log("checking that the board holds the image (every memory read back) ...")
                try:
                    dev.verify(image)
                except BoardError as e:
                    raise BoardError(f"{e}; load the image first (board run without --no-load)") from None
                dev.image = image
            if args.action == "load":
                return 0
            runs = stack(x, args.batch)
            y = np.stack([dev.run(v) for v in runs])
            counters = dev.counters()
            same = bool(np.array_equal(y, golden.run(image, runs)))
            y = unstack(y, args.batch, len(x))
            _log(f"{len(x)} vectors{f' in {len(runs)} runs' if args.batch > 1 else ''}; the last run took "
                 f"{counters['cycles']:,} cycles on the board; outputs {'equal' if same else 'DIFFER FROM'} "
                 f"the golden model")
            if args.output:
                with atomic_file(args.output, overwrite=args.force) as f:
                    np.save(f, y)
            else:
                np.set_printoptions(threshold=200, linewidth=120)
                print(y)
            return 0 if same else 1
    except (BoardError, LinkError) as e:
        raise ValueError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sw", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pack", help="compress (if needed) and pack a model .npz into an image directory")
    p.add_argument("model", type=Path, help="a float or compressed model .npz (layout: README), an ONNX graph .onnx, or a "
                        "PyTorch module .pt/.pth saved with torch.save(module) (only files you trust)")
    p.add_argument("-o", "--output", type=Path, required=True, help="image directory to write")
    p.add_argument("--density", type=float, help="fraction of weights kept, for a float model")
    p.add_argument("--calibration", type=Path, help="float calibration inputs .npy (B x n_in)")
    p.add_argument("--headroom-bits", type=int, default=0,
                   help="fraction bits given up per layer output against saturation (default 0)")
    p.add_argument("--acc-headroom", type=float, default=DEFAULT_ACC_HEADROOM,
                   help="inputs may be this many times the calibration's before an accumulator wraps "
                        f"(default {DEFAULT_ACC_HEADROOM:g})")
    p.add_argument("--save-compressed", type=Path, metavar="NPZ", help="also write the compressed model")
    p.add_argument("--balance", action="store_true",
                   help="place each layer's rows to even the PEs' work instead of row r on PE r %% n_pe "
                        "(outputs stay in the model's order)")
    p.add_argument("--shorten-runs", action="store_true",
                   help="order each PE's rows so that fewer padding entries are needed (less storage, fewer "
                        "cycles; outputs stay in the model's order)")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="pack N copies of the model, block-diagonal, so that a run computes N input vectors "
                        "(sw.batched: small models share each run's fixed costs; N times the weight memory)")
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    add_config_options(p)
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("inspect", help="print an image's layers and storage statistics")
    p.add_argument("image", type=Path)
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("run", help="run an image on inputs with the golden model")
    p.add_argument("image", type=Path)
    p.add_argument("input", type=Path, help="inputs .npy: integers (n_in,) or (B, n_in)")
    p.add_argument("-o", "--output", type=Path, help="write outputs to this .npy file instead of printing")
    p.add_argument("--quantize", action="store_true", help="accept float inputs and quantise them")
    add_batch_option(p)
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compare", help="float model, compressed model and golden model side by side, per layer")
    p.add_argument("model", type=Path, help="the float model the image came from (.npz, .onnx, .pt)")
    p.add_argument("image", type=Path)
    p.add_argument("input", type=Path, help="float inputs .npy (B, n_in): your own data")
    p.add_argument("--tolerance", type=float, default=0.1,
                   help="relative RMS error against float beyond which a layer diverges (default 0.1)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--plot", type=Path, metavar="PNG", help="also plot the errors per layer")
    p.add_argument("--force", action="store_true", help="replace an existing plot")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("splice", help="put an image into a built bitstream (make bitstream), no new place and route")
    p.add_argument("build_dir", type=Path, help="a bitstream build directory (build/bitstream/<board>)")
    p.add_argument("image", type=Path, help="an image packed for the bitstream's configuration")
    p.add_argument("-o", "--output", type=Path, required=True, help="the new bitstream (.bit for ECP5, .bin for iCE40)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_splice)

    p = sub.add_parser("board", help="drive a board over its UART (sw.board.Device)")
    actions = p.add_subparsers(dest="action", required=True)

    def board_parser(name, help):
        q = actions.add_parser(name, help=help)
        q.add_argument("--port", required=True, help="the serial port, e.g. /dev/ttyUSB0 (or a pyserial URL)")
        q.add_argument("--baud", type=int, default=1_000_000, help="the board's bit rate (default 1000000)")
        q.set_defaults(func=cmd_board)
        return q

    board_parser("info", "what the board is: its configuration")
    q = board_parser("load", "write an image into the board's memories and read it back")
    q.add_argument("image", type=Path)
    q = board_parser("run", "load an image (unless --no-load), run inputs, compare with the golden model")
    q.add_argument("image", type=Path)
    q.add_argument("input", type=Path, help="inputs .npy: integers (n_in,) or (B, n_in)")
    q.add_argument("--no-load", action="store_true",
                   help="the board already holds the image (its bitstream); checked by reading it back")
    q.add_argument("--quantize", action="store_true", help="accept float inputs and quantise them")
    add_batch_option(q)
    q.add_argument("-o", "--output", type=Path, help="write outputs to this .npy file instead of printing")
    q.add_argument("--force", action="store_true", help="replace an existing output file")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with cli_errors():
            return args.func(args)
    except SystemExit as e:
        return e.code
