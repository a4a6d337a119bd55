"""Canonicalization: Toy's rewrite patterns and folders applied to a fixed point (MLIR Toy tutorial,
Chapter 3 "High-level Language-Specific Analysis and Transformation", ToyCombine.cpp/.td; the cast
folder of Chapter 4; the struct folders of Chapter 7).

Patterns:
  * SimplifyRedundantTranspose: transpose(transpose(x)) -> x
  * ReshapeReshapeOptPattern:   reshape(reshape(x)) -> reshape(x)
  * RedundantReshapeOptPattern: reshape(x) -> x when x already has the result type
  * FoldConstantReshapeOptPattern: reshape(constant) -> constant of the new shape
  * CastOp::fold:               cast(x) -> x when the types are equal (Chapter 4)
  * StructAccessOp::fold:       struct_access(struct_constant [a, b], i) -> constant (Chapter 7)
plus, like MLIR's greedy driver, erasure of dead side-effect-free ops and (Chapter 7, where
toy.constant is ConstantLike) de-duplication of identical constants.
"""

from __future__ import annotations

from ..ir import ArrayAttr, attr_key, DenseAttr, FuncOp, Module, Operation, num_elements, replace_all_uses
from .dce import dce_function


def _defining(value, name: str) -> Operation | None:
    owner = value.owner
    return owner if owner is not None and owner.name == name else None


def _rewrite_once(func: FuncOp) -> bool:
    for index, op in enumerate(func.ops):
        if op.name == "toy.transpose":
            inner = _defining(op.operands[0], "toy.transpose")
            if inner is not None:
                replace_all_uses(func, op.result, inner.operands[0])
                return True
        elif op.name == "toy.reshape":
            source = op.operands[0]
            inner = _defining(source, "toy.reshape")
            if inner is not None:
                op.operands = [inner.operands[0]]
                return True
            if source.type == op.result.type:
                replace_all_uses(func, op.result, source)
                return True
            constant = _defining(source, "toy.constant")
            if constant is not None:
                attr = constant.attributes["value"]
                shape = op.result.type.shape
                count = num_elements(shape)
                if len(attr.values) == count or attr.is_splat:
                    values = attr.values if len(attr.values) == count else (attr.values[0],) * count
                    folded = Operation("toy.constant", [], [op.result.type],
                                       {"value": DenseAttr(op.result.type, values)}, op.location)
                    func.ops[index] = folded
                    replace_all_uses(func, op.result, folded.result)
                    return True
        elif op.name == "toy.cast":
            if op.operands[0].type == op.result.type:
                replace_all_uses(func, op.result, op.operands[0])
                return True
        elif op.name == "toy.struct_access":
            constant = _defining(op.operands[0], "toy.struct_constant")
            if constant is not None:
                member = constant.attributes["value"].elements[op.attributes["index"].value]
                if isinstance(member, ArrayAttr):
                    folded = Operation("toy.struct_constant", [], [op.result.type], {"value": member},
                                       op.location)
                else:
                    folded = Operation("toy.constant", [], [member.type], {"value": member}, op.location)
                func.ops[index] = folded
                replace_all_uses(func, op.result, folded.result)
                return True
    return False


def _dedupe_constants(func: FuncOp) -> bool:
    seen: dict = {}
    keep, changed = [], False
    for op in func.ops:
        if op.name in ("toy.constant", "toy.struct_constant"):
            key = (op.name, attr_key(op.attributes["value"]), str(op.result.type))
            if key in seen:
                replace_all_uses(func, op.result, seen[key].result)
                changed = True
                continue
            seen[key] = op
        keep.append(op)
    func.ops = keep
    return changed


def canonicalize_function(func: FuncOp, chapter: int = 7, max_iterations: int = 100000) -> bool:
    changed = False
    for _ in range(max_iterations):
        step = dce_function(func)
        step = _rewrite_once(func) or step
        if chapter >= 7:
            step = _dedupe_constants(func) or step
        if not step:
            break
        changed = True
    dce_function(func)
    return changed


def canonicalize_module(module: Module, chapter: int = 7) -> bool:
    return any([canonicalize_function(f, chapter) for f in module.functions])
