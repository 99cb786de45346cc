"""A packed network on disk: a directory with ``network.json`` (the steps,
host steps with their parameters, engine steps naming their images) and one
image directory per program (`sw.Image.save`'s format).

    program.save("build/cnn/program")
    program = sw.net.NetworkProgram.load("build/cnn/program")

Written atomically (complete or not at all); loaded strictly: the JSON's
fields and types, every image (`sw.Image.load` checks its own), every
image's configuration against the network's, and every step's shapes
against the step before it. Errors name the file and the step.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..config import Config, ConfigError
from ..files import atomic_directory
from ..image import Image, ImageError
from .lower import Engine, FlattenStep, Gather, Join, Permute, Pool, Relu
from .nodes import window_output

__all__ = ["save_program", "load_program", "NetworkFileError", "FORMAT"]

FORMAT = "openeie-network"
VERSION = 1


class NetworkFileError(ValueError):
    """A saved network is malformed; the message names the file and step."""


def _replaceable(path: Path) -> bool:
    if not path.is_dir() or path.is_symlink():
        return False
    try:
        if not any(path.iterdir()):
            return True
        return json.loads((path / "network.json").read_bytes()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _dump_steps(steps, tmp: Path, counter: list) -> list:
    out = []
    for s in steps:
        d = {"kind": type(s).__name__, "in_shape": list(s.in_shape), "out_shape": list(s.out_shape)}
        if isinstance(s, Engine):
            names = []
            for image in s.images:
                name = f"program_{counter[0]}"
                image.save(tmp / name)
                names.append(name)
                counter[0] += 1
            d.update(kinds=list(s.kinds), images=names)
        elif isinstance(s, (Gather, Pool)):
            d.update(kernel=list(s.kernel), stride=list(s.stride), padding=list(s.padding))
            if isinstance(s, Pool):
                d["mode"] = s.mode
        elif isinstance(s, Permute):
            d["perm"] = [int(v) for v in s.perm]
        elif isinstance(s, Join):
            d["branches"] = [_dump_steps(b, tmp, counter) for b in s.branches]
        out.append(d)
    return out


def save_program(program, path, *, overwrite: bool = False) -> Path:
    with atomic_directory(path, overwrite=overwrite, replaceable=_replaceable) as tmp:
        doc = {"format": FORMAT, "version": VERSION, "config": program.config.to_dict(),
               "input_shape": list(program.input_shape), "output_shape": list(program.output_shape),
               "input_frac_bits": program.input_frac_bits, "output_frac_bits": program.output_frac_bits,
               "steps": _dump_steps(program.steps, tmp, [0])}
        (tmp / "network.json").write_text(json.dumps(doc, indent=1) + "\n")
    return Path(path).absolute()


class _Reader:
    def __init__(self, path: Path, config: Config):
        self.path, self.config = path, config
        self.file = path / "network.json"

    def fail(self, where: str, msg: str):
        raise NetworkFileError(f"{self.file}: {where}: {msg}")

    def ints(self, d, key, n, where, lo=0):
        v = d.get(key)
        if not (isinstance(v, list) and len(v) == n and all(isinstance(i, int) and not isinstance(i, bool) and i >= lo
                                                           for i in v)):
            self.fail(where, f"{key!r} must be a list of {n} ints >= {lo}, got {v!r}")
        return tuple(v)

    def steps(self, items, shape, where) -> tuple[list, tuple]:
        if not isinstance(items, list) or not items:
            self.fail(where, "'steps' must be a non-empty list")
        out = []
        for i, d in enumerate(items):
            w = f"{where}step {i}"
            if not isinstance(d, dict):
                self.fail(w, "not an object")
            in_shape = self.ints(d, "in_shape", 3, w, 1)
            out_shape = self.ints(d, "out_shape", 3, w, 1)
            if in_shape != shape:
                self.fail(w, f"takes {in_shape}, the step before gives {shape}")
            kind = d.get("kind")
            h, wd, c = in_shape
            if kind == "Engine":
                names, kinds = d.get("images"), d.get("kinds")
                if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
                    self.fail(w, "'images' must be a non-empty list of directory names")
                images = []
                for n in names:
                    if "/" in n or n.startswith("."):
                        self.fail(w, f"image {n!r} is not a plain directory name")
                    try:
                        images.append(Image.load(self.path / n))
                    except ImageError as e:
                        raise NetworkFileError(f"{self.file}: {w}: {e}") from None
                layers = sum(len(im.layers) for im in images)
                if not (isinstance(kinds, list) and len(kinds) == layers and all(isinstance(k, str) for k in kinds)):
                    self.fail(w, f"'kinds' must name each of its {layers} layers")
                for n, im in zip(names, images):
                    if im.config != self.config:
                        self.fail(w, f"image {n} is packed for another configuration than the network's")
                if images[0].n_in != c or images[-1].n_out != out_shape[2] or out_shape[:2] != (h, wd) \
                        or any(a.n_out != b.n_in for a, b in zip(images, images[1:])):
                    self.fail(w, f"its images ({' -> '.join(str(im.n_in) for im in images)} -> {images[-1].n_out}) "
                                 f"do not take {in_shape} to {out_shape}")
                step = Engine(in_shape, out_shape, kinds=list(kinds), images=images)
            elif kind in ("Gather", "Pool"):
                kernel = self.ints(d, "kernel", 2, w, 1)
                stride = self.ints(d, "stride", 2, w, 1)
                padding = self.ints(d, "padding", 2, w, 0)
                try:
                    ho = window_output(h, kernel[0], stride[0], padding[0], w)
                    wo = window_output(wd, kernel[1], stride[1], padding[1], w)
                except ValueError as e:
                    self.fail(w, str(e))
                expect = (ho, wo, kernel[0] * kernel[1] * c if kind == "Gather" else c)
                if out_shape != expect:
                    self.fail(w, f"gives {out_shape}, its parameters give {expect}")
                if kind == "Gather":
                    step = Gather(in_shape, out_shape, kernel, stride, padding)
                else:
                    if d.get("mode") not in ("avg", "max"):
                        self.fail(w, f"'mode' must be 'avg' or 'max', got {d.get('mode')!r}")
                    step = Pool(in_shape, out_shape, d["mode"], kernel, stride, padding)
            elif kind == "FlattenStep":
                if out_shape != (1, 1, h * wd * c):
                    self.fail(w, f"a flatten of {in_shape} gives (1, 1, {h * wd * c}), not {out_shape}")
                step = FlattenStep(in_shape, out_shape)
            elif kind in ("Permute", "Relu"):
                if out_shape != in_shape:
                    self.fail(w, f"keeps the shape, but says {out_shape}")
                if kind == "Permute":
                    perm = d.get("perm")
                    if not (isinstance(perm, list) and sorted(perm) == list(range(c))):
                        self.fail(w, f"'perm' must be a permutation of 0..{c - 1}")
                    step = Permute(in_shape, out_shape, np.asarray(perm, dtype=np.int64))
                else:
                    step = Relu(in_shape, out_shape)
            elif kind == "Join":
                branches = d.get("branches")
                if not (isinstance(branches, list) and len(branches) >= 2):
                    self.fail(w, "'branches' must list at least two branches")
                parsed = [self.steps(b, in_shape, f"{w}, branch {k}, ") for k, b in enumerate(branches)]
                outs = [o for _, o in parsed]
                if len({o[:2] for o in outs}) != 1 or out_shape != (*outs[0][:2], sum(o[2] for o in outs)):
                    self.fail(w, f"its branches give {outs}, which do not join to {out_shape}")
                step = Join(in_shape, out_shape, [s for s, _ in parsed])
            else:
                self.fail(w, f"unknown kind {kind!r}")
            out.append(step)
            shape = out_shape
        return out, shape


def load_program(path):
    from .program import NetworkProgram
    path = Path(path)
    file = path / "network.json"
    if not file.is_file():
        raise NetworkFileError(f"{path}: not a saved OpenEIE network (no network.json)")
    try:
        doc = json.loads(file.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NetworkFileError(f"{file}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise NetworkFileError(f"{file}: not a saved OpenEIE network (format is not {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise NetworkFileError(f"{file}: version {doc.get('version')!r}; this OpenEIE reads version {VERSION}")
    try:
        config = Config.from_dict(doc.get("config"), complete=True)
    except (ConfigError, TypeError, AttributeError) as e:
        raise NetworkFileError(f"{file}: config: {e}") from None
    r = _Reader(path, config)
    in_shape = r.ints(doc, "input_shape", 3, "the network", 1)
    out_shape = r.ints(doc, "output_shape", 3, "the network", 1)
    fracs = []
    for key in ("input_frac_bits", "output_frac_bits"):
        v = doc.get(key)
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 64):
            r.fail("the network", f"{key!r} must be an int in 0..64, got {v!r}")
        fracs.append(v)
    steps, shape = r.steps(doc.get("steps"), in_shape, "")
    if shape != out_shape:
        r.fail("the network", f"the steps give {shape}, output_shape says {out_shape}")
    return NetworkProgram(config, in_shape, out_shape, steps, *fracs)
