"""Toy IR: types, attributes, operations and the verifier (MLIR Toy tutorial, Chapter 2 "Emitting
Basic MLIR": the toy dialect and its operations; Chapter 4 adds toy.cast and the shape-inference
hook on each op; Chapter 7 adds !toy.struct, toy.struct_constant and toy.struct_access; toy.matmul,
a matrix product of rank-2 tensors, is ours, beyond the tutorial).

The IR is a small SSA form shaped like MLIR's: a Module holds FuncOps, a FuncOp holds one block of
Operations, an Operation has operands (Values), results (Values), attributes and a location.
Operation semantics (operand/result counts, type rules, verify messages) follow the tutorial's Ops.td.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .diagnostics import CompileError, Location


# ---------------------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class TensorType:
    """`tensor<*xf64>` (shape None: unranked), `tensor<2x3xf64>`, `tensor<f64>` (rank 0)."""

    shape: tuple[int, ...] | None
    element: str = "f64"

    @property
    def ranked(self) -> bool:
        return self.shape is not None

    def __str__(self) -> str:
        if self.shape is None:
            return f"tensor<*x{self.element}>"
        return "tensor<" + "".join(f"{d}x" for d in self.shape) + self.element + ">"


@dataclass(frozen=True)
class MemRefType:
    shape: tuple[int, ...]
    element: str = "f64"

    def __str__(self) -> str:
        return "memref<" + "".join(f"{d}x" for d in self.shape) + self.element + ">"


@dataclass(frozen=True)
class StructType:
    """`!toy.struct<tensor<*xf64>, ...>` (Chapter 7)."""

    elements: tuple

    def __str__(self) -> str:
        return "!toy.struct<" + ", ".join(str(e) for e in self.elements) + ">"


@dataclass(frozen=True)
class OtherType:
    """A type we can parse and print but the toy ops do not accept (e.g. `i32`, `f32`)."""

    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class FunctionType:
    inputs: tuple
    results: tuple

    def __str__(self) -> str:
        ins = "(" + ", ".join(str(t) for t in self.inputs) + ")"
        if len(self.results) == 1 and not isinstance(self.results[0], FunctionType):
            return f"{ins} -> {self.results[0]}"
        return f"{ins} -> (" + ", ".join(str(t) for t in self.results) + ")"


UNRANKED = TensorType(None)


def is_f64_tensor(t) -> bool:
    return isinstance(t, TensorType) and t.element == "f64"


def is_unranked_tensor(t) -> bool:
    return isinstance(t, TensorType) and not t.ranked


def types_compatible(a, b) -> bool:
    """Equal, or tensors of the same element type where one side is unranked (MLIR's cast rule)."""
    if a == b:
        return True
    if isinstance(a, TensorType) and isinstance(b, TensorType) and a.element == b.element:
        return not a.ranked or not b.ranked
    return False


def num_elements(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ----------------------------------------------------------------------------------------- attributes
def format_float(value: float) -> str:
    """MLIR prints an f64 as `%e` (1.000000e+00) when that reads back exactly, else more digits."""
    if value != value or value in (float("inf"), float("-inf")):
        import struct
        return "0x%016X" % struct.unpack("<Q", struct.pack("<d", value))[0]
    text = "%e" % value
    if float(text) == value:
        return text
    text = repr(value)
    if "." not in text and "e" not in text:
        text += ".0"
    return text


@dataclass(frozen=True)
class DenseAttr:
    """`dense<...> : tensor<...xf64>`: a constant tensor, values flattened row-major."""

    type: TensorType
    values: tuple[float, ...]

    @property
    def is_splat(self) -> bool:
        return len(self.values) >= 1 and all(v == self.values[0] for v in self.values)

    def body(self) -> str:
        if self.is_splat:
            return format_float(self.values[0])
        shape = self.type.shape or ()

        def nest(offset: int, dims: tuple[int, ...]) -> tuple[str, int]:
            if not dims:
                return format_float(self.values[offset]), offset + 1
            parts = []
            for _ in range(dims[0]):
                text, offset = nest(offset, dims[1:])
                parts.append(text)
            return "[" + ", ".join(parts) + "]", offset

        return nest(0, shape)[0]

    def __str__(self) -> str:
        return f"dense<{self.body()}> : {self.type}"

    def key(self) -> tuple:
        """Identity for de-duplication (bit patterns, so 0.0 and -0.0 differ), without printing."""
        from array import array
        return ("dense", self.type, array("d", self.values).tobytes())


@dataclass(frozen=True)
class ArrayAttr:
    """`[attr, attr]`: the value of a toy.struct_constant (Chapter 7); members are DenseAttr or ArrayAttr."""

    elements: tuple

    def __str__(self) -> str:
        return "[" + ", ".join(str(e) for e in self.elements) + "]"

    def key(self) -> tuple:
        return ("array",) + tuple(attr_key(e) for e in self.elements)


def attr_key(attr) -> object:
    """A hashable identity of an attribute: `key()` for constants, else the printed form."""
    key = getattr(attr, "key", None)
    return key() if key is not None else str(attr)


@dataclass(frozen=True)
class IntegerAttr:
    value: int
    type: str = "i64"

    def __str__(self) -> str:
        return f"{self.value} : {self.type}"


@dataclass(frozen=True)
class SymbolRefAttr:
    name: str

    def __str__(self) -> str:
        return f"@{self.name}"


# ------------------------------------------------------------------------------------ values and ops
_ids = itertools.count()


class Value:
    """An SSA value: a function argument or an op result."""

    __slots__ = ("type", "owner", "index", "id")

    def __init__(self, type_, owner=None, index: int = 0):
        self.type = type_
        self.owner = owner  # the defining Operation, or None for a function argument
        self.index = index
        self.id = next(_ids)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Value({self.type}, {self.owner.name if self.owner else 'arg'})"


class Operation:
    def __init__(self, name: str, operands: list[Value] | None = None, result_types: list | None = None,
                 attributes: dict | None = None, location: Location | None = None):
        self.name = name
        self.operands: list[Value] = list(operands or [])
        self.results: list[Value] = [Value(t, self, i) for i, t in enumerate(result_types or [])]
        self.attributes: dict = dict(attributes or {})
        self.location = location

    @property
    def result(self) -> Value:
        return self.results[0]

    def __repr__(self) -> str:  # pragma: no cover
        return f"Operation({self.name})"


class FuncOp:
    """`toy.func [private] @name(%arg0: type, ...) -> type { ... }`: one block ending in toy.return."""

    def __init__(self, name: str, arg_types: list, result_types: list, location: Location | None = None,
                 private: bool = False):
        self.name = name
        self.args = [Value(t) for t in arg_types]
        self.result_types = list(result_types)
        self.ops: list[Operation] = []
        self.location = location
        self.private = private

    @property
    def type(self) -> FunctionType:
        return FunctionType(tuple(a.type for a in self.args), tuple(self.result_types))


class Module:
    def __init__(self, functions: list[FuncOp] | None = None, location: Location | None = None):
        self.functions: list[FuncOp] = list(functions or [])
        self.location = location

    def lookup(self, name: str) -> FuncOp | None:
        for f in self.functions:
            if f.name == name:
                return f
        return None


# ---------------------------------------------------------------------------------- helpers for passes
PURE_OPS = {"toy.constant", "toy.transpose", "toy.reshape", "toy.mul", "toy.add", "toy.matmul", "toy.cast",
            "toy.struct_constant", "toy.struct_access"}


def uses(func: FuncOp, value: Value) -> list[Operation]:
    return [op for op in func.ops if any(o is value for o in op.operands)]


def replace_all_uses(func: FuncOp, old: Value, new: Value) -> None:
    for op in func.ops:
        op.operands = [new if o is old else o for o in op.operands]


def used_values(func: FuncOp) -> set[int]:
    return {o.id for op in func.ops for o in op.operands}


# ------------------------------------------------------------------------------------------- verifier
def op_error(op: Operation, message: str) -> CompileError:
    return CompileError(op.location, f"'{op.name}' op {message}")


_COUNTS = {  # name: (operands (min, max), results)
    "toy.constant": ((0, 0), 1), "toy.transpose": ((1, 1), 1), "toy.reshape": ((1, 1), 1),
    "toy.mul": ((2, 2), 1), "toy.add": ((2, 2), 1), "toy.matmul": ((2, 2), 1),
    "toy.generic_call": ((0, None), 1),
    "toy.print": ((1, 1), 0), "toy.return": ((0, 1), 0), "toy.cast": ((1, 1), 1),
    "toy.struct_constant": ((0, 0), 1), "toy.struct_access": ((1, 1), 1),
}
KNOWN_OPS = set(_COUNTS)


def _verify_constant_for_type(op: Operation, type_, attr) -> None:
    """Chapter 7's verifyConstantForType: a struct constant's members match the struct's types."""
    if isinstance(type_, StructType):
        if not isinstance(attr, ArrayAttr) or len(attr.elements) != len(type_.elements):
            raise op_error(op, "struct constant types must match the number of elements")
        for member_type, member in zip(type_.elements, attr.elements):
            _verify_constant_for_type(op, member_type, member)
        return
    if not isinstance(attr, DenseAttr):
        raise op_error(op, f"expected a dense tensor value for type {type_}")
    if not is_f64_tensor(type_):
        raise op_error(op, f"result must be a tensor of 64-bit float values, but got {type_}")
    if type_.ranked and (len(type_.shape) != len(attr.type.shape or ()) or type_.shape != attr.type.shape):
        raise op_error(op, f"return type must match the one of the attached value attribute: "
                           f"{type_} vs {attr.type}")


def verify_op(op: Operation, func: FuncOp, module: Module, is_last: bool) -> None:
    if op.name not in _COUNTS:
        raise CompileError(op.location, f"unknown operation '{op.name}'")
    (lo, hi), n_results = _COUNTS[op.name]
    n = len(op.operands)
    if n < lo or (hi is not None and n > hi):
        want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
        raise op_error(op, f"expects {want} operands, but found {n}")
    if len(op.results) != n_results:
        raise op_error(op, f"expects {n_results} results, but found {len(op.results)}")
    if op.name == "toy.return":
        if not is_last:
            raise op_error(op, "must be the last operation in the parent block")
    elif is_last:
        raise op_error(op, "block must end with a 'toy.return' terminator")
    name = op.name
    tensor_operands = name not in ("toy.generic_call", "toy.return", "toy.struct_access")
    if tensor_operands:
        for i, o in enumerate(op.operands):
            ok = is_f64_tensor(o.type) or (name == "toy.print" and isinstance(o.type, MemRefType)
                                           and o.type.element == "f64")
            if not ok:
                raise op_error(op, f"operand #{i} must be tensor of 64-bit float values, but got {o.type}")
    if name not in ("toy.struct_constant", "toy.struct_access", "toy.generic_call"):
        for r in op.results:
            if not is_f64_tensor(r.type):
                raise op_error(op, f"result must be tensor of 64-bit float values, but got {r.type}")
    if name == "toy.constant":
        value = op.attributes.get("value")
        if not isinstance(value, DenseAttr):
            raise op_error(op, "requires a 'value' attribute of dense elements")
        _verify_constant_for_type(op, op.result.type, value)
    elif name == "toy.struct_constant":
        value = op.attributes.get("value")
        if not isinstance(op.result.type, StructType):
            raise op_error(op, f"result must be a toy struct type, but got {op.result.type}")
        if not isinstance(value, ArrayAttr):
            raise op_error(op, "requires a 'value' array attribute")
        _verify_constant_for_type(op, op.result.type, value)
    elif name == "toy.struct_access":
        struct_type = op.operands[0].type
        index = op.attributes.get("index")
        if not isinstance(struct_type, StructType):
            raise op_error(op, f"operand #0 must be a toy struct type, but got {struct_type}")
        if not isinstance(index, IntegerAttr):
            raise op_error(op, "requires an integer 'index' attribute")
        if not 0 <= index.value < len(struct_type.elements):
            raise op_error(op, "index should be within the range of the input struct type")
        if op.result.type != struct_type.elements[index.value]:
            raise op_error(op, "must have the same result type as the StructType's element being accessed")
    elif name == "toy.reshape":
        if not op.result.type.ranked:
            raise op_error(op, f"result must be statically shaped tensor of 64-bit float values, "
                               f"but got {op.result.type}")
        src = op.operands[0].type
        if (src.ranked and num_elements(src.shape) != 1
                and num_elements(src.shape) != num_elements(op.result.type.shape)):
            raise op_error(op, f"cannot reshape {src} ({num_elements(src.shape)} elements) to "
                               f"{op.result.type} ({num_elements(op.result.type.shape)} elements)")
    elif name == "toy.matmul":
        a, b, c = op.operands[0].type, op.operands[1].type, op.result.type
        for t in (a, b, c):
            if t.ranked and len(t.shape) != 2:
                raise op_error(op, f"expects rank-2 operands and result, but got {t}")
        if a.ranked and b.ranked:
            if a.shape[1] != b.shape[0]:
                raise op_error(op, f"inner dimensions differ: {a} x {b}")
            if c.ranked and c.shape != (a.shape[0], b.shape[1]):
                raise op_error(op, f"result type {c} should be tensor<{a.shape[0]}x{b.shape[1]}xf64>")
    elif name == "toy.transpose":
        src, dst = op.operands[0].type, op.result.type
        if src.ranked and dst.ranked and tuple(reversed(src.shape)) != dst.shape:
            raise op_error(op, "expected result shape to be a transpose of the input")
    elif name == "toy.cast":
        if not types_compatible(op.operands[0].type, op.result.type):
            raise op_error(op, f"operand type {op.operands[0].type} and result type {op.result.type} "
                               f"are cast incompatible")
    elif name == "toy.generic_call":
        callee = op.attributes.get("callee")
        if not isinstance(callee, SymbolRefAttr):
            raise op_error(op, "requires a 'callee' symbol reference attribute")
        target = module.lookup(callee.name)
        if target is None:
            raise op_error(op, f"'{callee}' does not reference a valid function")
        if len(target.args) != len(op.operands):
            raise op_error(op, f"calls {callee} with {len(op.operands)} arguments, "
                               f"but the function takes {len(target.args)}")
        if len(target.result_types) != len(op.results):
            raise op_error(op, f"expects a result, but {callee} returns {len(target.result_types)} values")
        for i, (arg, o) in enumerate(zip(target.args, op.operands)):
            if not types_compatible(arg.type, o.type):
                raise op_error(op, f"operand #{i} of type {o.type} does not match parameter type {arg.type} "
                                   f"of {callee}")
    elif name == "toy.return":
        if len(op.operands) != len(func.result_types):
            raise op_error(op, f"does not return the same number of values ({len(op.operands)}) as the "
                               f"enclosing function ({len(func.result_types)})")
        if op.operands and not types_compatible(op.operands[0].type, func.result_types[0]):
            raise op_error(op, f"type of return operand ({op.operands[0].type}) doesn't match function "
                               f"result type ({func.result_types[0]}) in function @{func.name}")


def verify(module: Module) -> None:
    """Raise CompileError on the first invalid construct (MLIR's verifier, Toy's op verify hooks)."""
    seen: set[str] = set()
    for func in module.functions:
        if func.name in seen:
            raise CompileError(func.location, f"redefinition of symbol named '{func.name}'")
        seen.add(func.name)
    for func in module.functions:
        if len(func.result_types) > 1:
            raise CompileError(func.location, f"'toy.func' op @{func.name} returns more than one value")
        if not func.ops:
            raise CompileError(func.location, f"'toy.func' op @{func.name}: empty block: expected at "
                                              f"least a 'toy.return' terminator")
        defined = {a.id for a in func.args}
        for i, op in enumerate(func.ops):
            for k, o in enumerate(op.operands):
                if o.id not in defined:
                    raise op_error(op, f"operand #{k} does not dominate this use")
            verify_op(op, func, module, i == len(func.ops) - 1)
            defined.update(r.id for r in op.results)
