"""`gpufleet toyc FILE [-emit=ast|mlir|mlir-affine|mlir-llvm|llvm|jit] [-opt] [-x toy|mlir] [--chapter N]`: the toyc-style
command (MLIR Toy tutorial, toyc.cpp). Single-dash long options work as in toyc (`-emit=mlir`, `-opt`).

Compile errors are printed as diagnostics (`file:line:col: error: ...`, the line, a caret) with exit
status 1, like toyc; usage errors raise GpufleetError (one line, exit status 2).
"""

from __future__ import annotations

import argparse
import sys

from .driver import EMIT_CHOICES, LATEST_CHAPTER, compile_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="Toy source (.toy) or Toy IR (.mlir); '-' for stdin")
    parser.add_argument("-emit", "--emit", default="mlir", metavar="KIND",
                        help=f"what to print: {' | '.join(EMIT_CHOICES)} (default mlir)")
    parser.add_argument("-opt", "--opt", action="store_true", help="run the optimisation pipeline")
    parser.add_argument("-x", dest="input_kind", choices=("toy", "mlir"), default=None,
                        help="input language (default: by suffix, .mlir is MLIR)")
    parser.add_argument("-generic-toy-print", "--generic-toy-print", dest="generic_print", action="store_true",
                        help="with -emit=mlir-affine: write toy.print in MLIR's generic form, so that "
                             "mlir-opt --allow-unregistered-dialect reads the output")
    parser.add_argument("-chapter", "--chapter", type=int, default=LATEST_CHAPTER, metavar="N",
                        help=f"behave like the tutorial's toyc-chN, 1..{LATEST_CHAPTER} (default {LATEST_CHAPTER})")


def run(args: argparse.Namespace) -> int:
    result = compile_file(args.file, emit=args.emit, opt=args.opt, input_kind=args.input_kind,
                          chapter=args.chapter, generic_print=args.generic_print)
    for diagnostic in result.diagnostics:
        print(diagnostic, file=sys.stderr)
    if result.output:
        sys.stdout.write(result.output)
    sys.stdout.flush()
    return result.exit_code


def register(subparsers) -> None:
    parser = subparsers.add_parser("toyc", help="compile Toy tensor programs (the MLIR Toy tutorial's toyc)",
                                   description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.set_defaults(func=run)
