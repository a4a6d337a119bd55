"""Producer-consumer loop fusion on the affine loop IR (MLIR Toy tutorial, Chapter 5: with `-opt`, toyc
runs MLIR's `affine-loop-fusion` after lowering, which merges the transpose nest into the mul nest).

The rule (a conservative subset of MLIR's producer-consumer fusion): a top-level perfect loop nest P
fuses into a later top-level perfect nest C when
  * P's loops start at 0, every store in P's innermost body is at P's induction variables in order, and
    P never loads a memref it stores to (call the stored memrefs W);
  * C is the first op after P that touches a memref of W, C's loops have the same bounds, and C loads
    W only at its own induction variables in the same order (iteration i of C reads only what
    iteration i of P wrote) and never stores to W;
  * nothing from P to C writes a memref that P reads (neither the ops in between nor C itself).
Then P's body, with its induction variables renamed to C's, is placed at the start of C's innermost
body and P is erased. Repeated to a fixed point, so chains of element-wise ops become one nest.
Scalar replacement (scalar_replacement.py) then forwards the stores to the loads and drops M.
"""

from __future__ import annotations

from ..affine import AFunc, AModule, Dealloc, For, Load, Print, Store, substitute, walk


def perfect_nest(op) -> tuple[list, list] | None:
    """(loops outer to inner, innermost body) when `op` is a perfect nest of affine.for."""
    if not isinstance(op, For):
        return None
    loops = [op]
    while len(loops[-1].body) == 1 and isinstance(loops[-1].body[0], For):
        loops.append(loops[-1].body[0])
    inner = loops[-1].body
    if any(isinstance(o, For) for o in inner):
        return None
    return loops, inner


def _reads(op) -> set:
    ops = walk([op])
    return {o.memref for o in ops if isinstance(o, (Load, Print))}


def _writes(op) -> set:
    return {o.memref for o in walk([op]) if isinstance(o, (Store, Dealloc))}


def _touches(op, memref) -> bool:
    return any(getattr(o, "memref", None) is memref for o in walk([op]))


def _producer(op):
    """(loops, innermost body, memrefs it writes) when `op` is a perfect nest from 0 whose every store is
    at its induction variables in order, and that never loads what it stores."""
    nest = perfect_nest(op)
    if nest is None:
        return None
    loops, inner = nest
    ivs = tuple(loop.iv for loop in loops)
    stores = [o for o in inner if isinstance(o, Store)]
    if not stores or any(s.indices != ivs or len(s.memref.type.shape) != len(ivs) for s in stores):
        return None
    if any(loop.lower != 0 for loop in loops):
        return None
    written = {s.memref for s in stores}
    if any(isinstance(o, Load) and o.memref in written for o in inner):
        return None
    return loops, inner, written


def _fusable_consumer(op, producer_loops, written, producer_reads) -> tuple[list, list] | None:
    nest = perfect_nest(op)
    if nest is None:
        return None
    loops, inner = nest
    if [(l.lower, l.upper) for l in loops] != [(l.lower, l.upper) for l in producer_loops]:
        return None
    ivs = tuple(loop.iv for loop in loops)
    for o in inner:
        if isinstance(o, Store) and (o.memref in written or o.memref in producer_reads):
            return None
        if isinstance(o, Load) and o.memref in written and o.indices != ivs:
            return None
    return loops, inner


def _fuse_once(body: list) -> bool:
    for p_index, op in enumerate(body):
        found = _producer(op)
        if found is None:
            continue
        p_loops, p_inner, written = found
        p_reads = _reads(op)
        for c_index in range(p_index + 1, len(body)):
            candidate = body[c_index]
            if any(_touches(candidate, memref) for memref in written):
                consumer = _fusable_consumer(candidate, p_loops, written, p_reads)
                if consumer is not None:
                    c_loops, c_inner = consumer
                    mapping = {p.iv: c.iv for p, c in zip(p_loops, c_loops)}
                    for moved in p_inner:
                        if isinstance(moved, (Load, Store)):
                            moved.indices = tuple(substitute(e, mapping) for e in moved.indices)
                    c_inner[0:0] = p_inner
                    del body[p_index]
                    return True
                break
            if _writes(candidate) & p_reads:
                break
    return False


def fuse_loops_function(func: AFunc) -> bool:
    changed = False
    while _fuse_once(func.body):
        changed = True
    return changed


def fuse_loops(module: AModule) -> bool:
    return any([fuse_loops_function(f) for f in module.functions])
