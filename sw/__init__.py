"""OpenEIE's software layer: compress a model, pack it into the accelerator's
memory images, and run an image bit-exactly with the golden model.

    model = sw.compress(layers, density=0.1, calibration=x_cal)
    image = sw.pack(model, sw.Config(n_pe=16))
    y = sw.golden.run(image, sw.quantize_input(x, model.input_frac_bits))
"""

from . import golden, metrics
from . import batching
from .batching import batched, stack, unstack
from .compare import Comparison, compare
from .compress import compress, dequantize, forward, quantize_input
from .config import Config, ConfigError
from .format import FormatError, MemoryImage
from .frontends import from_onnx, from_torch, load_any
from .lowrank import factorize
from .net import (AdaptiveAvgPool2d, AvgPool2d, ChannelShuffle, Concat, Conv2d, Flatten, Linear, LowRank, MaxPool2d,
                  Network, ReLU)
from .image import Image, ImageError, ImageLayer, PESlice
from .model import CompressedLayer, CompressedModel, Layer, ModelError
from .modelio import load_model, save_model
from .pack import PackError, pack, unpack

__all__ = [
    "Config", "ConfigError", "Layer", "CompressedLayer", "CompressedModel", "ModelError",
    "compress", "pack", "unpack", "PackError", "Image", "ImageLayer", "PESlice", "ImageError",
    "MemoryImage", "FormatError", "golden", "metrics", "quantize_input", "dequantize", "forward",
    "load_model", "save_model", "from_torch", "from_onnx", "load_any",
    "compare", "Comparison", "factorize", "batched", "stack", "unstack",
    "Network", "Conv2d", "Linear", "LowRank", "ReLU", "ChannelShuffle", "Concat", "AvgPool2d", "MaxPool2d",
    "AdaptiveAvgPool2d", "Flatten",
]
