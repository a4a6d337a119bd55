"""Print Toy IR in MLIR's textual form with the toy dialect's custom assembly syntax (MLIR Toy
tutorial, Chapter 2 "Emitting Basic MLIR": the assembly formats of Ops.td and the hand-written
printers of Dialect.cpp; toy.cast from Chapter 4; struct ops from Chapter 7).

  %0 = toy.constant dense<[[1.0e+00, ...]]> : tensor<2x3xf64>
  %1 = toy.transpose(%0 : tensor<2x3xf64>) to tensor<3x2xf64>
  %2 = toy.reshape(%0 : tensor<2x3xf64>) to tensor<6xf64>
  %3 = toy.mul %1, %1 : tensor<3x2xf64>            (a functional type when operand types differ)
  %8 = toy.matmul %0, %1 : (tensor<2x3xf64>, tensor<3x2xf64>) -> tensor<2x2xf64>   (ours)
  %4 = toy.generic_call @f(%1, %2) : (tensor<...>, tensor<...>) -> tensor<*xf64>
  %5 = toy.cast %1 : tensor<3x2xf64> to tensor<*xf64>
  %6 = toy.struct_constant [dense<...> : tensor<..>, ...] : !toy.struct<...>
  %7 = toy.struct_access %6[0] : !toy.struct<...> -> tensor<*xf64>
  toy.print %3 : tensor<3x2xf64>
  toy.return %3 : tensor<3x2xf64>
Values are numbered per function as MLIR does: %argN for arguments, %N for results.
"""

from __future__ import annotations

from .ir import FuncOp, FunctionType, Module, Operation


class _Names:
    def __init__(self, func: FuncOp):
        self.names: dict[int, str] = {a.id: f"%arg{i}" for i, a in enumerate(func.args)}
        self.next = 0

    def define(self, op: Operation) -> str:
        if not op.results:
            return ""
        name = f"%{self.next}"
        self.next += 1
        for r in op.results:
            self.names[r.id] = name
        return name

    def __call__(self, value) -> str:
        return self.names.get(value.id, "%<<UNKNOWN SSA VALUE>>")


def _attr_dict(attrs: dict, elided: tuple = ()) -> str:
    items = [(k, v) for k, v in attrs.items() if k not in elided]
    if not items:
        return ""
    return " {" + ", ".join(f"{k} = {v}" for k, v in items) + "}"


def print_op(op: Operation, names: _Names) -> str:
    result = names.define(op)
    prefix = f"{result} = " if result else ""
    ops = [names(o) for o in op.operands]
    name = op.name
    if name == "toy.constant":
        body = f"toy.constant{_attr_dict(op.attributes, ('value',))} {op.attributes['value']}"
    elif name in ("toy.transpose", "toy.reshape"):
        body = (f"{name}({ops[0]} : {op.operands[0].type}){_attr_dict(op.attributes)} "
                f"to {op.result.type}")
    elif name in ("toy.mul", "toy.add", "toy.matmul"):
        types = [o.type for o in op.operands]
        if all(t == op.result.type for t in types):
            type_text = str(op.result.type)
        else:
            type_text = str(FunctionType(tuple(types), (op.result.type,)))
        body = f"{name} {', '.join(ops)}{_attr_dict(op.attributes)} : {type_text}"
    elif name == "toy.generic_call":
        fn_type = FunctionType(tuple(o.type for o in op.operands), tuple(r.type for r in op.results))
        body = (f"toy.generic_call {op.attributes['callee']}({', '.join(ops)})"
                f"{_attr_dict(op.attributes, ('callee',))} : {fn_type}")
    elif name == "toy.print":
        body = f"toy.print {ops[0]}{_attr_dict(op.attributes)} : {op.operands[0].type}"
    elif name == "toy.return":
        body = "toy.return"
        if ops:
            body += f" {ops[0]}"
        body += _attr_dict(op.attributes)
        if ops:
            body += f" : {op.operands[0].type}"
    elif name == "toy.cast":
        body = f"toy.cast {ops[0]}{_attr_dict(op.attributes)} : {op.operands[0].type} to {op.result.type}"
    elif name == "toy.struct_constant":
        body = (f"toy.struct_constant {op.attributes['value']}{_attr_dict(op.attributes, ('value',))} "
                f": {op.result.type}")
    elif name == "toy.struct_access":
        body = (f"toy.struct_access {ops[0]}[{op.attributes['index'].value}]"
                f"{_attr_dict(op.attributes, ('index',))} : {op.operands[0].type} -> {op.result.type}")
    else:  # generic form
        fn_type = FunctionType(tuple(o.type for o in op.operands), tuple(r.type for r in op.results))
        body = f'"{name}"({", ".join(ops)}){_attr_dict(op.attributes)} : {fn_type}'
    return prefix + body


def print_function(func: FuncOp, indent: str = "  ") -> str:
    names = _Names(func)
    args = ", ".join(f"%arg{i}: {a.type}" for i, a in enumerate(func.args))
    head = f"{indent}toy.func {'private ' if func.private else ''}@{func.name}({args})"
    if func.result_types:
        results = func.result_types
        head += " -> " + (str(results[0]) if len(results) == 1 else "(" + ", ".join(map(str, results)) + ")")
    lines = [head + " {"]
    for op in func.ops:
        lines.append(indent + "  " + print_op(op, names))
    lines.append(indent + "}")
    return "\n".join(lines)


def print_module(module: Module) -> str:
    lines = ["module {"]
    for func in module.functions:
        lines.append(print_function(func))
    lines.append("}")
    return "\n".join(lines) + "\n"
