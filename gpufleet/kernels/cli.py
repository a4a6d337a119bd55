"""``gpufleet gemm``: benchmark, tune and describe the GEMM kernel (see docs/kernels.md).

numba is imported only when a subcommand runs, so ``gpufleet --help`` works without the kernels extra.
"""

from __future__ import annotations

import argparse

from ..errors import GpufleetError


def register(subparsers) -> None:
    gemm = subparsers.add_parser("gemm", help="GEMM kernel: benchmark against numpy/OpenBLAS, tune, info",
                                 description="The GotoBLAS-style GEMM kernel (gpufleet.kernels.gemm).")
    actions = gemm.add_subparsers(dest="gemm_action", metavar="ACTION")
    gemm.set_defaults(func=lambda args: gemm.print_help() or 0)

    from .bench import add_arguments

    bench = actions.add_parser("bench", help="GFLOP/s and ratio to numpy (OpenBLAS), 1 and 2 threads")
    add_arguments(bench)
    bench.set_defaults(func=_bench)

    tune = actions.add_parser("tune", help="measure block sizes on this machine and cache the best")
    tune.add_argument("--size", type=int, default=1024, help="square problem size measured (default 1024)")
    tune.add_argument("--repeats", type=int, default=3, help="best of this many (default 3)")
    tune.set_defaults(func=_tune)

    info = actions.add_parser("info", help="ISA, micro-kernel shapes, cache sizes, block sizes, cache dir")
    info.set_defaults(func=_info)


def _require_numba() -> None:
    try:
        import numba  # noqa: F401
    except ModuleNotFoundError:
        raise GpufleetError("gpufleet gemm needs numba: pip install 'gpufleet[kernels]'") from None


def _bench(args: argparse.Namespace) -> int:
    _require_numba()
    from .bench import run_from_args

    return run_from_args(args)


def _tune(args: argparse.Namespace) -> int:
    _require_numba()
    if args.size < 16 or args.repeats < 1:
        raise GpufleetError(f"--size must be >= 16 and --repeats >= 1, got {args.size} and {args.repeats}")
    from .tuning import autotune, tuning_path

    autotune(size=args.size, repeats=args.repeats,
             progress=lambda d, b, g: print(f"{d}: mc={b.mc} kc={b.kc} nc={b.nc} ({g:.1f} GFLOP/s)"))
    print(f"written {tuning_path()}")
    return 0


def _info(args: argparse.Namespace) -> int:
    _require_numba()
    from . import blocked
    from .hostinfo import cache_sizes, host_cpu
    from .tuning import tuned_blocking, tuning_path

    import os

    print(f"cpu: {host_cpu()[0]}  isa: {blocked.ISA}  caches: {cache_sizes()}")
    for dtype, shape in blocked.SHAPES.items():
        block = tuned_blocking(dtype)
        print(f"{dtype}: micro-kernel {shape.mr}x{shape.nr} ({shape.vl} lanes), "
              f"mc={block.mc} kc={block.kc} nc={block.nc}")
    path = tuning_path()
    print(f"tuning: {path} ({'present' if os.path.exists(path) else 'absent: analytical block sizes'})")
    print(f"compiled code: {os.path.join(blocked.cache_dir(), 'numba')}")
    return 0
