"""How blocks hold their parts, so that one walk finds every image memory.

A block lists its sub-blocks in ``self.parts`` (submodule name -> block) and
the image memories it owns in ``self.image_memories`` (kind, as in
`sw.format.kind_specs` -> `Memory`); `add_parts` adds both as submodules
under those names, and `image_memory_paths` walks the same dicts. The names
the generated design uses and the names the simulator, the synthesis report
and the bitstream tools look for therefore cannot drift apart.
"""

from __future__ import annotations

from sw.format import pe_memory_name

__all__ = ["add_parts", "image_memory_paths"]


def add_parts(m, block, skip=()):
    """Add `block`'s parts and image memories to module `m`."""
    for name, part in getattr(block, "parts", {}).items():
        if name not in skip:
            m.submodules[name] = part
    for kind, mem in getattr(block, "image_memories", {}).items():
        m.submodules[kind] = mem


def image_memory_paths(block, path: str = "", pe: int | None = None):
    """Yield ``(image name, module path, memory name)`` for every image
    memory below `block` (a PE's memories are named ``pe{k}.kind``; a block
    says which PE it is with ``pe_index``)."""
    pe = getattr(block, "pe_index", pe)
    for kind in getattr(block, "image_memories", {}):
        yield (kind if pe is None or kind == "codebook" else pe_memory_name(pe, kind)), path, kind
    for name, part in getattr(block, "parts", {}).items():
        yield from image_memory_paths(part, f"{path}.{name}" if path else name, pe)
