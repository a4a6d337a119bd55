"""Scalar replacement of affine loads and removal of dead buffers (MLIR Toy tutorial, Chapter 5: with
`-opt`, toyc runs MLIR's `affine-scalrep` after loop fusion; with the transpose fused into the mul, the
transposed buffer disappears and two allocations are left).

Rules (MLIR's affine-scalrep, restricted to straight-line blocks):
  * store-to-load forwarding: in one block, a load of M[idx] after a store of v to M[idx] with no store
    to M in between reads v;
  * redundant load elimination: a second load of M[idx] with no store to M in between reads the first;
  * a store to M invalidates every remembered value of M (different subscripts may alias); a loop, a
    print or a dealloc between two accesses ends what is known;
  * a buffer from memref.alloc that is only stored to and deallocated is dead: it is erased with its
    stores, then side-effect-free ops whose results are unused and loops left empty are erased.
"""

from __future__ import annotations

from ..affine import (AFunc, Alloc, AModule, Arith, Constant, Dealloc, For, Load, Print, Store, operands,
                      replace_uses, walk)


def _forward_block(root: list, block: list) -> bool:
    changed = False
    known: dict[tuple, object] = {}
    keep = []
    for op in block:
        if isinstance(op, Store):
            for key in [k for k in known if k[0] is op.memref]:
                del known[key]
            known[(op.memref, op.indices)] = op.value
        elif isinstance(op, Load):
            value = known.get((op.memref, op.indices))
            if value is not None:
                replace_uses(root, op.result, value)
                changed = True
                continue
            known[(op.memref, op.indices)] = op.result
        elif isinstance(op, (For, Print, Dealloc)):
            known.clear()
        keep.append(op)
    block[:] = keep
    for op in block:
        if isinstance(op, For):
            changed = _forward_block(root, op.body) or changed
    return changed


def _erase_dead_buffers(body: list) -> bool:
    dead = []
    for op in body:
        if isinstance(op, Alloc):
            users = [o for o in walk(body) if op.result in operands(o)]
            if all(isinstance(u, Dealloc) or (isinstance(u, Store) and u.memref is op.result
                                               and u.value is not op.result) for u in users):
                dead.append(op.result)
    if not dead:
        return False

    def prune(block: list) -> None:
        block[:] = [o for o in block
                    if not (isinstance(o, Alloc) and o.result in dead)
                    and not (isinstance(o, (Store, Dealloc)) and o.memref in dead)]
        for o in block:
            if isinstance(o, For):
                prune(o.body)
    prune(body)
    return True


def _erase_unused(body: list) -> bool:
    changed = False
    while True:
        used = {id(v) for o in walk(body) for v in operands(o)}

        def prune(block: list) -> bool:
            before = len(block)
            block[:] = [o for o in block
                        if not (isinstance(o, (Load, Arith, Constant)) and id(o.result) not in used)]
            removed = len(block) != before
            for o in block:
                if isinstance(o, For):
                    removed = prune(o.body) or removed
            block[:] = [o for o in block if not (isinstance(o, For) and not o.body)]
            return removed or len(block) != before
        if not prune(body):
            return changed
        changed = True


def scalar_replace_function(func: AFunc) -> bool:
    changed = _forward_block(func.body, func.body)
    changed = _erase_dead_buffers(func.body) or changed
    changed = _erase_unused(func.body) or changed
    return changed


def scalar_replace(module: AModule) -> bool:
    return any([scalar_replace_function(f) for f in module.functions])
