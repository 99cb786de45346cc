"""Pack an Alex-6-sized layer for 64 PEs and time it against scipy's tocsc().

    make bench-pack          (or: python bench/pack_alex6.py [--repeat N])

Alex-6: 9216 inputs, 4096 outputs, 9% weight density (about 3.4 million
nonzeros). Goals: pack within 2x of ``tocsc()`` of the same CSR matrix,
measured in the same run, and the golden model under 0.1 s for one 35%-dense
input. Prints a table and writes ``build/bench/pack_alex6.json``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import sw  # noqa: E402
from sw.files import atomic_file  # noqa: E402


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n-pe", type=int, default=64)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n_out, n_in, density = 4096, 9216, 0.09
    nnz = int(density * n_out * n_in)
    flat = rng.choice(n_out * n_in, size=nnz, replace=False)
    codes = sp.csr_array((rng.integers(1, 16, size=nnz).astype(np.uint8), (flat // n_in, flat % n_in)),
                         shape=(n_out, n_in))
    codebook = np.concatenate([[0], np.arange(1, 16) * 100 - 800])
    layer = sw.CompressedLayer(codes, codebook, None, True, 8, 8, 8)
    model = sw.CompressedModel([layer], 8)
    config = sw.Config(n_pe=args.n_pe, weight_depth=131072, pointer_depth=16384, row_depth=1024)
    csr = layer.codes

    t_csc, _ = best_of(lambda: csr.tocsc(), args.repeat)
    t_pack, image = best_of(lambda: sw.pack(model, config), args.repeat)
    x = rng.integers(-2000, 2000, size=n_in).astype(np.int16)
    x[rng.random(n_in) >= 0.35] = 0
    t0 = time.perf_counter()
    sw.golden.run(image, x)                       # first run decodes the image's entries
    t_first = time.perf_counter() - t0
    t_golden, _ = best_of(lambda: sw.golden.run(image, x), args.repeat)
    t_mem, _ = best_of(lambda: image.memories(), 1)

    result = {
        "layer": "Alex-6 9216 -> 4096, 9% density", "n_pe": config.n_pe, "nonzeros": int(csr.nnz),
        "entries": int(image.layers[0].entries.size), "scipy_tocsc_s": t_csc, "pack_s": t_pack,
        "pack_over_tocsc": t_pack / t_csc, "golden_first_run_s": t_first, "golden_run_s": t_golden,
        "memories_s": t_mem, "repeat": args.repeat,
    }
    print(f"Alex-6 ({n_in} -> {n_out}, {csr.nnz:,} nonzeros) packed for {config.n_pe} PEs, best of {args.repeat}:")
    print(f"  scipy tocsc()           {t_csc * 1e3:8.1f} ms")
    print(f"  sw.pack()               {t_pack * 1e3:8.1f} ms   {t_pack / t_csc:.2f}x tocsc (goal <= 2x)")
    print(f"  golden, 35% input       {t_golden * 1e3:8.1f} ms   (first run, decoding the image: "
          f"{t_first * 1e3:.1f} ms; goal < 100 ms)")
    print(f"  image.memories()        {t_mem * 1e3:8.1f} ms")
    out = Path("build/bench/pack_alex6.json")
    with atomic_file(out, "w") as f:
        f.write(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
