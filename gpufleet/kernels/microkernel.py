"""The register-blocked SIMD micro-kernel, written as LLVM IR and inlined into numba code.

The micro-kernel is the innermost of the five GotoBLAS/BLIS loops (Goto and van de Geijn, "Anatomy of
High-Performance Matrix Multiplication", ACM TOMS 34(3), 2008; Van Zee and van de Geijn, "BLIS: A
Framework for Rapidly Instantiating BLAS Functionality", ACM TOMS 41(3), 2015, section 3). It updates
one ``MR x NR`` tile of a column-major C from a packed ``MR x kc`` micro-panel of A (column after column,
``MR`` contiguous values per k) and a packed ``kc x NR`` micro-panel of B (row after row, ``NR``
contiguous values per k)::

    for p in range(kc):                      # one rank-1 (outer-product) update per p
        a = A_panel[p, 0:MR]                 # MR // VL vector loads
        for j in range(NR):
            acc[:, j] += a * B_panel[p, j]   # broadcast + FMA, acc stays in registers
    C[0:mr, 0:nr] = alpha * acc + beta * C   # masked at the edges, C not read when beta == 0

This is the outer-product formulation of the MegCC M8N12 Arm64 kernel described in the GEMM post in
``../shared/seeds/000_*.txt`` and of BLIS's x86 kernels (``bli_sgemm_skx_asm_32x12_l2``,
AMD's ``bli_dgemm_zen4_asm_32x6``): ``MR`` runs along the SIMD lanes, ``NR`` values of B are broadcast, and the
``MR/VL * NR`` accumulators live in vector registers for the whole k loop (on AVX-512, float32 64x6:
4 * 6 = 24 zmm accumulators + 4 A vectors + broadcast registers within the 32 zmm; see hostinfo.py).

Why LLVM IR and not a numba loop: numba gives no SIMD types, and nothing guarantees that LLVM's
vectorisers turn a scalar ``acc[i, j] += a[i] * b[j]`` nest over a small local accumulator array into a
register-resident tile (keeping the tile in memory and reloading it every k is a legal outcome, and a
slow one). Writing the k loop in IR with ``<VL x float>``
values carried through ``phi`` nodes and ``llvm.fma.v16f32`` calls (LLVM Language Reference,
"llvm.fma.*", "llvm.masked.load/store.*", "llvm.prefetch") pins the register blocking, while numba's
``@intrinsic`` (numba docs, "Low-level extension API: intrinsic") lets the IR be emitted into the same
module as the numba driver, so numba's on-disk cache (``cache=True``) stores it with the driver and there
is no separate object cache to manage.

Edges: the packed panels are zero-padded to full ``MR``/``NR`` tiles, so the k loop never reads out of
bounds; only the store of C is clipped to ``mr x nr``, with ``llvm.masked.load/store`` over the rows and a
branch per column (masked lanes are never touched, so nothing outside C is read or written).
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir


@dataclass(frozen=True)
class KernelShape:
    """A micro-kernel shape: ``mr`` rows (``mr // vl`` vectors of ``vl`` lanes) by ``nr`` columns."""

    dtype: str  # "float32" | "float64"
    mr: int
    nr: int
    vl: int
    unroll: int = 4
    prefetch_a: int = 0  # prefetch distance in k steps along the A micro-panel (0: none)

    @property
    def vectors(self) -> int:
        return self.mr // self.vl

    @property
    def name(self) -> str:
        tag = "s" if self.dtype == "float32" else "d"
        return f"gpufleet_{tag}gemm_ukr_{self.mr}x{self.nr}_v{self.vl}_u{self.unroll}_p{self.prefetch_a}"


_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_I8P = ir.IntType(8).as_pointer()


def _const64(value: int) -> ir.Constant:
    return ir.Constant(_I64, value)


def _const32(value: int) -> ir.Constant:
    return ir.Constant(_I32, value)


def _splat(builder: ir.IRBuilder, scalar, vec_type: ir.VectorType):
    """Broadcast a scalar into every lane (insertelement + shufflevector with a zero mask)."""
    undef = ir.Constant(vec_type, ir.Undefined)
    one = builder.insert_element(undef, scalar, _const32(0))
    zero_mask = ir.Constant(ir.VectorType(_I32, vec_type.count), [0] * vec_type.count)
    return builder.shuffle_vector(one, undef, zero_mask)


def _get_or_declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return ir.Function(module, fnty, name)


def build_microkernel(module: ir.Module, shape: KernelShape) -> ir.Function:
    """Define (once per module) ``void ukr(i64 kc, T* a, T* b, T* c, i64 ldc, i64 mr, i64 nr, T alpha,
    T beta)`` computing ``C[0:mr, 0:nr] = alpha * A_panel @ B_panel + beta * C`` for column-major C
    with column stride ``ldc`` (elements); ``beta == 0`` never reads C (BLAS semantics)."""
    existing = module.globals.get(shape.name)
    if existing is not None:
        return existing
    flt = ir.FloatType() if shape.dtype == "float32" else ir.DoubleType()
    size = 4 if shape.dtype == "float32" else 8
    vl, nv, nr_max, mr_max = shape.vl, shape.vectors, shape.nr, shape.mr
    vec = ir.VectorType(flt, vl)
    vecp = vec.as_pointer()
    fltp = flt.as_pointer()
    mask_t = ir.VectorType(ir.IntType(1), vl)
    suffix = f"v{vl}f{size * 8}"
    fma = _get_or_declare(module, f"llvm.fma.{suffix}", ir.FunctionType(vec, [vec, vec, vec]))
    prefetch = _get_or_declare(module, "llvm.prefetch.p0",
                               ir.FunctionType(ir.VoidType(), [_I8P, _I32, _I32, _I32]))
    mload = _get_or_declare(module, f"llvm.masked.load.{suffix}.p0",
                            ir.FunctionType(vec, [vecp, _I32, mask_t, vec]))
    mstore = _get_or_declare(module, f"llvm.masked.store.{suffix}.p0",
                             ir.FunctionType(ir.VoidType(), [vec, vecp, _I32, mask_t]))

    fnty = ir.FunctionType(ir.VoidType(), [_I64, fltp, fltp, fltp, _I64, _I64, _I64, flt, flt])
    fn = ir.Function(module, fnty, shape.name)
    fn.linkage = "internal"
    kc, a0, b0, c0, ldc, mr, nr, alpha, beta = fn.args
    for arg in (a0, b0, c0):
        arg.add_attribute("noalias")

    entry = fn.append_basic_block("entry")
    main_head = fn.append_basic_block("main_head")
    main_body = fn.append_basic_block("main_body")
    tail_head = fn.append_basic_block("tail_head")
    tail_body = fn.append_basic_block("tail_body")
    done = fn.append_basic_block("done")

    builder = ir.IRBuilder(entry)
    zero_vec = ir.Constant(vec, [0.0] * vl)
    n_acc = nv * nr_max
    # Touch the C tile early so its lines arrive while the k loop runs (BLIS prefetches C the same way).
    for j in range(nr_max):
        col = builder.gep(c0, [builder.mul(ldc, _const64(j))])
        for line in range(0, mr_max * size, 64):
            ptr = builder.gep(col, [_const64(line // size)])
            builder.call(prefetch, [builder.bitcast(ptr, _I8P), _const32(1), _const32(3), _const32(1)])
    builder.branch(main_head)

    def k_step(bld: ir.IRBuilder, pa, pb, accs, step: int):
        """One rank-1 update at k offset ``step`` from pa/pb; returns the new accumulators."""
        a_vecs = []
        for v in range(nv):
            ptr = bld.gep(pa, [_const64(step * mr_max + v * vl)])
            a_vecs.append(bld.load(bld.bitcast(ptr, vecp), align=min(64, vl * size)))
        if shape.prefetch_a:  # one prefetch per 64-byte line of this step's A column, some steps ahead
            for line in range(0, mr_max * size, 64):
                ptr = bld.gep(pa, [_const64((step + shape.prefetch_a) * mr_max + line // size)])
                bld.call(prefetch, [bld.bitcast(ptr, _I8P), _const32(0), _const32(3), _const32(1)])
        new = list(accs)
        for j in range(nr_max):
            b_val = bld.load(bld.gep(pb, [_const64(step * nr_max + j)]), align=size)
            b_vec = _splat(bld, b_val, vec)
            for v in range(nv):
                idx = j * nv + v
                new[idx] = bld.call(fma, [a_vecs[v], b_vec, new[idx]])
        return new

    unroll = shape.unroll
    # main loop: unroll k steps per trip while k + unroll <= kc
    builder.position_at_end(main_head)
    k_phi = builder.phi(_I64, "k")
    pa_phi = builder.phi(fltp, "pa")
    pb_phi = builder.phi(fltp, "pb")
    acc_phis = [builder.phi(vec, f"acc{i}") for i in range(n_acc)]
    k_phi.add_incoming(_const64(0), entry)
    pa_phi.add_incoming(a0, entry)
    pb_phi.add_incoming(b0, entry)
    for phi in acc_phis:
        phi.add_incoming(zero_vec, entry)
    k_next = builder.add(k_phi, _const64(unroll))
    builder.cbranch(builder.icmp_signed("<=", k_next, kc), main_body, tail_head)

    builder.position_at_end(main_body)
    accs = list(acc_phis)
    for step in range(unroll):
        accs = k_step(builder, pa_phi, pb_phi, accs, step)
    pa_next = builder.gep(pa_phi, [_const64(unroll * mr_max)])
    pb_next = builder.gep(pb_phi, [_const64(unroll * nr_max)])
    k_phi.add_incoming(k_next, main_body)
    pa_phi.add_incoming(pa_next, main_body)
    pb_phi.add_incoming(pb_next, main_body)
    for phi, value in zip(acc_phis, accs):
        phi.add_incoming(value, main_body)
    builder.branch(main_head)

    # tail loop: one k step per trip
    builder.position_at_end(tail_head)
    tk = builder.phi(_I64, "tk")
    tpa = builder.phi(fltp, "tpa")
    tpb = builder.phi(fltp, "tpb")
    tacc = [builder.phi(vec, f"tacc{i}") for i in range(n_acc)]
    tk.add_incoming(k_phi, main_head)
    tpa.add_incoming(pa_phi, main_head)
    tpb.add_incoming(pb_phi, main_head)
    for phi, value in zip(tacc, acc_phis):
        phi.add_incoming(value, main_head)
    builder.cbranch(builder.icmp_signed("<", tk, kc), tail_body, done)

    builder.position_at_end(tail_body)
    accs = k_step(builder, tpa, tpb, list(tacc), 0)
    tk.add_incoming(builder.add(tk, _const64(1)), tail_body)
    tpa.add_incoming(builder.gep(tpa, [_const64(mr_max)]), tail_body)
    tpb.add_incoming(builder.gep(tpb, [_const64(nr_max)]), tail_body)
    for phi, value in zip(tacc, accs):
        phi.add_incoming(value, tail_body)
    builder.branch(tail_head)

    # epilogue: C = alpha * acc (+ beta * C)
    builder.position_at_end(done)
    alpha_v = _splat(builder, alpha, vec)
    beta_v = _splat(builder, beta, vec)
    scaled = [builder.fmul(acc, alpha_v) for acc in tacc]
    full = builder.and_(builder.icmp_signed("==", mr, _const64(mr_max)),
                        builder.icmp_signed("==", nr, _const64(nr_max)))
    beta_zero = builder.fcmp_ordered("==", beta, ir.Constant(flt, 0.0))
    full_b0 = fn.append_basic_block("full_beta0")
    full_b = fn.append_basic_block("full_beta")
    part = fn.append_basic_block("partial")
    ret = fn.append_basic_block("ret")
    full_sel = fn.append_basic_block("full")
    builder.cbranch(full, full_sel, part)

    builder.position_at_end(full_sel)
    builder.cbranch(beta_zero, full_b0, full_b)

    def column_ptrs(bld: ir.IRBuilder, j: int):
        col = bld.gep(c0, [bld.mul(ldc, _const64(j))])
        return [bld.bitcast(bld.gep(col, [_const64(v * vl)]), vecp) for v in range(nv)]

    builder.position_at_end(full_b0)
    for j in range(nr_max):
        for v, ptr in enumerate(column_ptrs(builder, j)):
            builder.store(scaled[j * nv + v], ptr, align=size)
    builder.branch(ret)

    builder.position_at_end(full_b)
    for j in range(nr_max):
        for v, ptr in enumerate(column_ptrs(builder, j)):
            old = builder.load(ptr, align=size)
            builder.store(builder.call(fma, [old, beta_v, scaled[j * nv + v]]), ptr, align=size)
    builder.branch(ret)

    # partial tile: rows masked by mr, columns cut at nr
    builder.position_at_end(part)
    mr32 = builder.trunc(mr, _I32)
    mr_v = _splat(builder, mr32, ir.VectorType(_I32, vl))
    masks = []
    for v in range(nv):
        lane = ir.Constant(ir.VectorType(_I32, vl), [v * vl + i for i in range(vl)])
        masks.append(builder.icmp_signed("<", lane, mr_v))
    partial_b0 = fn.append_basic_block("partial_beta0")
    partial_b = fn.append_basic_block("partial_beta")
    builder.cbranch(beta_zero, partial_b0, partial_b)
    for use_beta, first in ((False, partial_b0), (True, partial_b)):
        # a chain of column blocks: column j is stored when j < nr, else we are done
        builder.position_at_end(first)
        tag = "b" if use_beta else "z"
        for j in range(nr_max):
            store_bb = fn.append_basic_block(f"store_{tag}{j}")
            builder.cbranch(builder.icmp_signed("<", _const64(j), nr), store_bb, ret)
            builder.position_at_end(store_bb)
            for v, ptr in enumerate(column_ptrs(builder, j)):
                value = scaled[j * nv + v]
                if use_beta:
                    old = builder.call(mload, [ptr, _const32(size), masks[v], zero_vec])
                    value = builder.call(fma, [old, beta_v, value])
                builder.call(mstore, [value, ptr, _const32(size), masks[v]])
        builder.branch(ret)
    builder.position_at_end(ret)
    builder.ret_void()
    return fn
