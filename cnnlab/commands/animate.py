"""Animate a convolution or pooling step by step, as a GIF or PNG frames.

One frame per step: the window on the padded input, the kernel, the output cell
filling in and the arithmetic with the real numbers; --backward animates the
gradients instead. The numbers come from cnnlab's engine.

examples:
  cnnlab animate conv --size 5 --kernel 3 --stride 2 --padding 1 -o conv.gif
  cnnlab animate conv --size 7 --kernel 3 --dilation 2 --preset sobel-x --frames frames/
  cnnlab animate conv --image digit.png --size 12 --kernel 3 --preset edge -o edge.gif
  cnnlab animate conv --size 4 --kernel 3 --padding 1 --stride 2 --backward --wrt weight -o dw.gif
  cnnlab animate pool --size 6 --kernel 2 --mode avg -o pool.gif
  cnnlab animate conv-transpose --size 3 --kernel 3 --stride 2 -o up.gif
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..cli import UsageError

HELP = "write a step-by-step GIF (or PNG frames) of a convolution or pooling"


def _pair_arg(text: str) -> tuple[int, int]:
    """'3' -> (3, 3); '3x2' or '3,2' -> (3, 2)."""
    parts = text.lower().replace("x", ",").split(",")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or NxM, got {text!r}") from None
    if len(nums) == 1:
        return (nums[0], nums[0])
    if len(nums) == 2:
        return (nums[0], nums[1])
    raise argparse.ArgumentTypeError(f"expected N or NxM, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("op", choices=("conv", "pool", "conv-transpose"),
                        help="what to animate (conv-transpose: one frame per input cell scattered)")
    parser.add_argument("--size", type=_pair_arg, default=(5, 5), metavar="N|HxW",
                        help="input height and width (default 5)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1, help="input channels (default 1)")
    parser.add_argument("--kernel", type=_pair_arg, default=(3, 3), metavar="K|KHxKW",
                        help="kernel (or pooling window) size (default 3)")
    parser.add_argument("--stride", type=_pair_arg, default=None, metavar="S|SHxSW",
                        help="stride (default 1 for conv, the kernel size for pool)")
    parser.add_argument("--padding", type=_pair_arg, default=(0, 0), metavar="P|PHxPW", help="zero padding (default 0)")
    parser.add_argument("--dilation", type=_pair_arg, default=(1, 1), metavar="D|DHxDW",
                        help="dilation (default 1; pool: max only)")
    parser.add_argument("--output-padding", type=_pair_arg, default=(0, 0), metavar="P|PHxPW",
                        help="conv-transpose: extra output cells at the bottom and right (default 0)")
    parser.add_argument("--image", type=Path, help="use this image (scaled to --size, values 0..1) as the input")
    parser.add_argument("--numbers", help="type the input: rows separated by ';', e.g. '0 1 2; 3 4 5; 6 7 8'")
    parser.add_argument("--seed", type=int, default=0, help="seed of the default random small-integer input")
    parser.add_argument("--preset", default="pattern", help="conv kernel: identity, box blur, gaussian, sharpen, "
                        "edge, sobel-x, sobel-y, emboss or pattern (default)")
    parser.add_argument("--weights", help="type the kernel: rows separated by ';' (overrides --preset and --kernel)")
    parser.add_argument("--bias", type=float, default=0.0, help="conv bias (default 0)")
    parser.add_argument("--flip", action="store_true", help="true convolution: rotate the kernel 180 degrees")
    parser.add_argument("--mode", choices=("max", "avg", "sum"), default="max", help="pooling kind (default max)")
    parser.add_argument("--backward", action="store_true", help="animate the backward pass (the gradients)")
    parser.add_argument("--wrt", choices=("input", "weight", "bias"), default="input",
                        help="conv --backward: the gradient to animate (default input)")
    parser.add_argument("--grad", choices=("pattern", "ones"), default="pattern",
                        help="--backward: the upstream gradient dL/dY (default small integers)")
    parser.add_argument("-o", "--output", type=Path, help="GIF file to write")
    parser.add_argument("--frames", type=Path, metavar="DIR", help="also (or instead) write PNG frames here")
    parser.add_argument("--fps", type=float, default=2.0, help="GIF frames per second (default 2)")


def _input(args: argparse.Namespace) -> np.ndarray:
    from ..explain import presets

    h, w = args.size
    if not (1 <= h <= 64 and 1 <= w <= 64):
        raise UsageError(f"--size must be between 1 and 64, got {h}x{w}")
    if args.numbers:
        try:
            return presets.parse_numbers(args.numbers)
        except ValueError as e:
            raise UsageError(f"--numbers: {e}") from None
    if args.image:
        try:
            return presets.load_image(args.image, h, w, args.channels)
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read the image {args.image}: {e}") from None
    return presets.small_integers(h, w, args.channels, seed=args.seed)


def _kernel(args: argparse.Namespace, channels: int) -> np.ndarray:
    from ..explain import presets

    if args.weights:
        try:
            k = presets.parse_numbers(args.weights)
        except ValueError as e:
            raise UsageError(f"--weights: {e}") from None
        if k.shape[0] not in (1, channels):
            raise UsageError(f"--weights has {k.shape[0]} channel slices but the input has {channels} channels")
        return np.repeat(k, channels // k.shape[0], axis=0)
    try:
        k2 = presets.make_kernel(args.preset, *args.kernel)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return np.repeat(k2[None], channels, axis=0)


def build_trace(args: argparse.Namespace):
    """The trace the arguments describe (UsageError with the explanation if invalid)."""
    from .. import explain
    from ..explain import presets

    x = _input(args)
    c = x.shape[0]
    try:
        if args.op == "conv-transpose":
            return _transposed_trace(args, x)
        if args.op == "conv":
            wt = _kernel(args, c)
            stride = args.stride or (1, 1)
            check = explain.check_conv2d(x.shape, wt.shape[1:], stride, args.padding, args.dilation)
            if not check.ok:
                raise UsageError(" ; ".join(check.problems))
            if args.backward:
                g = presets.upstream_gradient((1, *check.out_shape), args.grad)
                return explain.conv2d_backward_trace(x, wt, g, args.bias or None, stride, args.padding, args.dilation)
            return explain.conv2d_trace(x, wt, args.bias or None, stride, args.padding, args.dilation,
                                        flip=args.flip)
        stride = args.stride or args.kernel
        check = explain.check_pool2d(x.shape, args.kernel, stride, args.padding, args.dilation, mode=args.mode)
        if not check.ok:
            raise UsageError(" ; ".join(check.problems))
        if args.backward:
            g = presets.upstream_gradient(check.out_shape, args.grad)
            return explain.pool2d_backward_trace(x, g, args.kernel, stride, args.padding, args.mode, args.dilation)
        return explain.pool2d_trace(x, args.kernel, stride, args.padding, args.mode, args.dilation)
    except ValueError as e:  # the engine's own verdict on a setting the checks let through
        raise UsageError(str(e)) from None


def _transposed_trace(args: argparse.Namespace, x: np.ndarray):
    from .. import explain

    if args.backward or args.flip:
        raise UsageError("conv-transpose animates the forward scatter only (no --backward or --flip)")
    wt = _kernel(args, x.shape[0])
    stride = args.stride or (1, 1)
    check = explain.check_conv_transpose2d(x.shape, wt.shape[1:], stride, args.padding, args.output_padding,
                                           args.dilation)
    if not check.ok:
        raise UsageError(" ; ".join(check.problems))
    return explain.conv_transpose2d_trace(x, wt, args.bias or None, stride, args.padding, args.output_padding,
                                          args.dilation)


def _frames(trace, wrt: str) -> list:
    """One image per step; a transposed convolution draws its own scene through render's API."""
    from .. import explain, render

    if not isinstance(trace, explain.ConvTransposeTrace):
        return render.render_frames(trace, wrt)
    n = len(trace.steps)
    cell = render.choose_cell_size(explain.conv_transpose_scene(trace, n))
    return [render.render_scene(explain.conv_transpose_scene(trace, k, max_terms=4), cell) for k in range(1, n + 1)]


def run(args: argparse.Namespace) -> int:
    from .. import explain, render

    if not args.output and not args.frames:
        raise UsageError("say where to write: -o FILE.gif and/or --frames DIR")
    if args.fps <= 0:
        raise UsageError("--fps must be positive")
    trace = build_trace(args)
    wrt = args.wrt if args.op == "conv" and args.backward else "input"
    n = explain.step_count(trace, wrt)
    frames = _frames(trace, wrt)
    if args.output:
        render.save_gif(frames, args.output, args.fps)
        print(f"wrote {args.output} ({n} frames, {frames[0].width}x{frames[0].height})")
    if args.frames:
        paths = render.save_frames(frames, args.frames)
        print(f"wrote {len(paths)} PNG frames to {args.frames}")
    return 0
