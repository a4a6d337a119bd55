"""Parse Toy IR from MLIR's textual form (MLIR Toy tutorial, Chapter 2 "Emitting Basic MLIR": toyc
reads `.mlir` files / `-x mlir`; the custom assembly syntax of Ops.td and Dialect.cpp and MLIR's
generic operation form `%0 = "toy.op"(%a) {attr = ...} : (types) -> types`).

Accepts what our printer writes and what upstream toyc writes: an optional `module { ... }` wrapper,
`toy.func [private] @name(%arg0: type) -> type { ... }` (or the generic `"toy.func"() ({...}) {...}`),
the custom and generic forms of every toy op, `//` comments and trailing `loc(...)` (ignored).
Only single-block functions are accepted (as in Toy). Errors are diagnostics at file:line:col.
"""

from __future__ import annotations

import bisect
import re

from .diagnostics import CompileError, Location, SourceFile
from .ir import (ArrayAttr, DenseAttr, FuncOp, FunctionType, IntegerAttr, MemRefType, Module, Operation,
                 OtherType, StructType, SymbolRefAttr, TensorType, Value, num_elements)

_IDENT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_$.]*")
_VALUE = re.compile(r"%[a-zA-Z0-9_$.\-]+")
_SYMBOL = re.compile(r"@[a-zA-Z_][a-zA-Z0-9_$.]*")
_NUMBER = re.compile(r"[-+]?(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)")
_INT = re.compile(r"[-+]?[0-9]+")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
MAX_NESTING = 200


class MLIRParser:
    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename
        self.pos = 0
        self.depth = 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    # -- low level ------------------------------------------------------------------------------
    def location(self, pos: int | None = None) -> Location:
        pos = self.pos if pos is None else pos
        line = bisect.bisect_right(self.line_starts, pos) - 1
        return Location(self.filename, line + 1, pos - self.line_starts[line] + 1)

    def error(self, message: str, pos: int | None = None) -> CompileError:
        return CompileError(self.location(pos), message)

    def skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            else:
                break

    def at(self, literal: str) -> bool:
        self.skip()
        return self.text.startswith(literal, self.pos)

    def accept(self, literal: str) -> bool:
        if self.at(literal):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, context: str = "") -> None:
        if not self.accept(literal):
            raise self.error(f"expected '{literal}'{' ' + context if context else ''}, found {self.found()}")

    def found(self) -> str:
        self.skip()
        if self.pos >= len(self.text):
            return "end of file"
        return repr(self.text[self.pos:self.pos + 12].split("\n")[0])

    def match(self, pattern: re.Pattern) -> str | None:
        self.skip()
        m = pattern.match(self.text, self.pos)
        if not m:
            return None
        self.pos = m.end()
        return m.group(0)

    def keyword(self, word: str) -> bool:
        self.skip()
        m = _IDENT.match(self.text, self.pos)
        if m and m.group(0) == word:
            self.pos = m.end()
            return True
        return False

    def nest(self):
        parser = self

        class _Nest:
            def __enter__(self):
                parser.depth += 1
                if parser.depth > MAX_NESTING:
                    raise parser.error(f"nesting deeper than {MAX_NESTING} levels")

            def __exit__(self, *exc):
                parser.depth -= 1

        return _Nest()

    # -- types ----------------------------------------------------------------------------------
    def parse_type(self):
        self.skip()
        start = self.pos
        with self.nest():
            if self.accept("("):
                inputs = []
                if not self.accept(")"):
                    inputs.append(self.parse_type())
                    while self.accept(","):
                        inputs.append(self.parse_type())
                    self.expect(")", "to close the type list")
                self.expect("->", "in function type")
                return FunctionType(tuple(inputs), tuple(self.parse_result_types()))
            if self.accept("!toy.struct<"):
                members = [self.parse_type()]
                while self.accept(","):
                    members.append(self.parse_type())
                self.expect(">", "to close !toy.struct")
                return StructType(tuple(members))
            for kind in ("tensor", "memref"):
                if self.text.startswith(kind + "<", self.pos):
                    self.pos += len(kind) + 1
                    return self.parse_shaped(kind, start)
            word = self.match(_IDENT)
            if word and re.fullmatch(r"(f16|bf16|f32|f64|i[0-9]+|index|none)", word):
                return OtherType(word)
            raise self.error(f"expected a type, found {self.found() if not word else repr(word)}", start)

    def parse_shaped(self, kind: str, start: int):
        shape: list[int] | None = []
        if kind == "tensor" and self.text.startswith("*x", self.pos):
            self.pos += 2
            shape = None
        else:
            while True:
                m = re.compile(r"([0-9]+)x").match(self.text, self.pos)
                if not m:
                    break
                shape.append(int(m.group(1)))
                self.pos = m.end()
            if self.text.startswith("?", self.pos):
                raise self.error("dynamic dimensions are not supported in Toy")
        element = self.match(_IDENT)
        if element is None:
            raise self.error(f"expected an element type in {kind} type")
        self.expect(">", f"to close the {kind} type")
        if kind == "memref":
            return MemRefType(tuple(shape), element)
        return TensorType(None if shape is None else tuple(shape), element)

    def parse_result_types(self) -> list:
        if self.at("("):  # `(a, b)`: a list of result types
            self.expect("(")
            results = []
            if not self.accept(")"):
                results.append(self.parse_type())
                while self.accept(","):
                    results.append(self.parse_type())
                self.expect(")", "to close the result types")
            return results
        return [self.parse_type()]

    # -- attributes -----------------------------------------------------------------------------
    def parse_attribute(self):
        self.skip()
        start = self.pos
        with self.nest():
            if self.keyword("dense"):
                return self.parse_dense(start)
            if self.accept("["):
                elements = []
                if not self.accept("]"):
                    elements.append(self.parse_attribute())
                    while self.accept(","):
                        elements.append(self.parse_attribute())
                    self.expect("]", "to close the array attribute")
                return ArrayAttr(tuple(elements))
            sym = self.match(_SYMBOL)
            if sym:
                return SymbolRefAttr(sym[1:])
            string = self.match(_STRING)
            if string:
                return string[1:-1]
            integer = self.match(_INT)
            if integer is not None:
                type_ = "i64"
                if self.accept(":"):
                    type_ = str(self.parse_type())
                return IntegerAttr(int(integer), type_)
            if self.keyword("unit"):
                return True
            if self.at("(") or self.at("tensor") or self.at("!"):
                return self.parse_type()
            raise self.error(f"expected an attribute value, found {self.found()}")

    def parse_dense(self, start: int) -> DenseAttr:
        self.expect("<", "after 'dense'")
        values: list[float] = []
        structure = self.parse_dense_element(values)
        self.expect(">", "to close the dense attribute")
        self.expect(":", "and a type after the dense attribute")
        type_pos = self.pos
        type_ = self.parse_type()
        if not isinstance(type_, TensorType) or not type_.ranked:
            raise self.error(f"dense attribute needs a ranked tensor type, got {type_}", type_pos)
        if structure is None:  # splat
            return DenseAttr(type_, tuple(values) * num_elements(type_.shape))
        if structure != list(type_.shape):
            raise self.error(f"dense literal of shape {structure} does not match its type {type_}", start)
        return DenseAttr(type_, tuple(values))

    def parse_dense_element(self, values: list[float]):
        """Returns None for a scalar (splat), else the shape of the nested list."""
        with self.nest():
            if self.accept("["):
                shapes = []
                if not self.accept("]"):
                    shapes.append(self.parse_dense_element(values))
                    while self.accept(","):
                        shapes.append(self.parse_dense_element(values))
                    self.expect("]", "in dense literal")
                if any(s != shapes[0] for s in shapes):
                    raise self.error("dense literal has non-uniform nested lists")
                inner = shapes[0] if shapes else []
                return [len(shapes)] + (inner or [])
            number = self.match(_NUMBER)
            if number is None:
                raise self.error(f"expected a number in dense literal, found {self.found()}")
            if number.lower().lstrip("+-").startswith("0x"):
                import struct
                bits = int(number.lstrip("+-"), 16)
                if bits >= 1 << 64:
                    raise self.error("hexadecimal float literal is too large for f64")
                values.append(struct.unpack("<d", struct.pack("<Q", bits))[0])
            else:
                values.append(float(number))
            return None

    def parse_attr_dict(self) -> dict:
        attrs: dict = {}
        if not self.accept("{"):
            return attrs
        if self.accept("}"):
            return attrs
        while True:
            name = self.match(_IDENT) or (self.match(_STRING) or "")[1:-1]
            if not name:
                raise self.error(f"expected an attribute name, found {self.found()}")
            attrs[name] = self.parse_attribute() if self.accept("=") else True
            if self.accept("}"):
                return attrs
            self.expect(",", "between attributes")

    def skip_location(self) -> None:
        if self.keyword("loc"):
            self.expect("(")
            depth = 1
            while depth and self.pos < len(self.text):
                ch = self.text[self.pos]
                depth += (ch == "(") - (ch == ")")
                self.pos += 1

    # -- values ---------------------------------------------------------------------------------
    def value_use(self, scope: dict, expected_type=None) -> Value:
        self.skip()
        start = self.pos
        name = self.match(_VALUE)
        if name is None:
            raise self.error(f"expected an SSA value, found {self.found()}")
        if name not in scope:
            raise self.error(f"use of undeclared SSA value name '{name}'", start)
        return scope[name]

    def typed_use(self, scope: dict, value: Value, type_, pos: int) -> None:
        if value.type != type_:
            raise self.error(f"use of value expects different type than prior uses: '{type_}' vs "
                             f"'{value.type}'", pos)

    # -- module and functions -------------------------------------------------------------------
    def parse_module(self) -> Module:
        self.skip()
        module = Module(location=self.location())
        wrapped = False
        if self.keyword("module") or self.keyword("builtin.module"):
            self.match(_SYMBOL)
            if self.keyword("attributes"):
                self.parse_attr_dict()
            self.expect("{", "to begin the module body")
            wrapped = True
        while True:
            self.skip()
            if wrapped and self.accept("}"):
                self.skip_location()
                self.skip()
                break
            if self.pos >= len(self.text):
                if wrapped:
                    raise self.error("expected '}' to close the module")
                break
            module.functions.append(self.parse_function())
        if self.pos < len(self.text):
            raise self.error(f"unexpected {self.found()} after the module")
        return module

    def parse_function(self) -> FuncOp:
        self.skip()
        start = self.pos
        if self.accept('"toy.func"'):
            return self.parse_generic_function(start)
        if not self.keyword("toy.func"):
            raise self.error(f"expected 'toy.func', found {self.found()}")
        private = False
        for visibility in ("private", "public", "nested"):
            if self.keyword(visibility):
                private = visibility != "public"
                break
        sym = self.match(_SYMBOL)
        if sym is None:
            raise self.error(f"expected a function name like @main, found {self.found()}")
        self.expect("(", "to begin the argument list")
        scope: dict[str, Value] = {}
        arg_names: list[tuple[str, int]] = []
        arg_types = []
        if not self.accept(")"):
            while True:
                self.skip()
                pos = self.pos
                name = self.match(_VALUE)
                if name is None:
                    raise self.error(f"expected an argument like %arg0, found {self.found()}")
                self.expect(":", "after the argument name")
                arg_types.append(self.parse_type())
                self.parse_attr_dict()
                self.skip_location()
                arg_names.append((name, pos))
                if self.accept(")"):
                    break
                self.expect(",", "between arguments")
        results = self.parse_result_types() if self.accept("->") else []
        if self.keyword("attributes"):
            self.parse_attr_dict()
        func = FuncOp(sym[1:], arg_types, results, self.location(start), private)
        for (name, pos), value in zip(arg_names, func.args):
            if name in scope:
                raise self.error(f"redefinition of SSA value '{name}'", pos)
            scope[name] = value
        self.expect("{", "to begin the function body")
        self.parse_ops(func, scope, "}")
        self.skip_location()
        return func

    def parse_generic_function(self, start: int) -> FuncOp:
        self.expect("(")
        self.expect(")", "toy.func takes no operands")
        self.expect("(", "to begin the region list")
        self.expect("{", "to begin the function body")
        scope: dict[str, Value] = {}
        arg_names: list[str] = []
        arg_types = []
        if self.accept("^"):
            self.match(_IDENT)
            if self.accept("("):
                if not self.accept(")"):
                    while True:
                        name = self.match(_VALUE)
                        if name is None:
                            raise self.error(f"expected a block argument, found {self.found()}")
                        self.expect(":")
                        arg_types.append(self.parse_type())
                        self.skip_location()
                        arg_names.append(name)
                        if self.accept(")"):
                            break
                        self.expect(",", "between block arguments")
            self.expect(":", "after the block label")
        func = FuncOp("", arg_types, [], self.location(start))
        for name, value in zip(arg_names, func.args):
            scope[name] = value
        self.parse_ops(func, scope, "}")
        self.expect(")", "to close the region list")
        attrs = self.parse_attr_dict()
        self.expect(":")
        self.parse_type()
        self.skip_location()
        fn_type = attrs.get("function_type")
        name = attrs.get("sym_name")
        if not isinstance(name, str) or not isinstance(fn_type, FunctionType):
            raise self.error("generic toy.func needs 'sym_name' and 'function_type' attributes", start)
        if list(fn_type.inputs) != arg_types:
            raise self.error("function_type inputs do not match the entry block arguments", start)
        func.name = name
        func.result_types = list(fn_type.results)
        func.private = attrs.get("sym_visibility", "public") != "public"
        return func

    def parse_ops(self, func: FuncOp, scope: dict, end: str) -> None:
        while not self.accept(end):
            self.skip()
            if self.pos >= len(self.text):
                raise self.error(f"expected '{end}' to close the function body")
            if self.at("^"):
                raise self.error("Toy functions have a single block; block labels are not supported")
            func.ops.append(self.parse_op(scope))

    def parse_op(self, scope: dict) -> Operation:
        self.skip()
        start = self.pos
        result_names: list[tuple[str, int]] = []
        if self.at("%"):
            while True:
                self.skip()
                pos = self.pos
                name = self.match(_VALUE)
                if name is None:
                    raise self.error(f"expected an SSA result name, found {self.found()}")
                result_names.append((name, pos))
                if not self.accept(","):
                    break
            self.expect("=", "after the result names")
        self.skip()
        op_pos = self.pos
        if self.at('"'):
            op = self.parse_generic_op(scope, self.location(op_pos))
        else:
            name = self.match(_IDENT)
            if name is None:
                raise self.error(f"expected an operation name, found {self.found()}")
            parse = _CUSTOM.get(name)
            if parse is None:
                raise self.error(f"custom op '{name}' is unknown", op_pos)
            op = parse(self, scope, self.location(op_pos))
        self.skip_location()
        if len(result_names) != len(op.results):
            raise self.error(f"operation defines {len(op.results)} results but was given "
                             f"{len(result_names)} names", start)
        for (name, pos), value in zip(result_names, op.results):
            if name in scope:
                raise self.error(f"redefinition of SSA value '{name}'", pos)
            scope[name] = value
        return op

    def parse_generic_op(self, scope: dict, loc: Location) -> Operation:
        name = self.match(_STRING)[1:-1]
        self.expect("(", "to begin the operand list")
        operands = []
        if not self.accept(")"):
            operands.append(self.value_use(scope))
            while self.accept(","):
                operands.append(self.value_use(scope))
            self.expect(")", "to close the operand list")
        if self.at("("):
            raise self.error(f"operation '{name}' does not take regions")
        attrs = self.parse_attr_dict()
        self.expect(":", "and a function type after a generic operation")
        type_pos = self.pos
        fn_type = self.parse_type()
        if not isinstance(fn_type, FunctionType):
            raise self.error("expected a function type like (types) -> types", type_pos)
        if len(fn_type.inputs) != len(operands):
            raise self.error(f"{len(operands)} operands present, but expected {len(fn_type.inputs)}", type_pos)
        for value, type_ in zip(operands, fn_type.inputs):
            self.typed_use(scope, value, type_, type_pos)
        return Operation(name, operands, list(fn_type.results), attrs, loc)

    # -- custom forms ---------------------------------------------------------------------------
    def _typed_operand(self, scope: dict):
        self.skip()
        pos = self.pos
        value = self.value_use(scope)
        return value, pos

    def custom_constant(self, scope, loc):
        attrs = self.parse_attr_dict()
        self.skip()
        pos = self.pos
        value = self.parse_attribute()
        if not isinstance(value, DenseAttr):
            raise self.error("toy.constant expects a dense<...> : tensor<...> value", pos)
        attrs["value"] = value
        return Operation("toy.constant", [], [value.type], attrs, loc)

    def custom_transpose_like(self, name):
        def parse(scope, loc):
            self.expect("(", f"after {name}")
            value, pos = self._typed_operand(scope)
            self.expect(":")
            self.typed_use(scope, value, self.parse_type(), pos)
            self.expect(")")
            attrs = self.parse_attr_dict()
            if not self.keyword("to"):
                raise self.error(f"expected 'to' and the result type, found {self.found()}")
            return Operation(name, [value], [self.parse_type()], attrs, loc)
        return parse

    def custom_binary(self, name):
        def parse(scope, loc):
            lhs, lpos = self._typed_operand(scope)
            self.expect(",", "between the operands")
            rhs, rpos = self._typed_operand(scope)
            attrs = self.parse_attr_dict()
            self.expect(":")
            type_ = self.parse_type()
            if isinstance(type_, FunctionType):
                if len(type_.inputs) != 2 or len(type_.results) != 1:
                    raise self.error(f"{name} expects a type (2 inputs) -> 1 result")
                self.typed_use(scope, lhs, type_.inputs[0], lpos)
                self.typed_use(scope, rhs, type_.inputs[1], rpos)
                return Operation(name, [lhs, rhs], [type_.results[0]], attrs, loc)
            self.typed_use(scope, lhs, type_, lpos)
            self.typed_use(scope, rhs, type_, rpos)
            return Operation(name, [lhs, rhs], [type_], attrs, loc)
        return parse

    def custom_generic_call(self, scope, loc):
        sym = self.match(_SYMBOL)
        if sym is None:
            raise self.error(f"expected the callee like @f, found {self.found()}")
        self.expect("(")
        operands = []
        if not self.accept(")"):
            operands.append(self._typed_operand(scope))
            while self.accept(","):
                operands.append(self._typed_operand(scope))
            self.expect(")")
        attrs = self.parse_attr_dict()
        attrs = {"callee": SymbolRefAttr(sym[1:]), **attrs}
        self.expect(":")
        type_pos = self.pos
        fn_type = self.parse_type()
        if not isinstance(fn_type, FunctionType) or len(fn_type.inputs) != len(operands):
            raise self.error("expected a function type matching the call's operands", type_pos)
        for (value, pos), type_ in zip(operands, fn_type.inputs):
            self.typed_use(scope, value, type_, pos)
        return Operation("toy.generic_call", [v for v, _ in operands], list(fn_type.results), attrs, loc)

    def custom_print(self, scope, loc):
        value, pos = self._typed_operand(scope)
        attrs = self.parse_attr_dict()
        self.expect(":")
        self.typed_use(scope, value, self.parse_type(), pos)
        return Operation("toy.print", [value], [], attrs, loc)

    def custom_return(self, scope, loc):
        operands = []
        if self.at("%"):
            value, pos = self._typed_operand(scope)
            self.expect(":")
            self.typed_use(scope, value, self.parse_type(), pos)
            operands.append(value)
        attrs = self.parse_attr_dict()
        return Operation("toy.return", operands, [], attrs, loc)

    def custom_cast(self, scope, loc):
        value, pos = self._typed_operand(scope)
        attrs = self.parse_attr_dict()
        self.expect(":")
        self.typed_use(scope, value, self.parse_type(), pos)
        if not self.keyword("to"):
            raise self.error(f"expected 'to' and the result type, found {self.found()}")
        return Operation("toy.cast", [value], [self.parse_type()], attrs, loc)

    def custom_struct_constant(self, scope, loc):
        self.skip()
        pos = self.pos
        value = self.parse_attribute()
        if not isinstance(value, ArrayAttr):
            raise self.error("toy.struct_constant expects an array [...] of constants", pos)
        attrs = {"value": value, **self.parse_attr_dict()}
        self.expect(":")
        return Operation("toy.struct_constant", [], [self.parse_type()], attrs, loc)

    def custom_struct_access(self, scope, loc):
        value, pos = self._typed_operand(scope)
        self.expect("[", "before the member index")
        index = self.match(_INT)
        if index is None:
            raise self.error(f"expected a member index, found {self.found()}")
        self.expect("]", "after the member index")
        attrs = {"index": IntegerAttr(int(index)), **self.parse_attr_dict()}
        self.expect(":")
        self.typed_use(scope, value, self.parse_type(), pos)
        self.expect("->")
        return Operation("toy.struct_access", [value], [self.parse_type()], attrs, loc)


_CUSTOM = {
    "toy.constant": lambda p, s, l: p.custom_constant(s, l),
    "toy.transpose": lambda p, s, l: p.custom_transpose_like("toy.transpose")(s, l),
    "toy.reshape": lambda p, s, l: p.custom_transpose_like("toy.reshape")(s, l),
    "toy.mul": lambda p, s, l: p.custom_binary("toy.mul")(s, l),
    "toy.add": lambda p, s, l: p.custom_binary("toy.add")(s, l),
    "toy.matmul": lambda p, s, l: p.custom_binary("toy.matmul")(s, l),
    "toy.generic_call": lambda p, s, l: p.custom_generic_call(s, l),
    "toy.print": lambda p, s, l: p.custom_print(s, l),
    "toy.return": lambda p, s, l: p.custom_return(s, l),
    "toy.cast": lambda p, s, l: p.custom_cast(s, l),
    "toy.struct_constant": lambda p, s, l: p.custom_struct_constant(s, l),
    "toy.struct_access": lambda p, s, l: p.custom_struct_access(s, l),
}


def parse_mlir(text: str, filename: str) -> Module:
    """Parse MLIR text into a Toy Module (not yet verified). Raises CompileError."""
    try:
        return MLIRParser(text, filename).parse_module()
    except CompileError as err:
        raise err.with_source(SourceFile(filename, text))
