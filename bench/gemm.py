"""GEMM benchmark: GFLOP/s and the ratio to numpy (OpenBLAS) measured in the same run.

    .venv/bin/python bench/gemm.py                       # 256..4096, float32+float64, 1 and 2 threads
    .venv/bin/python bench/gemm.py --sizes 1024,2048 --dtypes float32 --threads 1

Same as ``gpufleet gemm bench``; the implementation is gpufleet/kernels/bench.py.
"""

import sys

from gpufleet.kernels.bench import main

if __name__ == "__main__":
    sys.exit(main())
