"""Common subexpression elimination (MLIR's `-cse`, run by toyc from Chapter 4): two side-effect-free
ops with the same name, operands, attributes and result types compute the same value, so uses of the
later one are redirected to the earlier one and it is erased. Toy functions are a single block, so
"earlier" always dominates."""

from __future__ import annotations

from ..ir import PURE_OPS, attr_key, FuncOp, Module, replace_all_uses


def cse_function(func: FuncOp) -> bool:
    seen: dict = {}
    keep = []
    changed = False
    for op in func.ops:
        if op.name in PURE_OPS:
            key = (op.name, tuple(o.id for o in op.operands),
                   tuple(sorted((k, attr_key(v)) for k, v in op.attributes.items())),
                   tuple(str(r.type) for r in op.results))
            first = seen.get(key)
            if first is not None:
                for old, new in zip(op.results, first.results):
                    replace_all_uses(func, old, new)
                changed = True
                continue
            seen[key] = op
        keep.append(op)
    func.ops = keep
    return changed


def cse_module(module: Module) -> bool:
    return any([cse_function(f) for f in module.functions])
