"""Lower Toy IR to affine loops over memrefs (MLIR Toy tutorial, Chapter 5 "Partial Lowering to
Lower-Level Dialects for Optimization", LowerToAffineLoops.cpp; `toy.matmul` is ours, beyond the tutorial).

Rules, as the tutorial's conversion patterns:
  * each tensor value becomes a `memref.alloc` of the same shape, inserted at the start of the function
    (so allocations appear in reverse order of lowering), and a `memref.dealloc` before the return
    (in order of lowering);
  * toy.constant: one `arith.constant` per distinct value and one `affine.store` per element
    (after canonicalisation the indices are constants: `affine.store %cst, %alloc[0, 1]`). Beyond the
    tutorial, so that large inputs stay small: a splat of more than SMALL_CONSTANT elements is stored by
    a loop nest, and any other large constant becomes a `memref.global` read through `memref.get_global`;
  * toy.transpose: a loop nest over the result, loading the input at the reversed indices;
  * toy.mul / toy.add: a loop nest over the shape, `arith.mulf` / `arith.addf` of the two loads (one
    load when both operands are the same value, as MLIR's CSE leaves it);
  * toy.reshape (not lowered by the tutorial; left only when the input is not a constant): a copy loop
    nest that reads the input at the delinearised row-major index;
  * toy.matmul (ours): zero the result, then `C[i, j] += A[i, k] * B[k, j]` in i, k, j order, so that
    the innermost loop walks rows of B and C contiguously. SEAM: this is where a call to the GEMM of
    gpufleet/kernels (not built yet) would replace the loops: `_lower_matmul` is the only place to change;
  * toy.print stays toy.print, now on the memref; toy.return becomes `return`.
Only `main`, without arguments or results, is lowered: every other function must have been inlined
(toyc runs inline + shape inference + canonicalize + CSE before lowering, from Chapter 5 on). Anything
left unranked, or a call that could not be inlined, is a diagnostic at the op.
"""

from __future__ import annotations

from .affine import (AFunc, Alloc, AModule, Arith, Constant, Dealloc, For, GetGlobal, Global, Load,
                     Print, Return, Store)
from .diagnostics import CompileError
from .ir import MemRefType, Module, Operation, TensorType, num_elements

SMALL_CONSTANT = 256


def _index_tuples(shape: tuple[int, ...]):
    if not shape:
        yield ()
        return
    for i in range(shape[0]):
        for rest in _index_tuples(shape[1:]):
            yield (i,) + rest


def _nest(shape: tuple[int, ...]) -> tuple[list, list, list]:
    """A perfect loop nest over `shape`: (the outermost ops to insert, induction variables, innermost body)."""
    if not shape:
        body: list = []
        return body, [], body
    loops = [For(0, d) for d in shape]
    for outer, inner in zip(loops, loops[1:]):
        outer.body.append(inner)
    return [loops[0]], [loop.iv for loop in loops], loops[-1].body


def _row_major_strides(shape: tuple[int, ...]) -> list[int]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return list(reversed(strides))


class AffineLowering:
    def __init__(self, module: Module):
        self.module = module
        self.out = AModule([])
        self.constants: dict[str, Constant] = {}
        self.allocs: list = []     # inserted at the front: reverse order of lowering
        self.body: list = []
        self.deallocs: list = []
        self.memrefs: dict[int, object] = {}  # toy Value id -> memref AValue

    # -- helpers ---------------------------------------------------------------------------------
    def constant(self, value: float):
        key = repr(value)  # not ==: 0.0 and -0.0 are different constants
        if key not in self.constants:
            self.constants[key] = Constant(value)
        return self.constants[key].result

    def memref_type(self, op: Operation, value) -> MemRefType:
        t = value.type
        if not isinstance(t, TensorType) or not t.ranked:
            raise CompileError(op.location, f"'{op.name}' op cannot be lowered to affine loops: {t} is not "
                                            f"a tensor of known shape (shape inference left it unranked)")
        return MemRefType(t.shape, t.element)

    def alloc(self, op: Operation):
        alloc = Alloc(self.memref_type(op, op.result))
        self.allocs.insert(0, alloc)
        self.deallocs.append(Dealloc(alloc.result))
        self.memrefs[op.result.id] = alloc.result
        return alloc.result

    def operand(self, op: Operation, index: int):
        value = op.operands[index]
        self.memref_type(op, value)
        return self.memrefs[value.id]

    # -- ops -------------------------------------------------------------------------------------
    def lower_constant(self, op: Operation) -> None:
        attr = op.attributes["value"]
        shape = tuple(op.result.type.shape)
        count = num_elements(shape)
        if count > SMALL_CONSTANT and not attr.is_splat:
            type_ = self.memref_type(op, op.result)
            name = f"__constant_{'x'.join(map(str, shape))}xf64_{len(self.out.globals)}"
            self.out.globals.append(Global(name, type_, tuple(attr.values)))
            get = GetGlobal(name, type_)
            self.allocs.insert(0, get)
            self.memrefs[op.result.id] = get.result
            return
        memref = self.alloc(op)
        if count > SMALL_CONSTANT:
            outer, ivs, inner = _nest(shape)
            inner.append(Store(self.constant(attr.values[0]), memref, tuple(ivs)))
            self.body += outer
            return
        values = attr.values if len(attr.values) == count else attr.values[:1] * count
        for indices, value in zip(_index_tuples(shape), values):
            self.body.append(Store(self.constant(value), memref, indices))

    def lower_elementwise(self, op: Operation) -> None:
        lhs, rhs = self.operand(op, 0), self.operand(op, 1)
        if lhs.type.shape != rhs.type.shape:
            raise CompileError(op.location, f"'{op.name}' op cannot be lowered: operands of different shapes "
                                            f"{lhs.type} and {rhs.type}")
        result = self.alloc(op)
        outer, ivs, inner = _nest(result.type.shape)
        a = Load(lhs, tuple(ivs))
        inner.append(a)
        if rhs is lhs:
            b = a
        else:
            b = Load(rhs, tuple(ivs))
            inner.append(b)
        arith = Arith("mulf" if op.name == "toy.mul" else "addf", a.result, b.result)
        inner += [arith, Store(arith.result, result, tuple(ivs))]
        self.body += outer

    def lower_transpose(self, op: Operation) -> None:
        source = self.operand(op, 0)
        result = self.alloc(op)
        outer, ivs, inner = _nest(result.type.shape)
        load = Load(source, tuple(reversed(ivs)))
        inner += [load, Store(load.result, result, tuple(ivs))]
        self.body += outer

    def lower_reshape(self, op: Operation) -> None:
        source = self.operand(op, 0)
        result = self.alloc(op)
        outer, ivs, inner = _nest(result.type.shape)
        src_shape = source.type.shape
        if num_elements(src_shape) == 1:
            indices = tuple(0 for _ in src_shape)
        else:
            linear = None
            for iv, stride in zip(ivs, _row_major_strides(result.type.shape)):
                term = iv if stride == 1 else ("mul", iv, stride)
                linear = term if linear is None else ("add", linear, term)
            indices = []
            for dim, stride in zip(src_shape, _row_major_strides(src_shape)):
                index = linear if stride == 1 else ("floordiv", linear, stride)
                if stride * dim != num_elements(src_shape):
                    index = ("mod", index, dim)
                indices.append(index)
            indices = tuple(indices)
        load = Load(source, indices)
        inner += [load, Store(load.result, result, tuple(ivs))]
        self.body += outer

    def lower_matmul(self, op: Operation) -> None:
        self._lower_matmul(op, self.operand(op, 0), self.operand(op, 1), self.alloc(op))

    def _lower_matmul(self, op: Operation, a, b, c) -> None:
        """C = A x B as loops (the seam for a kernels/ GEMM call: replace the body of this method)."""
        (m, k), (k2, n) = a.type.shape, b.type.shape
        if k != k2 or c.type.shape != (m, n):
            raise CompileError(op.location, f"'toy.matmul' op cannot be lowered: {a.type} x {b.type} -> {c.type}")
        outer, (i, j), inner = _nest((m, n))
        inner.append(Store(self.constant(0.0), c, (i, j)))
        self.body += outer
        outer, (i, kk, j), inner = _nest((m, k, n))
        acc = Load(c, (i, j))
        x = Load(a, (i, kk))
        y = Load(b, (kk, j))
        product = Arith("mulf", x.result, y.result)
        total = Arith("addf", acc.result, product.result)
        inner += [acc, x, y, product, total, Store(total.result, c, (i, j))]
        self.body += outer

    # -- driver ----------------------------------------------------------------------------------
    def lower(self) -> AModule:
        main = self.module.lookup("main")
        for func in self.module.functions:
            if func is not main:
                raise CompileError(func.location, f"cannot lower @{func.name} to affine loops: only 'main' is "
                                                  f"lowered, every other function must be inlined into it")
        if main is None:
            raise CompileError(self.module.location, "no 'main' function to lower")
        if main.args or main.result_types:
            raise CompileError(main.location, "expected 'main' to have 0 inputs and 0 results")
        handlers = {"toy.constant": self.lower_constant, "toy.transpose": self.lower_transpose,
                    "toy.mul": self.lower_elementwise, "toy.add": self.lower_elementwise,
                    "toy.reshape": self.lower_reshape, "toy.matmul": self.lower_matmul}
        for op in main.ops:
            if op.name in handlers:
                handlers[op.name](op)
            elif op.name == "toy.print":
                self.body.append(Print(self.operand(op, 0)))
            elif op.name == "toy.cast":
                self.memref_type(op, op.result)
                self.memrefs[op.result.id] = self.operand(op, 0)
            elif op.name == "toy.return":
                pass
            else:
                raise CompileError(op.location, f"'{op.name}' op cannot be lowered to affine loops "
                                                f"(it should have been inlined or folded away)")
        body = [c for c in self.constants.values()] + self.allocs + self.body + self.deallocs + [Return()]
        self.out.functions.append(AFunc("main", body))
        return self.out


def lower_to_affine(module: Module) -> AModule:
    """Lower a verified, inlined and shape-inferred Toy module (Chapter 5)."""
    return AffineLowering(module).lower()
