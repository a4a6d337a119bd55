# lit configuration that runs the MLIR Toy tutorial's own lit tests (../shared/toy-tests/Ch1..Ch7,
# unmodified) against our compiler: `toyc-chN` becomes `python -m gpufleet.compiler --chapter N`
# and `FileCheck` the PyPI `filecheck` package. Run it with
#   .venv/bin/python -m lit -sv tests/compiler/lit [--param toy_tests=PATH]
# Tests of stages not built are reported UNSUPPORTED with a reason (NOT_BUILT; empty: all 56 run).
# -*- Python -*-
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from toy_format import NOT_BUILT, ToyUpstreamFormat  # noqa: E402  (NOT_BUILT lists the UNSUPPORTED tests)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _toy_tests_dir():
    explicit = lit_config.params.get("toy_tests")
    if explicit:
        return os.path.abspath(explicit)
    shared = os.environ.get("GPUFLEET_SHARED") or os.path.join(REPO_ROOT, "..", "shared")
    return os.path.abspath(os.path.join(shared, "toy-tests"))


config.name = "toy-upstream"
config.test_format = ToyUpstreamFormat(execute_external=False)
config.suffixes = [".toy", ".mlir"]
config.excludes = ["INDEX.md", "lit.local.cfg"]
config.test_source_root = _toy_tests_dir()
config.test_exec_root = lit_config.params.get(
    "exec_root", os.path.join(REPO_ROOT, "build", "lit-toy"))
if not os.path.isdir(config.test_source_root):
    lit_config.fatal(f"upstream Toy tests not found at {config.test_source_root} "
                     f"(set GPUFLEET_SHARED or --param toy_tests=PATH)")

python = sys.executable
for chapter in range(1, 8):
    config.substitutions.append(
        (f"toyc-ch{chapter}", f'"{python}" -m gpufleet.compiler --chapter {chapter}'))
config.substitutions.append(("FileCheck", f'"{python}" -m filecheck'))

# The Ch6/Ch7 directories require this feature: our -emit=jit runs main through llvmlite's MCJIT.
config.available_features.add("host-supports-jit")
config.target_triple = f"{platform.machine()}-unknown-{sys.platform}"
config.environment["PYTHONPATH"] = REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
