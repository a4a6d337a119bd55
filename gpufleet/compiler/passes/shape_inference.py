"""Intraprocedural shape inference (MLIR Toy tutorial, Chapter 4 "Enabling Generic Transformation with
Interfaces", ShapeInferencePass.cpp and each op's `inferShapes`).

Algorithm (the tutorial's): put every op that returns an unranked tensor on a worklist; repeatedly take
an op whose operands are all ranked (or structs) and infer its result type:
  * toy.mul / toy.add: the operand shape (we also report operands of different shapes);
  * toy.transpose: the operand shape reversed;   * toy.cast: the operand type;
  * toy.matmul (ours): MxK and KxN give MxN (other shapes are reported);
  * toy.struct_access: the accessed member's type when it is ranked.
An op without such a rule (a toy.generic_call left by a recursive function) is an error, and so is a
worklist that stops shrinking: "Shape inference failed, N operations couldn't be inferred".
"""

from __future__ import annotations

from ..diagnostics import CompileError
from ..ir import FuncOp, Module, TensorType, is_unranked_tensor


def _ready(op) -> bool:
    return not any(is_unranked_tensor(o.type) for o in op.operands)


def _infer(op) -> None:
    a = op.operands[0].type if op.operands else None
    if op.name in ("toy.mul", "toy.add"):
        b = op.operands[1].type
        if isinstance(a, TensorType) and isinstance(b, TensorType) and a.shape != b.shape:
            raise CompileError(op.location, f"'{op.name}' op has operands of incompatible shapes: {a} and {b}")
        op.result.type = a
    elif op.name == "toy.matmul":
        b = op.operands[1].type
        if len(a.shape) != 2 or len(b.shape) != 2 or a.shape[1] != b.shape[0]:
            raise CompileError(op.location, f"'toy.matmul' op has operands of incompatible shapes: {a} and {b} "
                                            f"(expected MxK and KxN)")
        op.result.type = TensorType((a.shape[0], b.shape[1]), a.element)
    elif op.name == "toy.transpose":
        op.result.type = TensorType(tuple(reversed(a.shape)), a.element)
    elif op.name == "toy.cast":
        op.result.type = a
    elif op.name == "toy.struct_access":
        member = a.elements[op.attributes["index"].value]
        if is_unranked_tensor(member):
            raise CompileError(op.location, "unable to infer the shape of a struct member with unknown shape")
        op.result.type = member
    else:
        raise CompileError(op.location, f"'{op.name}' op: unable to infer shape of operation without "
                                        f"shape inference interface")


def infer_shapes_function(func: FuncOp) -> None:
    worklist = [op for op in func.ops if any(is_unranked_tensor(r.type) for r in op.results)]
    while worklist:
        op = next((o for o in worklist if _ready(o)), None)
        if op is None:
            break
        worklist.remove(op)
        _infer(op)
    if worklist:
        raise CompileError(func.location, f"Shape inference failed, {len(worklist)} operations couldn't "
                                          f"be inferred in @{func.name}")


def infer_shapes_module(module: Module) -> None:
    for func in module.functions:
        infer_shapes_function(func)
