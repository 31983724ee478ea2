"""Step-by-step traces of convolution and pooling, forward and backward, for teaching.

Each trace turns one operation on one image into the steps a person would do by
hand: for every output cell the window on the padded input, the kernel taps, the
products and their sum. The numbers come from cnnlab's own engine, so a trace's
totals are exactly what `cnnlab.nn.functional` computes. The lab, `cnnlab animate`
and the GIF export all draw from these traces through `scene`.

>>> from cnnlab import explain
>>> t = explain.conv2d_trace([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
>>> [s.value for s in t.steps]
[19.0, 25.0, 37.0, 43.0]
>>> explain.explain_output_size(5, 3, s=2, p=1).derivation
'floor((5 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 3'
"""
from .conv import ConvBackwardTrace, ConvStep, ConvTrace, GradStep, conv2d_backward_trace, conv2d_trace
from .conv_transpose import (ConvTransposeTrace, ScatterStep, check_conv_transpose2d, conv_transpose2d_trace,
                             conv_transpose_scene, explain_conv_transpose_output_size, gather_recipe,
                             gather_scene)
from .im2col import MatrixProduct, conv2d_matrix, conv_transpose2d_matrix, matrix_of, matrix_scene, unfold
from .pool import (MODES, PoolBackwardTrace, PoolStep, PoolTrace, RouteStep, pool2d_backward_trace,
                   pool2d_trace)
from .network import LayerField, NeuronStage, NeuronTrace, ReceptiveField, neuron_trace, receptive_field
from .training import (GradCheck, SoftmaxCrossEntropy, UpdateStep, gradcheck, softmax_cross_entropy,
                       update_step)
from .scene import PALETTE, Panel, Scene, hover, scene, step_count
from ._common import num as format_number  # numbers as a person writes them: 3, -0.25, 0.3333
from ..cuda_layout import LaunchMap, launch_map  # which CUDA block/thread computes each cell
from .sizes import Check, SizeCheck, check_conv2d, check_pool2d, explain_output_size, output_size, pair

__all__ = [
    "LaunchMap", "launch_map", "format_number",
    "conv2d_trace", "pool2d_trace", "conv2d_backward_trace", "pool2d_backward_trace",
    "ConvTrace", "ConvStep", "ConvBackwardTrace", "GradStep",
    "PoolTrace", "PoolStep", "PoolBackwardTrace", "RouteStep", "MODES",
    "output_size", "explain_output_size", "SizeCheck", "check_conv2d", "check_pool2d", "Check", "pair",
    "conv_transpose2d_trace", "ConvTransposeTrace", "ScatterStep", "conv_transpose_scene",
    "check_conv_transpose2d", "explain_conv_transpose_output_size", "gather_scene", "gather_recipe",
    "unfold", "conv2d_matrix", "conv_transpose2d_matrix", "matrix_of", "matrix_scene", "MatrixProduct",
    "receptive_field", "ReceptiveField", "LayerField", "neuron_trace", "NeuronTrace", "NeuronStage",
    "gradcheck", "GradCheck", "update_step", "UpdateStep", "softmax_cross_entropy", "SoftmaxCrossEntropy",
    "scene", "hover", "step_count", "Scene", "Panel", "PALETTE",
]
