"""Networks beyond a chain of dense layers (convolutions, grouped and
depthwise ones, channel shuffle, concat, pooling, low-rank layers), lowered
onto the same engine: see `sw.net.lower` for how, `docs/design.md` §14."""

from .compress import CompressedNetwork, compress_network
from .lower import Lowered, engines, lower, nchw_to_nhwc
from .nodes import (AdaptiveAvgPool2d, AvgPool2d, ChannelShuffle, Concat, Conv2d, Flatten, Linear, LowRank,
                    MaxPool2d, Network, Node, ReLU)
from .program import NetworkCycles, NetworkProgram, pack_network, run_network

__all__ = ["Network", "Node", "Conv2d", "Linear", "LowRank", "ReLU", "ChannelShuffle", "Concat", "AvgPool2d",
           "MaxPool2d", "AdaptiveAvgPool2d", "Flatten", "Lowered", "lower", "engines", "nchw_to_nhwc",
           "CompressedNetwork", "compress_network", "NetworkProgram", "NetworkCycles", "pack_network",
           "run_network"]
