"""The Toy abstract syntax tree and toyc's `-emit=ast` dump (MLIR Toy tutorial, Chapter 1: AST.h and
AST.cpp; struct declarations and struct literals from Chapter 7).

The dump reproduces toyc's format exactly: two spaces of indentation per level, numbers in C's `%e`
form, locations as `@file:line:col`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .diagnostics import Location


@dataclass
class VarType:
    """A declared type: a shape `<2, 3>` (empty when not given) or a struct name (Chapter 7)."""

    shape: list[int] = field(default_factory=list)
    name: str = ""


@dataclass
class Expr:
    location: Location


@dataclass
class NumberExpr(Expr):
    value: float


@dataclass
class LiteralExpr(Expr):
    values: list[Expr]          # NumberExpr or LiteralExpr
    dims: list[int]


@dataclass
class StructLiteralExpr(Expr):
    values: list[Expr]          # LiteralExpr, NumberExpr or StructLiteralExpr


@dataclass
class VariableExpr(Expr):
    name: str


@dataclass
class VarDeclExpr(Expr):
    name: str
    type: VarType
    init: Expr | None


@dataclass
class ReturnExpr(Expr):
    expr: Expr | None


@dataclass
class BinaryExpr(Expr):
    op: str
    lhs: Expr
    rhs: Expr


@dataclass
class CallExpr(Expr):
    callee: str
    args: list[Expr]


@dataclass
class PrintExpr(Expr):
    arg: Expr


@dataclass
class Prototype:
    location: Location
    name: str
    args: list[VarDeclExpr]     # a parameter is a declaration without initializer (its type may name a struct)


@dataclass
class Function:
    proto: Prototype
    body: list[Expr]


@dataclass
class StructDecl:
    location: Location
    name: str
    variables: list[VarDeclExpr]


@dataclass
class Module:
    records: list[Function | StructDecl]

    @property
    def functions(self) -> list[Function]:
        return [r for r in self.records if isinstance(r, Function)]

    @property
    def structs(self) -> list[StructDecl]:
        return [r for r in self.records if isinstance(r, StructDecl)]


def format_number(value: float) -> str:
    """toyc prints doubles through llvm::raw_ostream, i.e. C's `%e`."""
    return "%e" % value


def _loc(node) -> str:
    loc = node.location
    return f"@{loc.file}:{loc.line}:{loc.col}"


class _Dumper:
    def __init__(self):
        self.out: list[str] = []
        self.level = 0

    def indent(self) -> str:
        return "  " * self.level

    def line(self, text: str) -> None:
        self.out.append(self.indent() + text + "\n")

    # Each dump method enters one indentation level, like toyc's INDENT() macro.
    def module(self, module: Module) -> None:
        self.level += 1
        self.line("Module:")
        for record in module.records:
            if isinstance(record, Function):
                self.function(record)
            else:
                self.struct(record)
        self.level -= 1

    def struct(self, node: StructDecl) -> None:
        self.level += 1
        self.line(f"Struct: {node.name} {_loc(node)}")
        self.level += 1
        self.line("Variables: [")
        for var in node.variables:
            self.expr(var)
        self.line("]")
        self.level -= 2

    def function(self, node: Function) -> None:
        self.level += 1
        self.line("Function ")
        self.level += 1
        self.line(f"Proto '{node.proto.name}' {_loc(node.proto)}")
        self.line("Params: [" + ", ".join(a.name for a in node.proto.args) + "]")
        self.level -= 1
        self.block(node.body)
        self.level -= 1

    def block(self, body: list[Expr]) -> None:
        self.level += 1
        self.line("Block {")
        for expr in body:
            self.expr(expr)
        self.line("} // Block")
        self.level -= 1

    def expr(self, node: Expr) -> None:
        self.level += 1
        try:
            self._expr(node)
        finally:
            self.level -= 1

    def _expr(self, node: Expr) -> None:
        if isinstance(node, VarDeclExpr):
            self.line(f"VarDecl {node.name}{_type(node.type)} {_loc(node)}")
            if node.init is not None:
                self.expr(node.init)
        elif isinstance(node, NumberExpr):
            self.line(f"{format_number(node.value)} {_loc(node)}")
        elif isinstance(node, LiteralExpr):
            self.line(f"Literal: {_literal(node)} {_loc(node)}")
        elif isinstance(node, StructLiteralExpr):
            # toyc prints the members right after the header (each with its own indentation),
            # then the struct literal's location on a line of its own.
            self.out.append(self.indent() + "Struct Literal: ")
            for value in node.values:
                self.expr(value)
            self.out.append(self.indent() + f" {_loc(node)}\n")
        elif isinstance(node, VariableExpr):
            self.line(f"var: {node.name} {_loc(node)}")
        elif isinstance(node, ReturnExpr):
            self.line("Return")
            if node.expr is not None:
                self.expr(node.expr)
            else:
                self.level += 1
                self.line("(void)")
                self.level -= 1
        elif isinstance(node, BinaryExpr):
            self.line(f"BinOp: {node.op} {_loc(node)}")
            self.expr(node.lhs)
            self.expr(node.rhs)
        elif isinstance(node, CallExpr):
            self.line(f"Call '{node.callee}' [ {_loc(node)}")
            for arg in node.args:
                self.expr(arg)
            self.line("]")
        elif isinstance(node, PrintExpr):
            self.line(f"Print [ {_loc(node)}")
            self.expr(node.arg)
            self.line("]")
        else:  # pragma: no cover - every node kind is handled above
            self.line(f"<unknown Expr, kind {type(node).__name__}>")


def _type(var_type: VarType) -> str:
    if var_type.name:
        return f"<{var_type.name}>"
    return "<" + ", ".join(str(d) for d in var_type.shape) + ">"


def _literal(node: Expr) -> str:
    if isinstance(node, NumberExpr):
        return format_number(node.value)
    assert isinstance(node, LiteralExpr)
    dims = ", ".join(str(d) for d in node.dims)
    return f"<{dims}>[ " + ", ".join(_literal(v) for v in node.values) + "]"


def dump(module: Module) -> str:
    """The text of toyc's `-emit=ast` for `module`."""
    dumper = _Dumper()
    dumper.module(module)
    return "".join(dumper.out)
