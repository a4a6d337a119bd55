"""Dead code elimination: erase side-effect-free operations whose results are unused (what MLIR's
canonicalizer does to trivially dead ops; MLIR Toy tutorial, Chapter 3 notes toy ops are `Pure` so
that this can happen)."""

from __future__ import annotations

from ..ir import PURE_OPS, FuncOp, Module


def dce_function(func: FuncOp) -> bool:
    changed = False
    while True:
        used = {o.id for op in func.ops for o in op.operands}
        keep = [op for op in func.ops
                if not (op.name in PURE_OPS and op.results and all(r.id not in used for r in op.results))]
        if len(keep) == len(func.ops):
            return changed
        func.ops = keep
        changed = True


def dce_module(module: Module) -> bool:
    return any([dce_function(f) for f in module.functions])
