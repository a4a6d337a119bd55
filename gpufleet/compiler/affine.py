"""The loop-level IR that Toy is lowered to, and its printer in MLIR's textual form (MLIR Toy tutorial,
Chapter 5 "Partial Lowering to Lower-Level Dialects for Optimization": the `affine`, `memref`, `arith`
and `func` dialects, with `toy.print` kept on a memref).

Only what the Toy lowering needs is modelled:

  %cst = arith.constant 1.000000e+00 : f64
  %alloc = memref.alloc() : memref<3x2xf64>
  %0 = memref.get_global @__constant_512x512xf64 : memref<512x512xf64>
  affine.for %arg0 = 0 to 3 { ... }
  %1 = affine.load %alloc[%arg1, %arg0] : memref<3x2xf64>
  affine.store %1, %alloc_0[%arg0, %arg1] : memref<3x2xf64>
  %2 = arith.mulf %1, %1 : f64                     (also arith.addf)
  toy.print %alloc : memref<3x2xf64>       ("toy.print"(%alloc) : (memref<3x2xf64>) -> () when generic)
  memref.dealloc %alloc : memref<3x2xf64>
  return

Subscripts are affine expressions of loop induction variables: an int, an induction variable, or a
tuple ("add", a, b) / ("mul", a, int) / ("floordiv", a, int) / ("mod", a, int).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ir import MemRefType, format_float, num_elements

F64 = "f64"
INDEX = "index"


class AValue:
    """An SSA value of the loop IR: an f64 scalar, an index (loop induction variable) or a memref."""

    __slots__ = ("type",)

    def __init__(self, type_):
        self.type = type_


@dataclass(eq=False)
class Constant:
    value: float
    result: AValue = field(default_factory=lambda: AValue(F64))


@dataclass(eq=False)
class Alloc:
    type: MemRefType
    result: AValue = None

    def __post_init__(self):
        self.result = AValue(self.type)


@dataclass(eq=False)
class GetGlobal:
    """`memref.get_global @name`: a read-only buffer holding a large constant (never deallocated)."""

    name: str
    type: MemRefType
    result: AValue = None

    def __post_init__(self):
        self.result = AValue(self.type)


@dataclass(eq=False)
class Dealloc:
    memref: AValue


@dataclass(eq=False)
class Load:
    memref: AValue
    indices: tuple
    result: AValue = field(default_factory=lambda: AValue(F64))


@dataclass(eq=False)
class Store:
    value: AValue
    memref: AValue
    indices: tuple


@dataclass(eq=False)
class Arith:
    """`arith.mulf` / `arith.addf` on f64."""

    kind: str
    lhs: AValue
    rhs: AValue
    result: AValue = field(default_factory=lambda: AValue(F64))


@dataclass(eq=False)
class For:
    """`affine.for %iv = lower to upper { body }` (step 1, constant bounds)."""

    lower: int
    upper: int
    body: list = field(default_factory=list)
    iv: AValue = field(default_factory=lambda: AValue(INDEX))


@dataclass(eq=False)
class Print:
    memref: AValue


@dataclass(eq=False)
class Return:
    pass


@dataclass
class AFunc:
    name: str
    body: list


@dataclass
class Global:
    name: str
    type: MemRefType
    values: tuple


@dataclass
class AModule:
    functions: list
    globals: list = field(default_factory=list)


# ------------------------------------------------------------------------------------ walking helpers
def walk(body: list):
    """Every op in `body` and in the bodies of its loops, outer before inner."""
    for op in body:
        yield op
        if isinstance(op, For):
            yield from walk(op.body)


def operands(op) -> list:
    if isinstance(op, (Dealloc, Print)):
        return [op.memref]
    if isinstance(op, Load):
        return [op.memref]
    if isinstance(op, Store):
        return [op.value, op.memref]
    if isinstance(op, Arith):
        return [op.lhs, op.rhs]
    return []


def replace_uses(body: list, old: AValue, new: AValue) -> None:
    for op in walk(body):
        for name in ("memref", "value", "lhs", "rhs"):
            if getattr(op, name, None) is old:
                setattr(op, name, new)


def expr_ivs(expr):
    if isinstance(expr, AValue):
        yield expr
    elif isinstance(expr, tuple):
        yield from expr_ivs(expr[1])


def substitute(expr, mapping: dict):
    """`expr` with induction variables replaced through `mapping` (AValue -> AValue)."""
    if isinstance(expr, AValue):
        return mapping.get(expr, expr)
    if isinstance(expr, tuple):
        kind, a, b = expr
        if kind == "add":
            return ("add", substitute(a, mapping), substitute(b, mapping))
        return (kind, substitute(a, mapping), b)
    return expr


# ---------------------------------------------------------------------------------------------- printer
class _Namer:
    def __init__(self):
        self.names: dict[int, str] = {}
        self.counts: dict[str, int] = {}
        self.next_number = 0

    def define(self, value: AValue, base: str | None = None) -> str:
        if base is None:
            name = f"%{self.next_number}"
            self.next_number += 1
        else:
            n = self.counts.get(base, -1)
            self.counts[base] = n + 1
            name = f"%{base}" if n < 0 else f"%{base}_{n}"
        self.names[id(value)] = name
        return name

    def __call__(self, value: AValue) -> str:
        return self.names.get(id(value), "%<<UNKNOWN SSA VALUE>>")


def _expr_text(expr, names: _Namer, nested: bool = False) -> str:
    if isinstance(expr, int):
        return str(expr)
    if isinstance(expr, AValue):
        return names(expr)
    kind, a, b = expr
    if kind == "add":
        text = f"{_expr_text(a, names, True)} + {_expr_text(b, names, True)}"
    elif kind == "mul":
        text = f"{_expr_text(a, names, True)} * {b}"
    else:
        text = f"{_expr_text(a, names, True)} {kind} {b}"
    return f"({text})" if nested else text


def _subscript(indices: tuple, names: _Namer) -> str:
    return "[" + ", ".join(_expr_text(e, names) for e in indices) + "]"


def _print_body(body: list, names: _Namer, indent: str, depth: int, lines: list, generic_print: bool) -> None:
    for op in body:
        if isinstance(op, Constant):
            lines.append(f"{indent}{names.define(op.result, 'cst')} = arith.constant "
                         f"{format_float(op.value)} : f64")
        elif isinstance(op, Alloc):
            lines.append(f"{indent}{names.define(op.result, 'alloc')} = memref.alloc() : {op.type}")
        elif isinstance(op, GetGlobal):
            lines.append(f"{indent}{names.define(op.result)} = memref.get_global @{op.name} : {op.type}")
        elif isinstance(op, Dealloc):
            lines.append(f"{indent}memref.dealloc {names(op.memref)} : {op.memref.type}")
        elif isinstance(op, Load):
            lines.append(f"{indent}{names.define(op.result)} = affine.load {names(op.memref)}"
                         f"{_subscript(op.indices, names)} : {op.memref.type}")
        elif isinstance(op, Store):
            lines.append(f"{indent}affine.store {names(op.value)}, {names(op.memref)}"
                         f"{_subscript(op.indices, names)} : {op.memref.type}")
        elif isinstance(op, Arith):
            lines.append(f"{indent}{names.define(op.result)} = arith.{op.kind} {names(op.lhs)}, "
                         f"{names(op.rhs)} : f64")
        elif isinstance(op, For):
            iv = f"%arg{depth}"
            names.names[id(op.iv)] = iv
            lines.append(f"{indent}affine.for {iv} = {op.lower} to {op.upper} {{")
            _print_body(op.body, names, indent + "  ", depth + 1, lines, generic_print)
            lines.append(f"{indent}}}")
        elif isinstance(op, Print) and generic_print:
            lines.append(f'{indent}"toy.print"({names(op.memref)}) : ({op.memref.type}) -> ()')
        elif isinstance(op, Print):
            lines.append(f"{indent}toy.print {names(op.memref)} : {op.memref.type}")
        elif isinstance(op, Return):
            lines.append(f"{indent}return")
        else:  # pragma: no cover - every op kind is listed above
            raise TypeError(f"unknown loop-IR op {op!r}")


def _dense_text(shape: tuple, values: tuple) -> str:
    if values and all(v == values[0] for v in values):
        return format_float(values[0])

    def nest(offset: int, dims: tuple) -> tuple[str, int]:
        if not dims:
            return format_float(values[offset]), offset + 1
        parts = []
        for _ in range(dims[0]):
            text, offset = nest(offset, dims[1:])
            parts.append(text)
        return "[" + ", ".join(parts) + "]", offset

    return nest(0, shape)[0]


def print_affine_module(module: AModule, generic_print: bool = False) -> str:
    """MLIR text; `generic_print` writes toy.print in the generic form `"toy.print"(%m) : (memref<..>) -> ()`,
    which `mlir-opt --allow-unregistered-dialect` reads (the toy dialect is not registered there)."""
    lines = ["module {"]
    for g in module.globals:
        lines.append(f'  memref.global "private" constant @{g.name} : {g.type} = '
                     f"dense<{_dense_text(g.type.shape, g.values)}>")
    for func in module.functions:
        lines.append(f"  func.func @{func.name}() {{")
        _print_body(func.body, _Namer(), "    ", 0, lines, generic_print)
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def memref_elements(type_: MemRefType) -> int:
    return num_elements(type_.shape)
