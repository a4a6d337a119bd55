"""lit test format for the upstream MLIR Toy tests (used by lit.cfg.py in this folder).

It is lit's ShTest, except that the upstream tests of stages gpufleet's toyc has not built yet are
reported UNSUPPORTED with the reason below, so they are listed in every run instead of failing or
silently passing. Kept in its own module so lit's worker processes can import (unpickle) the format.
"""

import lit.formats
import lit.Test

# Upstream tests for stages not built yet: path in the suite -> why it is UNSUPPORTED.
NOT_BUILT = {}
for _chapter in (5, 6, 7):
    NOT_BUILT[f"Ch{_chapter}/affine-lowering.mlir"] = "-emit=mlir-affine (affine lowering) not built yet"
for _chapter in (6, 7):
    NOT_BUILT[f"Ch{_chapter}/llvm-lowering.mlir"] = "-emit=llvm (LLVM lowering) not built yet"
    NOT_BUILT[f"Ch{_chapter}/jit.toy"] = "-emit=jit (llvmlite JIT) not built yet"


class ToyUpstreamFormat(lit.formats.ShTest):
    def execute(self, test, lit_config):
        reason = NOT_BUILT.get("/".join(test.path_in_suite))
        if reason is not None:
            return lit.Test.Result(lit.Test.UNSUPPORTED, f"gpufleet toyc: {reason}")
        return super().execute(test, lit_config)
