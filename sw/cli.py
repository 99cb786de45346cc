"""``python -m sw``: pack, inspect and run images from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from . import golden
from .compress import compress, quantize_input
from .config import Config, ConfigError
from .files import atomic_file
from .format import FormatError
from .model import CompressedModel, ModelError
from .modelio import load_model, save_model
from .pack import PackError, pack

__all__ = ["main", "add_config_options", "config_from_args"]


def add_config_options(parser: argparse.ArgumentParser):
    """One ``--field`` option per `Config` field, plus ``--config FILE.json``."""
    group = parser.add_argument_group("hardware configuration (defaults: sw.Config())")
    group.add_argument("--config", type=Path, metavar="JSON", help="read the configuration from a JSON file")
    for f in dataclasses.fields(Config):
        group.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=int, metavar="N",
                           help=f"(default {f.default})")


def config_from_args(args) -> Config:
    base = Config.from_json(args.config.read_text()) if args.config else Config()
    changes = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
               if getattr(args, f.name) is not None}
    return base.replace(**changes)


def _log(line: str):
    print(line, file=sys.stderr, flush=True)


def cmd_pack(args) -> int:
    config = config_from_args(args)
    model = load_model(args.model)
    if not isinstance(model, CompressedModel):
        if args.density is None:
            raise ModelError(f"{args.model} is a float model: give --density to compress it")
        calibration = np.load(args.calibration) if args.calibration else None
        _log(f"compressing {len(model)} layers to density {args.density}")
        model = compress(model, density=args.density, calibration=calibration, config=config,
                         headroom_bits=args.headroom_bits, progress=_log)
        for entry in model.report:
            for w in entry["warnings"]:
                _log(f"warning: {w}")
        if args.save_compressed:
            save_model(model, args.save_compressed)
            _log(f"wrote the compressed model to {args.save_compressed}")
    image = pack(model, config)
    image.save(args.output, overwrite=args.force)
    _log(f"wrote {image} to {args.output}")
    print(image.stats().table())
    return 0


def cmd_inspect(args) -> int:
    from .image import Image
    image = Image.load(args.image)
    stats = image.stats()
    if args.json:
        print(json.dumps({"config": image.config.to_dict(), **stats.to_dict()}, indent=1))
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
    image = Image.load(args.image)
    x = np.load(args.input)
    if np.issubdtype(x.dtype, np.floating):
        if not args.quantize:
            raise TypeError(f"{args.input} holds floats ({x.dtype}); pass --quantize to convert them with "
                            f"the image's input format (fa = {image.layers[0].fa})")
        x = quantize_input(x, image.layers[0].fa, image.config.act_bits)
    y = golden.run(image, x)
    if args.output:
        path = args.output if args.output.suffix == ".npy" else args.output.with_name(args.output.name + ".npy")
        with atomic_file(path) as f:            # np.save's naming, written atomically
            np.save(f, y)
        _log(f"wrote outputs {y.shape} {y.dtype} to {path}")
    else:
        np.set_printoptions(threshold=200, linewidth=120)
        print(y)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sw", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pack", help="compress (if needed) and pack a model .npz into an image directory")
    p.add_argument("model", type=Path, help="a float or compressed model .npz (layout: README)")
    p.add_argument("-o", "--output", type=Path, required=True, help="image directory to write")
    p.add_argument("--density", type=float, help="fraction of weights kept, for a float model")
    p.add_argument("--calibration", type=Path, help="float calibration inputs .npy (B x n_in)")
    p.add_argument("--headroom-bits", type=int, default=0, help="fraction bits given up per output (default 0)")
    p.add_argument("--save-compressed", type=Path, metavar="NPZ", help="also write the compressed model")
    p.add_argument("--force", action="store_true", help="replace an existing image directory")
    add_config_options(p)
    p.set_defaults(func=cmd_pack)

    p = sub.add_parser("inspect", help="print an image's layers and storage statistics")
    p.add_argument("image", type=Path)
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("run", help="run an image on inputs with the golden model")
    p.add_argument("image", type=Path)
    p.add_argument("input", type=Path, help="inputs .npy: integers (n_in,) or (B, n_in)")
    p.add_argument("-o", "--output", type=Path, help="write outputs .npy instead of printing")
    p.add_argument("--quantize", action="store_true", help="accept float inputs and quantise them")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ModelError, PackError, FormatError, FileExistsError, FileNotFoundError,
            TypeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
