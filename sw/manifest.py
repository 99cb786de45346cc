"""An image directory's ``manifest.json``: what it holds and how strictly it
is read.

Every key is required and no other key is allowed; every value has one type
(integers are never booleans or floats). The manifest carries the sha256 of
its own canonical form (``sha256``), so an edit to any field, not only to a
memory file, is caught: an edited manifest is refused, never half-believed.
"""

from __future__ import annotations

import hashlib
import json

from . import format as fmt
from .config import Config, ConfigError
from .format import FormatError

__all__ = ["MANIFEST_VERSION", "LAYER_FIELDS", "MEMORY_FIELDS", "digest", "seal", "check_manifest", "ManifestError"]

# version of the directory layout (manifest + files); the memory layout the
# hardware reads is `sw.format.FORMAT_VERSION`
MANIFEST_VERSION = 4         # 3: the configuration has input_width, layers a row order; 4: layers name
                             # their source and exit threshold

TOP_FIELDS = ("format", "version", "config", "layers", "memories", "sha256")
LAYER_FIELDS = {"n_in": int, "n_out": int, "relu": bool, "fa": int, "fw": int, "fo": int, "shift": int,
                "nnz": int, "entries": int, "order": list, "src": "source", "exit_threshold": "optional int"}
MEMORY_FIELDS = {"file": str, "width": int, "depth": int, "words": int, "sha256": str}


class ManifestError(FormatError):
    """A manifest is malformed or edited."""


def digest(manifest: dict) -> str:
    """The sha256 of the manifest's canonical JSON, without its own field."""
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def seal(manifest: dict) -> dict:
    """`manifest` with its own checksum added."""
    return {**manifest, "sha256": digest(manifest)}


def _is(value, kind) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == "source":                    # a layer index, or -1 for the input
        return isinstance(value, int) and not isinstance(value, bool) and value >= -1
    if kind == "optional int":
        return value is None or _is(value, int)
    return isinstance(value, kind)


def _kind_name(kind) -> str:
    names = {int: "an int >= 0", "source": "an int >= -1", "optional int": "null or an int >= 0"}
    return names.get(kind) or "a " + kind.__name__


def _fields(obj, spec: dict, where: str):
    if not isinstance(obj, dict):
        raise ManifestError(f"{where} must be a JSON object, got {type(obj).__name__}")
    missing = [k for k in spec if k not in obj]
    unknown = [k for k in obj if k not in spec]
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unknown {', '.join(map(str, unknown))}"] if unknown else [])
        raise ManifestError(f"{where}: {'; '.join(parts)}")
    for k, kind in spec.items():
        if not _is(obj[k], kind):
            raise ManifestError(f"{where}: {k} must be {_kind_name(kind)}, got {obj[k]!r}")


def check_manifest(manifest, where: str) -> tuple[Config, list[dict], dict[str, dict]]:
    """Validate a parsed manifest's structure, types and checksum; returns
    `(config, layers, memories)`. Consistency with the memory files is the
    caller's to check (`sw.Image.load`)."""
    if not isinstance(manifest, dict) or manifest.get("format") != fmt.FORMAT_NAME:
        raise ManifestError(f"{where}: not an OpenEIE image manifest")
    version = manifest.get("version")
    if version != MANIFEST_VERSION:
        hint = " (written by an older OpenEIE: pack the model again)" if _is(version, int) and \
            version < MANIFEST_VERSION else ""
        raise ManifestError(f"{where}: format version {version!r}; this OpenEIE reads version "
                            f"{MANIFEST_VERSION}{hint}")
    _fields(manifest, {k: object for k in TOP_FIELDS}, where)
    if manifest["sha256"] != digest(manifest):
        raise ManifestError(f"{where}: its sha256 does not match its contents (edited or corrupt)")
    try:
        config = Config.from_dict(manifest["config"], complete=True)
    except (ConfigError, TypeError) as e:
        raise ManifestError(f"{where}: bad configuration: {e}") from None
    layers = manifest["layers"]
    if not isinstance(layers, list) or not layers:
        raise ManifestError(f"{where}: layers must be a non-empty list")
    if len(layers) > config.max_layers:
        raise ManifestError(f"{where}: {len(layers)} layers, but max_layers is {config.max_layers}")
    for i, layer in enumerate(layers):
        _fields(layer, LAYER_FIELDS, f"{where}: layer {i}")
    memories = manifest["memories"]
    shapes = fmt.memory_shapes(config)
    if not isinstance(memories, dict):
        raise ManifestError(f"{where}: memories must be a JSON object")
    missing = [n for n in shapes if n not in memories]
    unknown = [n for n in memories if n not in shapes]
    if missing or unknown:
        raise ManifestError(f"{where}: memories {'missing: ' + ', '.join(missing[:4]) if missing else ''}"
                            f"{'; ' if missing and unknown else ''}"
                            f"{'not in this configuration: ' + ', '.join(unknown[:4]) if unknown else ''}")
    for name, (width, depth) in shapes.items():
        entry = memories[name]
        _fields(entry, MEMORY_FIELDS, f"{where}: memory {name}")
        if (entry["width"], entry["depth"]) != (width, depth):
            raise ManifestError(f"{where}: memory {name} is listed as {entry['width']} x {entry['depth']}, "
                                f"the configuration says {width} x {depth}")
        if entry["file"] != f"{name}.hex":
            raise ManifestError(f"{where}: memory {name} is in file {entry['file']!r}, not {name}.hex")
        if entry["words"] > depth:
            raise ManifestError(f"{where}: memory {name} lists {entry['words']} words, more than its depth {depth}")
    return config, layers, memories
