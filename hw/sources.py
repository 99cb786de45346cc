"""The hardware sources as this process imported them.

Cached builds (Verilator models, synthesis runs) are keyed by a digest of
the hardware sources. Reading the files when a build starts would key a
build made from the modules in memory with whatever the files say by then,
so a source edited while a long test run is going would leave a cached
build under the new sources' key holding the old design. `hw` takes this
snapshot first, before it imports the rest of itself.
"""

from __future__ import annotations

from pathlib import Path

HW_DIR = Path(__file__).resolve().parent

# the sw modules whose tables the hardware is built from: the image format and the configuration
SHARED = (HW_DIR.parent / "sw" / "format.py", HW_DIR.parent / "sw" / "config.py")


def read_sources() -> list[tuple[str, bytes]]:
    """(name, contents) of every ``hw/*.py`` and of `SHARED`, in digest order."""
    return [(path.name, path.read_bytes()) for path in sorted(HW_DIR.glob("*.py")) + list(SHARED)]


SNAPSHOT = read_sources()
