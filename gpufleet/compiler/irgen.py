"""Lower the Toy AST to Toy IR (MLIR Toy tutorial, Chapter 2 "Emitting Basic MLIR": MLIRGen.cpp;
struct-typed variables, parameters, literals and `.` accesses from Chapter 7; functions other than
`main` are private from Chapter 4 on so the inliner may drop them).

Rules, as toyc's MLIRGen:
  * every parameter is `tensor<*xf64>` (or the declared struct type); a function returns
    `tensor<*xf64>` when its body returns a value (Chapter 7: the returned value's type);
  * a literal becomes `toy.constant dense<...> : tensor<AxBxf64>`, a number a rank-0 constant;
  * `var x<2, 3> = e` reshapes e with `toy.reshape`; `a * b`, `a + b` are toy.mul / toy.add;
  * `transpose(x)` is toy.transpose, any other call toy.generic_call, `print(x)` toy.print;
  * beyond the tutorial: `matmul(a, b)` is toy.matmul (unless the program defines its own `matmul`);
  * a body that does not end in `return` gets an empty `toy.return`.
"""

from __future__ import annotations

from . import ast
from .diagnostics import CompileError
from .ir import (UNRANKED, ArrayAttr, DenseAttr, FuncOp, IntegerAttr, Module, Operation, StructType,
                 SymbolRefAttr, TensorType, Value)


class IRGen:
    def __init__(self, module_ast: ast.Module, chapter: int = 7):
        self.module_ast = module_ast
        self.chapter = chapter
        self.structs: dict[str, tuple[ast.StructDecl, StructType]] = {}
        self.module = Module(location=None)
        self.defined_functions = {f.proto.name for f in module_ast.functions}

    # -- types ---------------------------------------------------------------------------------
    def type_of(self, var_type: ast.VarType, location) -> object:
        if var_type.name:
            if var_type.name not in self.structs:
                raise CompileError(location, f"unknown struct type '{var_type.name}'")
            return self.structs[var_type.name][1]
        if var_type.shape:
            return TensorType(tuple(var_type.shape))
        return UNRANKED

    def declare_struct(self, decl: ast.StructDecl) -> None:
        if decl.name in self.structs:
            raise CompileError(decl.location, f"redefinition of struct '{decl.name}'")
        members = []
        for var in decl.variables:
            if var.type.shape:
                raise CompileError(var.location, "variables within a struct definition must not have a shape")
            members.append(self.type_of(var.type, var.location))
        self.structs[decl.name] = (decl, StructType(tuple(members)))

    # -- module / function -----------------------------------------------------------------------
    def generate(self) -> Module:
        for record in self.module_ast.records:
            if isinstance(record, ast.StructDecl):
                self.declare_struct(record)
            else:
                self.module.functions.append(self.function(record))
        return self.module

    def function(self, node: ast.Function) -> FuncOp:
        proto = node.proto
        arg_types = [self.type_of(a.type, a.location) for a in proto.args]
        func = FuncOp(proto.name, arg_types, [], proto.location,
                      private=self.chapter >= 4 and proto.name != "main")
        self.func = func
        self.scope: dict[str, Value] = {}
        for arg, value in zip(proto.args, func.args):
            if arg.name in self.scope:
                raise CompileError(arg.location, f"parameter '{arg.name}' declared twice")
            self.scope[arg.name] = value
        for expr in node.body:
            self.statement(expr)
        last = func.ops[-1] if func.ops else None
        if last is None or last.name != "toy.return":
            self.emit("toy.return", [], [], proto.location)
        elif last.operands:
            returned = last.operands[0].type
            keep = self.chapter >= 7 or isinstance(returned, StructType)
            func.result_types = [returned if keep else UNRANKED]
        return func

    def emit(self, name, operands, result_types, location, **attributes) -> Operation:
        op = Operation(name, operands, result_types, attributes, location)
        self.func.ops.append(op)
        return op

    # -- statements and expressions --------------------------------------------------------------
    def statement(self, expr: ast.Expr) -> None:
        if isinstance(expr, ast.VarDeclExpr):
            self.var_decl(expr)
        elif isinstance(expr, ast.ReturnExpr):
            operands = [self.expr(expr.expr)] if expr.expr is not None else []
            self.emit("toy.return", operands, [], expr.location)
        elif isinstance(expr, ast.PrintExpr):
            self.emit("toy.print", [self.expr(expr.arg)], [], expr.location)
        else:
            self.expr(expr)

    def var_decl(self, decl: ast.VarDeclExpr) -> None:
        if decl.init is None:
            raise CompileError(decl.location, f"missing initializer in variable declaration '{decl.name}'")
        value = self.expr(decl.init)
        if decl.type.name:
            declared = self.type_of(decl.type, decl.location)
            if value.type != declared:
                raise CompileError(decl.location, f"struct type of initializer is different than the "
                                                  f"variable declaration. Got {value.type}, but expected "
                                                  f"{declared}")
        elif decl.type.shape:
            if isinstance(value.type, StructType):
                raise CompileError(decl.location, f"cannot reshape the struct value of '{decl.name}'")
            value = self.emit("toy.reshape", [value], [TensorType(tuple(decl.type.shape))],
                              decl.location).result
        if decl.name in self.scope:
            raise CompileError(decl.location, f"variable '{decl.name}' is already declared")
        self.scope[decl.name] = value

    def expr(self, node: ast.Expr) -> Value:
        if isinstance(node, ast.NumberExpr):
            attr = DenseAttr(TensorType(()), (node.value,))
            return self.emit("toy.constant", [], [attr.type], node.location, value=attr).result
        if isinstance(node, ast.LiteralExpr):
            attr = literal_attr(node)
            return self.emit("toy.constant", [], [attr.type], node.location, value=attr).result
        if isinstance(node, ast.StructLiteralExpr):
            attr, type_ = struct_literal_attr(node)
            return self.emit("toy.struct_constant", [], [type_], node.location, value=attr).result
        if isinstance(node, ast.VariableExpr):
            if node.name not in self.scope:
                raise CompileError(node.location, f"unknown variable '{node.name}'")
            return self.scope[node.name]
        if isinstance(node, ast.BinaryExpr):
            if node.op == ".":
                return self.member_access(node)
            lhs = self.expr(node.lhs)
            rhs = self.expr(node.rhs)
            ops = {"+": "toy.add", "*": "toy.mul"}
            if node.op not in ops:
                raise CompileError(node.location, f"invalid binary operator '{node.op}'")
            for side in (lhs, rhs):
                if isinstance(side.type, StructType):
                    raise CompileError(node.location, f"operator '{node.op}' expects tensors, not a struct")
            return self.emit(ops[node.op], [lhs, rhs], [UNRANKED], node.location).result
        if isinstance(node, ast.CallExpr):
            return self.call(node)
        if isinstance(node, ast.PrintExpr):
            raise CompileError(node.location, "print() does not return a value")
        if isinstance(node, (ast.VarDeclExpr, ast.ReturnExpr)):
            raise CompileError(node.location, "a declaration or return is not an expression")
        raise CompileError(node.location, f"unexpected expression {type(node).__name__}")  # pragma: no cover

    def member_access(self, node: ast.BinaryExpr) -> Value:
        value = self.expr(node.lhs)
        if not isinstance(value.type, StructType):
            raise CompileError(node.location, "invalid access into a value that is not a struct")
        if not isinstance(node.rhs, ast.VariableExpr):
            raise CompileError(node.location, "invalid member access: expected a member name after '.'")
        decl = next((d for d, t in self.structs.values() if t == value.type), None)
        names = [v.name for v in decl.variables] if decl else []
        if node.rhs.name not in names:
            raise CompileError(node.rhs.location, f"invalid member access: no member '{node.rhs.name}'")
        index = names.index(node.rhs.name)
        return self.emit("toy.struct_access", [value], [value.type.elements[index]], node.location,
                         index=IntegerAttr(index)).result

    def call(self, node: ast.CallExpr) -> Value:
        args = [self.expr(a) for a in node.args]
        if node.callee == "transpose":
            if len(args) != 1:
                raise CompileError(node.location, "toy.transpose expects exactly one argument")
            if isinstance(args[0].type, StructType):
                raise CompileError(node.location, "transpose expects a tensor, not a struct")
            return self.emit("toy.transpose", args, [UNRANKED], node.location).result
        if node.callee == "matmul" and node.callee not in self.defined_functions:
            if len(args) != 2:
                raise CompileError(node.location, "matmul expects exactly two arguments")
            if any(isinstance(a.type, StructType) for a in args):
                raise CompileError(node.location, "matmul expects tensors, not a struct")
            return self.emit("toy.matmul", args, [UNRANKED], node.location).result
        if node.callee not in self.defined_functions:
            raise CompileError(node.location, f"no defined function found for '{node.callee}'")
        callee = self.module.lookup(node.callee)
        result_type = UNRANKED
        if callee is not None:
            if not callee.result_types:
                raise CompileError(node.location, f"function '{node.callee}' does not return a value")
            result_type = callee.result_types[0]
        return self.emit("toy.generic_call", args, [result_type], node.location,
                         callee=SymbolRefAttr(node.callee)).result


def literal_attr(node: ast.LiteralExpr) -> DenseAttr:
    values: list[float] = []

    def collect(n: ast.Expr) -> None:
        if isinstance(n, ast.NumberExpr):
            values.append(n.value)
        else:
            for v in n.values:
                collect(v)

    collect(node)
    return DenseAttr(TensorType(tuple(node.dims)), tuple(values))


def struct_literal_attr(node: ast.StructLiteralExpr) -> tuple[ArrayAttr, StructType]:
    attrs, types = [], []
    for v in node.values:
        if isinstance(v, ast.NumberExpr):
            attrs.append(DenseAttr(TensorType(()), (v.value,)))
            types.append(UNRANKED)
        elif isinstance(v, ast.LiteralExpr):
            attrs.append(literal_attr(v))
            types.append(UNRANKED)
        else:
            attr, type_ = struct_literal_attr(v)
            attrs.append(attr)
            types.append(type_)
    return ArrayAttr(tuple(attrs)), StructType(tuple(types))


def generate(module_ast: ast.Module, chapter: int = 7) -> Module:
    return IRGen(module_ast, chapter).generate()
