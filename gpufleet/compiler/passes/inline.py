"""Inlining of toy.generic_call (MLIR Toy tutorial, Chapter 4 "Enabling Generic Transformation with
Interfaces": the DialectInlinerInterface of toy, and MLIR's inliner pass).

Rules, as the tutorial sets them up:
  * every toy.generic_call to a non-recursive function is replaced by a copy of the callee's body;
  * an argument whose type differs from the parameter's (tensor<2x3xf64> passed for tensor<*xf64>) goes
    through a `toy.cast` (materializeCallConversion);
  * the callee's toy.return operand replaces the call's result (handleTerminator);
  * private functions left without callers are erased, and every function is canonicalized afterwards
    (the inliner's default simplification pipeline).
Calls inside a recursive cycle are left alone.
"""

from __future__ import annotations

from ..diagnostics import CompileError
from ..ir import FuncOp, Module, Operation, replace_all_uses
from .canonicalize import canonicalize_module

MAX_OPS = 200_000


def _callees(func: FuncOp) -> set[str]:
    return {op.attributes["callee"].name for op in func.ops if op.name == "toy.generic_call"}


def _recursive(module: Module) -> set[str]:
    graph = {f.name: _callees(f) for f in module.functions}
    recursive = set()
    for start in graph:
        stack, seen = list(graph[start]), set()
        while stack:
            name = stack.pop()
            if name == start:
                recursive.add(start)
                break
            if name in seen:
                continue
            seen.add(name)
            stack.extend(graph.get(name, ()))
    return recursive


def _inline_call(func: FuncOp, call: Operation, callee: FuncOp) -> list[Operation]:
    mapping: dict[int, object] = {}
    new_ops: list[Operation] = []
    for arg, operand in zip(callee.args, call.operands):
        if arg.type != operand.type:
            cast = Operation("toy.cast", [operand], [arg.type], {}, call.location)
            new_ops.append(cast)
            mapping[arg.id] = cast.result
        else:
            mapping[arg.id] = operand
    for op in callee.ops:
        operands = [mapping.get(o.id, o) for o in op.operands]
        if op.name == "toy.return":
            for result, value in zip(call.results, operands):
                replace_all_uses(func, result, value)
            continue
        clone = Operation(op.name, operands, [r.type for r in op.results], op.attributes, op.location)
        for old, new in zip(op.results, clone.results):
            mapping[old.id] = new
        new_ops.append(clone)
    return new_ops


def inline_module(module: Module, chapter: int = 7) -> None:
    recursive = _recursive(module)
    for func in module.functions:
        while True:
            index = next((i for i, op in enumerate(func.ops) if op.name == "toy.generic_call"
                          and op.attributes["callee"].name not in recursive), None)
            if index is None:
                break
            call = func.ops[index]
            callee = module.lookup(call.attributes["callee"].name)
            if callee is None:  # the verifier reports this before passes run
                break
            func.ops[index:index + 1] = _inline_call(func, call, callee)
            if len(func.ops) > MAX_OPS:
                raise CompileError(call.location, f"inlining grows @{func.name} past {MAX_OPS} operations")
    called = {name for f in module.functions for name in _callees(f)}
    module.functions = [f for f in module.functions if not f.private or f.name in called]
    canonicalize_module(module, chapter)
