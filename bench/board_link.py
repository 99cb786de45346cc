"""The board over its UART, simulated: how much of a vector's time is the
link and how much the accelerator.

    make bench-board         (or: python bench/board_link.py [--board ulx3s] [--vectors 20])

The digits MLP, packed for the board's configuration, starts in the
simulated board top's memories (as a bitstream holds it); the host driver
(`sw.board.Device`) runs the vectors over the UART pins at the board's
real ratio of clock to bit rate (50 MHz from the ULX3S's PLL / 1 Mbaud: 50
cycles a bit; 24 on the iCEBreaker). The time to load or verify a whole image over
the link is computed from the framing (simulating it takes minutes). Reports, per
vector: bytes each way, cycles of the whole UART exchange (the UART-bound
rate), and the accelerator's own cycles for the same vector with the input
streamed at full rate (`sim.run`: the on-chip rate). Every output is
compared with the golden model. Writes ``build/bench/board_link.json``.
Cycle and byte counts are exact and machine-independent.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import sim  # noqa: E402
import sw  # noqa: E402
from hw.board import DEFAULT_BAUD, FRAME_TIMEOUT_S, board  # noqa: E402
from sw import link as link_module  # noqa: E402
from sw.board import CHUNK_WORDS  # noqa: E402
from sw.files import atomic_file  # noqa: E402
from synth.targets import target  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--board", default="ulx3s", choices=["ulx3s", "icebreaker"])
    parser.add_argument("--vectors", type=int, default=20)
    args = parser.parse_args()

    b = board(args.board)
    clk_hz = b.pll_mhz * 1e6
    divisor = round(clk_hz / DEFAULT_BAUD)
    config = sw.Config.preset(target(b.target).preset, n_pe=b.n_pe)
    layers = sw.load_model(ROOT / "models" / "digits_mlp.npz")
    data = np.load(ROOT / "models" / "digits_data.npz")
    model = sw.compress(layers, density=1.0, calibration=data["x_cal"], config=config)
    image = sw.pack(model, config)
    x = sw.quantize_input(data["x_test"][:args.vectors], model.input_frac_bits, config.act_bits)
    golden = sw.golden.run(image, x)

    # the simulated board's timeout: long enough for a vector, short enough to simulate
    link = sim.run_board(image, x, preloaded=True, verify=False, board={"divisor": divisor, "timeout": 200_000})
    chip = sim.run(image, x, progress_bar=False)
    ok = bool(np.array_equal(link["outputs"], golden)) and bool(np.array_equal(chip.outputs, golden))
    n = len(x)
    # a whole image each way, in requests of CHUNK_WORDS words (not simulated: minutes of simulated UART)
    words = sum(m.depth for m in image.memories().values())
    chunks = sum(-(-m.depth // CHUNK_WORDS) for m in image.memories().values())
    verify_s = (4 * words + chunks * (link_module.HEADER_BYTES + 3)) * 10 / DEFAULT_BAUD
    uart_cycles = link["run_cycles"] / n
    chip_cycles = float(np.mean(chip.cycles))
    result = {
        "board": b.name, "n_pe": config.n_pe, "clock_mhz": clk_hz / 1e6, "baud": DEFAULT_BAUD,
        "cycles_per_bit": divisor, "vectors": n, "bit_exact": ok,
        "uart_cycles_per_vector": uart_cycles,
        "chip_cycles_per_vector": chip_cycles,
        "uart_vectors_per_s": clk_hz / uart_cycles, "chip_vectors_per_s": clk_hz / chip_cycles,
        "verify_seconds_computed": verify_s,
        "link_bytes_total": {"sent": link["bytes_sent"], "received": link["bytes_received"]},
        "n_in": image.n_in, "n_out": image.n_out,
        "note": f"the board abandons a stalled request after {FRAME_TIMEOUT_S} s; the simulation uses 200,000 cycles",
    }
    out = ROOT / "build" / "bench" / "board_link.json"
    with atomic_file(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{b.name}: {config.n_pe} PEs at {clk_hz / 1e6:g} MHz, UART {DEFAULT_BAUD:,} baud ({divisor} cycles a bit); "
          f"the digits MLP ({image.n_in} inputs, {image.n_out} outputs), {n} vectors, "
          f"bit-exact: {'yes' if ok else 'NO'}")
    print(f"  over the UART: {uart_cycles:,.0f} cycles a vector = {clk_hz / uart_cycles:,.0f} vectors/s "
          f"(start, {image.n_in} inputs, {image.n_out} outputs, status polls)")
    print(f"  on chip:       {chip_cycles:,.0f} cycles a vector = {clk_hz / chip_cycles:,.0f} vectors/s "
          f"({uart_cycles / chip_cycles:.0f}x faster than the link)")
    print(f"  loading or verifying every memory over the UART: {verify_s:.1f} s (from the framing: "
          f"{words:,} words in requests of {CHUNK_WORDS})")
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
