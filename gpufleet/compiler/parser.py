"""Recursive-descent parser for the Toy language (MLIR Toy tutorial, Chapter 1: Parser.h; struct
declarations, struct-typed variables and parameters, struct literals and the `.` operator from Chapter 7).

Grammar (toyc's):
  module      ::= (definition | struct)*
  definition  ::= 'def' identifier '(' (param (',' param)*)? ')' block
  param       ::= identifier | identifier identifier            (struct-typed, Chapter 7)
  struct      ::= 'struct' identifier '{' ('var' identifier type? ';')* '}'
  block       ::= '{' (statement ';'+)* '}'   with ';'s allowed before statements
  statement   ::= 'var' identifier type? '=' expr | identifier identifier '=' expr | 'return' expr? | expr
  type        ::= '<' number (',' number)* '>'
  expr        ::= primary (binop primary)*   with precedences '-' '+': 20, '*': 40, '.': 60
  primary     ::= identifier | identifier '(' args ')' | number | '(' expr ')' | '[' ... ']' | '{' ... '}'
Errors are CompileError diagnostics ("Parse error: expected ... but has ...") at the offending token.
"""

from __future__ import annotations

from . import ast
from .diagnostics import CompileError, SourceFile
from .lexer import EOF_KIND, Token, tokenize

PRECEDENCE = {"-": 20, "+": 20, "*": 40, ".": 60}
MAX_NESTING = 200  # deeper expressions are reported instead of exhausting Python's stack


class Parser:
    def __init__(self, tokens: list[Token], allow_empty_module: bool = True):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.allow_empty_module = allow_empty_module
        self.warnings: list[CompileError] = []

    # -- token helpers -------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != EOF_KIND:
            self.pos += 1
        return tok

    def error(self, expected: str, context: str) -> CompileError:
        return CompileError(self.tok.location,
                            f"Parse error: expected '{expected}' {context} but has {self.tok.describe()}")

    def expect(self, kind: str, context: str) -> Token:
        if self.tok.kind != kind:
            raise self.error(kind, context)
        return self.advance()

    # -- module level ----------------------------------------------------------------------------
    def parse_module(self) -> ast.Module:
        records: list[ast.Function | ast.StructDecl] = []
        while self.tok.kind != EOF_KIND:
            if self.tok.kind == "struct":
                records.append(self.parse_struct())
            elif self.tok.kind == "def":
                records.append(self.parse_definition())
            else:
                raise self.error("def", "in prototype")
        if not records and not self.allow_empty_module:
            # toyc before Chapter 7 reports the empty module and goes on with an empty one.
            self.warnings.append(self.error("def", "in prototype"))
        return ast.Module(records)

    def parse_struct(self) -> ast.StructDecl:
        loc = self.advance().location
        name = self.expect("identifier", "in struct definition").text
        self.expect("{", "in struct definition")
        variables: list[ast.VarDeclExpr] = []
        while self.tok.kind != "}":
            if self.tok.kind != "var":
                raise self.error("var", "in struct definition")
            variables.append(self.parse_var_declaration(requires_init=False))
            if self.tok.kind != ";":
                raise self.error(";", "after variable in struct definition")
            while self.tok.kind == ";":
                self.advance()
        self.advance()
        if not variables:
            raise CompileError(loc, f"struct '{name}' has no members")
        return ast.StructDecl(loc, name, variables)

    def parse_definition(self) -> ast.Function:
        proto = self.parse_prototype()
        body = self.parse_block()
        return ast.Function(proto, body)

    def parse_prototype(self) -> ast.Prototype:
        loc = self.expect("def", "in prototype").location
        if self.tok.kind != "identifier":
            raise self.error("function name", "in prototype")
        name = self.advance().text
        self.expect("(", "in prototype")
        args: list[ast.VarDeclExpr] = []
        if self.tok.kind != ")":
            while True:
                if self.tok.kind != "identifier":
                    raise self.error("identifier", "in function parameter list")
                first = self.advance()
                if self.tok.kind == "identifier":  # `Struct value`
                    second = self.advance()
                    args.append(ast.VarDeclExpr(second.location, second.text, ast.VarType(name=first.text), None))
                else:
                    args.append(ast.VarDeclExpr(first.location, first.text, ast.VarType(), None))
                if self.tok.kind != ",":
                    break
                self.advance()
        if self.tok.kind != ")":
            raise self.error(")", "to end function prototype")
        self.advance()
        return ast.Prototype(loc, name, args)

    def parse_block(self) -> list[ast.Expr]:
        self.expect("{", "to begin block")
        body: list[ast.Expr] = []
        while self.tok.kind == ";":
            self.advance()
        while self.tok.kind not in ("}", EOF_KIND):
            if self.tok.kind == "var":
                body.append(self.parse_var_declaration(requires_init=True))
            elif self.tok.kind == "return":
                body.append(self.parse_return())
            elif self.tok.kind == "identifier" and self.peek().kind == "identifier":
                body.append(self.parse_typed_declaration())
            else:
                body.append(self.parse_expression())
            if self.tok.kind != ";":
                raise self.error(";", "after expression")
            while self.tok.kind == ";":
                self.advance()
        if self.tok.kind != "}":
            raise self.error("}", "to close block")
        self.advance()
        return body

    def parse_return(self) -> ast.ReturnExpr:
        loc = self.advance().location
        expr = None
        if self.tok.kind != ";":
            expr = self.parse_expression()
        return ast.ReturnExpr(loc, expr)

    def parse_type(self) -> ast.VarType:
        self.expect("<", "to begin type")
        shape: list[int] = []
        while self.tok.kind == "number":
            tok = self.advance()
            if tok.value != int(tok.value):
                raise CompileError(tok.location, f"dimension '{tok.text}' is not a whole number")
            shape.append(int(tok.value))
            if self.tok.kind == ",":
                self.advance()
        if self.tok.kind != ">":
            raise self.error(">", "to end type")
        self.advance()
        return ast.VarType(shape=shape)

    def parse_var_declaration(self, requires_init: bool) -> ast.VarDeclExpr:
        loc = self.advance().location  # 'var'
        if self.tok.kind != "identifier":
            raise self.error("identifier", "after 'var' declaration")
        name = self.advance().text
        var_type = self.parse_type() if self.tok.kind == "<" else ast.VarType()
        init = None
        if requires_init:
            self.expect("=", "in variable declaration")
            init = self.parse_expression()
        return ast.VarDeclExpr(loc, name, var_type, init)

    def parse_typed_declaration(self) -> ast.VarDeclExpr:
        type_tok = self.advance()
        name = self.advance().text
        self.expect("=", "in variable declaration")
        init = self.parse_expression()
        return ast.VarDeclExpr(type_tok.location, name, ast.VarType(name=type_tok.text), init)

    # -- expressions ---------------------------------------------------------------------------
    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise CompileError(self.tok.location, f"expression nested deeper than {MAX_NESTING} levels")

    def parse_expression(self) -> ast.Expr:
        self._enter()
        try:
            lhs = self.parse_primary()
            return self.parse_binop_rhs(0, lhs)
        finally:
            self.depth -= 1

    def parse_binop_rhs(self, min_prec: int, lhs: ast.Expr) -> ast.Expr:
        while True:
            prec = PRECEDENCE.get(self.tok.kind, -1)
            if prec < min_prec or prec < 0:
                return lhs
            op = self.advance().kind
            loc = self.tok.location  # toyc locates a binary op at the token after the operator
            rhs = self.parse_primary()
            next_prec = PRECEDENCE.get(self.tok.kind, -1)
            if prec < next_prec:
                self._enter()
                try:
                    rhs = self.parse_binop_rhs(prec + 1, rhs)
                finally:
                    self.depth -= 1
            lhs = ast.BinaryExpr(loc, op, lhs, rhs)

    def parse_primary(self) -> ast.Expr:
        kind = self.tok.kind
        if kind == "identifier":
            return self.parse_identifier_expr()
        if kind == "number":
            tok = self.advance()
            return ast.NumberExpr(tok.location, tok.value)
        if kind == "(":
            self.advance()
            expr = self.parse_expression()
            self.expect(")", "to close expression with parentheses")
            return expr
        if kind == "[":
            return self.parse_tensor_literal()
        if kind == "{":
            return self.parse_struct_literal()
        raise self.error("expression", "")

    def parse_identifier_expr(self) -> ast.Expr:
        tok = self.advance()
        if self.tok.kind != "(":
            return ast.VariableExpr(tok.location, tok.text)
        self.advance()
        args: list[ast.Expr] = []
        if self.tok.kind != ")":
            while True:
                args.append(self.parse_expression())
                if self.tok.kind == ")":
                    break
                if self.tok.kind != ",":
                    raise self.error(", or )", "in argument list")
                self.advance()
        self.advance()
        if tok.text == "print":
            if len(args) != 1:
                raise CompileError(tok.location, "Parse error: expected '<single arg>' as argument to print()")
            return ast.PrintExpr(tok.location, args[0])
        return ast.CallExpr(tok.location, tok.text, args)

    def parse_tensor_literal(self) -> ast.LiteralExpr:
        self._enter()
        try:
            loc = self.advance().location  # '['
            values: list[ast.Expr] = []
            while True:
                if self.tok.kind == "[":
                    values.append(self.parse_tensor_literal())
                elif self.tok.kind == "number":
                    tok = self.advance()
                    values.append(ast.NumberExpr(tok.location, tok.value))
                else:
                    raise self.error("<num> or [", "in literal expression")
                if self.tok.kind == "]":
                    break
                if self.tok.kind != ",":
                    raise self.error("] or ,", "in literal expression")
                self.advance()
            self.advance()
            dims = [len(values)]
            nested = [v for v in values if isinstance(v, ast.LiteralExpr)]
            if nested:
                if len(nested) != len(values) or any(v.dims != nested[0].dims for v in nested):
                    raise CompileError(loc, "Parse error: expected uniform well-nested dimensions "
                                            "inside literal expression")
                dims += nested[0].dims
            return ast.LiteralExpr(loc, values, dims)
        finally:
            self.depth -= 1

    def parse_struct_literal(self) -> ast.StructLiteralExpr:
        self._enter()
        try:
            loc = self.advance().location  # '{'
            values: list[ast.Expr] = []
            while True:
                if self.tok.kind == "[":
                    values.append(self.parse_tensor_literal())
                elif self.tok.kind == "number":
                    tok = self.advance()
                    values.append(ast.NumberExpr(tok.location, tok.value))
                elif self.tok.kind == "{":
                    values.append(self.parse_struct_literal())
                else:
                    raise self.error("{", "in struct literal expression")
                if self.tok.kind == "}":
                    break
                if self.tok.kind != ",":
                    raise self.error("} or ,", "in struct literal expression")
                self.advance()
            self.advance()
            return ast.StructLiteralExpr(loc, values)
        finally:
            self.depth -= 1


def parse_toy(text: str, filename: str, allow_empty_module: bool = True) -> tuple[ast.Module, list[CompileError]]:
    """Parse Toy source; returns the module and non-fatal diagnostics. Raises CompileError."""
    source = SourceFile(filename, text)
    try:
        parser = Parser(tokenize(text, filename), allow_empty_module)
        module = parser.parse_module()
    except CompileError as err:
        raise err.with_source(source)
    return module, [w.with_source(source) for w in parser.warnings]
