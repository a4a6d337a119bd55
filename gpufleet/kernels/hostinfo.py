"""What the host offers a GEMM: SIMD ISA, micro-kernel shapes, cache sizes, analytical block sizes.

The ISA comes from LLVM's view of the host (``llvmlite.binding.get_host_cpu_name`` and
``get_host_cpu_features``), i.e. exactly what numba will compile for. The micro-kernel shapes follow the
register budget of each ISA, as in BLIS's per-architecture configurations (``config/skx``,
``config/haswell``, ``config/armv8a`` in flame/blis) and MegCC's Arm64 M8N12 kernel:

* AVX-512 (32 zmm): float32 64x6 and float64 32x6, four vectors by six broadcasts (24 accumulators),
  the shape of AMD BLIS's ``bli_dgemm_zen4_asm_32x6``. On the development Zen machine these beat
  BLIS skx's 32x12 / 16x14 and 48x8 / 24x8 by 2-6% in whole-GEMM runs (fewer broadcasts per FMA:
  6 per 24 instead of 8-14; float64 32x6 vs 24x8: paired CPU-time ratio to OpenBLAS 0.99 vs 0.93-0.96
  at n = 2048, 1.02-1.05 vs 0.99 at 1024);
* AVX2 + FMA (16 ymm): float32 16x6, float64 8x6 (12 accumulators);
* NEON (32 q registers): float32 8x12 (the M8N12 shape, 24 accumulators), float64 8x6 (24);
* otherwise a portable 4-lane / 2-lane shape that LLVM lowers to whatever SIMD there is.

Block sizes come from the cache hierarchy read from ``/sys/devices/system/cpu/cpu0/cache`` with the
rules of Low et al., "Analytical Modeling Is Enough for High-Performance BLIS" (ACM TOMS 43(2), 2016):
the ``kc x NR`` micro-panel of B stays in L1, the ``MC x kc`` block of A in (half of) L2, and the
``kc x NC`` panel of B in a share of L3. ``tuning.py`` refines them by measurement.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

from .microkernel import KernelShape

# (mr, nr, vector lanes) per ISA and dtype; mr is a multiple of the lane count.
_SHAPES = {
    "avx512": {"float32": (64, 6, 16), "float64": (32, 6, 8)},
    "avx2": {"float32": (16, 6, 8), "float64": (8, 6, 4)},
    "neon": {"float32": (8, 12, 4), "float64": (8, 6, 2)},
    "generic": {"float32": (8, 4, 4), "float64": (4, 4, 2)},
}
ISAS = tuple(_SHAPES)


@dataclass(frozen=True)
class CacheSizes:
    """Per-core data cache sizes in bytes (L3 is the size of one shared L3 slice as the OS reports it)."""

    l1d: int
    l2: int
    l3: int


@functools.lru_cache(maxsize=None)
def host_cpu() -> tuple[str, tuple[str, ...]]:
    """LLVM's host CPU name and its enabled feature names (without the leading '+')."""
    import llvmlite.binding as llvm

    name = llvm.get_host_cpu_name()
    try:
        features = llvm.get_host_cpu_features()
        enabled = tuple(sorted(k for k, on in features.items() if on))
    except RuntimeError:  # LLVM cannot list features on some hosts
        enabled = ()
    return name, enabled


def detect_isa() -> str:
    """'avx512', 'avx2', 'neon' or 'generic'; ``GPUFLEET_GEMM_ISA`` forces one (for testing a path)."""
    forced = os.environ.get("GPUFLEET_GEMM_ISA", "").strip().lower()
    if forced:
        if forced not in _SHAPES:
            raise ValueError(f"GPUFLEET_GEMM_ISA={forced!r}: expected one of {', '.join(ISAS)}")
        return forced
    _, features = host_cpu()
    feats = set(features)
    if "avx512f" in feats:
        return "avx512"
    if "avx2" in feats and "fma" in feats:
        return "avx2"
    if platform.machine().lower() in ("arm64", "aarch64") or "neon" in feats:
        return "neon"
    return "generic"


@functools.lru_cache(maxsize=None)
def kernel_shapes(isa: str | None = None) -> dict[str, KernelShape]:
    """The micro-kernel shape per dtype for ``isa`` (default: the host's)."""
    isa = isa or detect_isa()
    unroll = int(os.environ.get("GPUFLEET_GEMM_UNROLL", "4"))
    prefetch = int(os.environ.get("GPUFLEET_GEMM_PREFETCH", "0"))
    shapes = dict(_SHAPES[isa])
    for item in filter(None, os.environ.get("GPUFLEET_GEMM_SHAPES", "").split(",")):
        dtype, mr, nr = item.split(":")
        shapes[dtype] = (int(mr), int(nr), shapes[dtype][2])
    return {dtype: KernelShape(dtype, mr, nr, vl, unroll, prefetch)
            for dtype, (mr, nr, vl) in shapes.items()}


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    scale = 1
    if text.endswith("K"):
        scale, text = 1024, text[:-1]
    elif text.endswith("M"):
        scale, text = 1024 * 1024, text[:-1]
    return int(text) * scale


@functools.lru_cache(maxsize=None)
def cache_sizes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> CacheSizes:
    """Data cache sizes of cpu0 from sysfs; typical values where sysfs says nothing."""
    found: dict[int, int] = {}
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        entries = []
    for entry in entries:
        if not entry.startswith("index"):
            continue
        path = os.path.join(root, entry)
        try:
            with open(os.path.join(path, "level")) as f:
                level = int(f.read())
            with open(os.path.join(path, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(path, "size")) as f:
                size = _parse_size(f.read())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified"):
            found[level] = size
    return CacheSizes(l1d=found.get(1, 32 * 1024), l2=found.get(2, 256 * 1024),
                      l3=found.get(3, 8 * 1024 * 1024))


@dataclass(frozen=True)
class Blocking:
    """Cache block sizes in elements: ``mc`` rows of A per L2 block, ``kc`` depth, ``nc`` columns of B."""

    mc: int
    kc: int
    nc: int


def analytical_blocking(shape: KernelShape, caches: CacheSizes | None = None, threads: int = 2,
                        l1_fraction: float = 0.5, l2_fraction: float = 0.25, kc: int | None = None
                        ) -> Blocking:
    """Block sizes from the cache sizes (after Low et al. 2016, section 5, simplified to fractions):

    * ``kc``: the ``kc x NR`` micro-panel of B takes ``l1_fraction`` of L1 (the A micro-panel and the C
      tile stream past it), rounded down to a multiple of 16 and at most 512 (beyond that the A
      micro-panel no longer fits in L2 next to the block of A);
    * ``mc``: the ``mc x kc`` block of A takes ``l2_fraction`` of L2 (B micro-panels and C share the
      rest), a multiple of MR;
    * ``nc``: the ``kc x nc`` panel of B takes a quarter of L3 per thread, at most 4096 columns, a
      multiple of NR.

    ``kc`` may be given (the tuner's grid); ``mc`` and ``nc`` then follow from it. The default fractions
    are where the measured optimum sat on the development machine (Zen, 32 KiB L1,
    1 MiB L2); ``tuning.autotune`` measures a grid of fractions per machine.
    """
    caches = caches or cache_sizes()
    size = 4 if shape.dtype == "float32" else 8
    if kc is None:
        kc = max(32, min(512, int(caches.l1d * l1_fraction) // (shape.nr * size)) // 16 * 16)
    mc = max(shape.mr, int(caches.l2 * l2_fraction) // (kc * size) // shape.mr * shape.mr)
    nc = (caches.l3 // 4 // max(1, threads)) // (kc * size)
    nc = max(shape.nr, min(4096, nc) // shape.nr * shape.nr)
    return Blocking(mc=mc, kc=kc, nc=nc)
