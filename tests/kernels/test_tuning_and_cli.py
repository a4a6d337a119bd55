"""Host detection, block sizes, the on-disk tuning cache, and the ``gpufleet gemm`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from gpufleet.cli import main  # noqa: E402
from gpufleet.kernels import hostinfo, tuning  # noqa: E402
from gpufleet.kernels.hostinfo import Blocking, CacheSizes, analytical_blocking, kernel_shapes  # noqa: E402

REGISTERS = {"avx512": 32, "avx2": 16, "neon": 32, "generic": 16}


@pytest.mark.parametrize("isa", hostinfo.ISAS)
def test_kernel_shapes_fit_the_register_file(isa):
    for dtype, shape in kernel_shapes(isa).items():
        assert shape.mr % shape.vl == 0
        accumulators = shape.vectors * shape.nr
        assert accumulators + shape.vectors + 1 <= REGISTERS[isa], (isa, dtype, shape)
        assert shape.vl * (4 if dtype == "float32" else 8) * 8 in (128, 256, 512)


def test_cache_sizes_from_a_sysfs_tree(tmp_path):
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                                 (2, "Unified", "2048K"), (3, "Unified", "96M")]):
        d = tmp_path / f"index{index}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    sizes = hostinfo.cache_sizes(str(tmp_path))
    assert sizes == CacheSizes(l1d=48 * 1024, l2=2048 * 1024, l3=96 * 1024 * 1024)
    assert hostinfo.cache_sizes(str(tmp_path / "missing")) == CacheSizes(32768, 262144, 8 * 1024 * 1024)


def test_analytical_blocks_fit_their_caches():
    caches = CacheSizes(l1d=32 * 1024, l2=1024 * 1024, l3=32 * 1024 * 1024)
    for shape in kernel_shapes("avx512").values():
        size = 4 if shape.dtype == "float32" else 8
        block = analytical_blocking(shape, caches)
        assert block.kc * shape.nr * size <= caches.l1d  # B micro-panel in L1
        assert block.mc * block.kc * size <= caches.l2 // 2  # A block in L2
        assert block.mc % shape.mr == 0 and block.nc % shape.nr == 0


def test_forced_isa_is_validated(monkeypatch):
    monkeypatch.setenv("GPUFLEET_GEMM_ISA", "avx2")
    assert hostinfo.detect_isa() == "avx2"
    monkeypatch.setenv("GPUFLEET_GEMM_ISA", "sse9")
    with pytest.raises(ValueError, match="GPUFLEET_GEMM_ISA"):
        hostinfo.detect_isa()


def test_autotune_writes_the_cache_that_gemm_then_uses(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUFLEET_CACHE_DIR", str(tmp_path))
    mr, nr = kernel_shapes()["float32"].mr, kernel_shapes()["float32"].nr
    grid = {"float32": [Blocking(mr, 32, 4 * nr), Blocking(2 * mr, 48, 8 * nr)]}
    assert not os.path.exists(tuning.tuning_path())
    result = tuning.autotune(dtypes=("float32",), size=64, repeats=1, grid=grid)
    path = tuning.tuning_path()
    assert path.startswith(str(tmp_path)) and os.path.exists(path)
    with open(path) as f:
        stored = json.load(f)
    assert stored["blocking"]["float32"] == result["blocking"]["float32"]
    assert Blocking(**stored["blocking"]["float32"]) in grid["float32"]
    assert tuning.tuned_blocking("float32") == Blocking(**stored["blocking"]["float32"])
    # float64 was not tuned: analytical block sizes
    assert tuning.tuned_blocking("float64") == analytical_blocking(kernel_shapes()["float64"])


def test_cli_gemm_info_and_errors(capsys):
    assert main(["gemm", "info"]) == 0
    out = capsys.readouterr().out
    assert "micro-kernel" in out and "float64" in out
    assert main(["gemm", "bench", "--sizes", "12,abc"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sizes" in err


def test_cli_gemm_bench_prints_a_ratio_table(capsys):
    assert main(["gemm", "bench", "--sizes", "48", "--dtypes", "float64", "--threads", "1",
                 "--repeats", "1", "--no-tune", "--no-compile-time"]) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("| float64 | 48 | 1 |")]
    assert row, out
    ratio = float(row[0].split("|")[6])
    assert ratio > 0


@pytest.mark.parametrize("isa", ["avx2", "generic"])
def test_other_isa_kernels_compute_correct_products(isa, tmp_path):
    """The AVX2 and portable micro-kernel shapes, compiled on this host (in a child process, since the
    ISA is fixed at import), agree with numpy within the error bound."""
    code = (
        "import numpy as np\n"
        "from gpufleet.kernels import gemm\n"
        "from gpufleet.kernels.blocked import SHAPES\n"
        "rng = np.random.default_rng(0)\n"
        "for dt in (np.float32, np.float64):\n"
        "    a = rng.standard_normal((67, 45)).astype(dt); b = rng.standard_normal((45, 29)).astype(dt)\n"
        "    c = rng.standard_normal((67, 29)).astype(dt); c0 = c.astype(np.float64)\n"
        "    gemm(a, b, out=c, alpha=2.0, beta=-1.0)\n"
        "    ref = 2.0 * (a.astype(np.float64) @ b) - c0\n"
        "    u = np.finfo(dt).eps / 2; g = 48 * u / (1 - 48 * u)\n"
        "    bound = 2 * g * (2.0 * (np.abs(a.astype(np.float64)) @ np.abs(b)) + np.abs(c0))\n"
        "    assert (np.abs(c - ref) <= bound).all(), dt\n"
        "print(SHAPES['float32'].mr, SHAPES['float32'].nr)\n")
    env = dict(os.environ, GPUFLEET_GEMM_ISA=isa)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mr, nr = map(int, proc.stdout.split())
    assert (mr, nr) == (kernel_shapes(isa)["float32"].mr, kernel_shapes(isa)["float32"].nr)


def test_compiled_code_is_cached_on_disk_under_the_kernel_cache_dir():
    from gpufleet.kernels import blocked, gemm

    gemm(np.ones((3, 3), np.float32), np.ones((3, 3), np.float32), threads=1)
    cached = os.listdir(os.path.join(blocked.cache_dir(), "numba"))
    assert any(name.startswith("blocked.gemm_colmajor") and name.endswith(".nbi") for name in cached)
    assert any(name.endswith(".nbc") for name in cached)


def test_tuning_grid_goes_deeper_than_the_analytical_kc_but_not_past_512():
    # float64 on 32 KiB L1 with NR = 6: analytical kc = 16384 / 48 -> 336; the grid's kc values are
    # 336 x (1/2, 3/4, 1, 3/2) -> 160, 240, 336, 496 (multiples of 16), never above the 512 cap.
    for dtype in ("float32", "float64"):
        base = analytical_blocking(kernel_shapes()[dtype])
        kcs = {block.kc for block in tuning.candidates(dtype)}
        assert all(kc <= 512 and kc % 16 == 0 for kc in kcs)
        assert max(kcs) == min(512, int(base.kc * 1.5) // 16 * 16)



def test_a_different_tuning_grid_gets_a_different_cache_file(monkeypatch):
    before = tuning.machine_key()
    monkeypatch.setattr(tuning, "KC_SCALES", (0.5, 1.0))
    tuning.machine_key.cache_clear()
    try:
        assert tuning.machine_key() != before
    finally:
        monkeypatch.undo()
        tuning.machine_key.cache_clear()
    assert tuning.machine_key() == before
