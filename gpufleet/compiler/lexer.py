"""Lexer for the Toy language (MLIR Toy tutorial, Chapter 1; the `struct` keyword is Chapter 7).

Tokens: the keywords `def`, `var`, `return`, `struct`; identifiers `[a-zA-Z][a-zA-Z0-9_]*`; numbers
`[0-9.]+` (64-bit floats); `#` comments to the end of the line; any other single character is a token
of its own (`( ) { } [ ] < > , ; = + - * .`). Locations are 1-based line and column of the token's
first character, as toyc prints them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .diagnostics import CompileError, Location

KEYWORDS = {"def", "var", "return", "struct"}
EOF_KIND = "eof"


@dataclass(slots=True)
class Token:
    kind: str          # "def" "var" "return" "struct" "identifier" "number" "eof" or the character itself
    text: str
    location: Location
    value: float = 0.0

    def describe(self) -> str:
        if self.kind == EOF_KIND:
            return "end of file"
        if self.kind in ("identifier", "number") or self.kind in KEYWORDS:
            return f"{self.kind} '{self.text}'"
        return f"'{self.text}'"


_TOKEN = re.compile(r"(?P<space>[^\S\n]+)|(?P<newline>\n)|(?P<comment>#[^\n]*)"
                    r"|(?P<word>[A-Za-z][A-Za-z0-9_]*)|(?P<number>[0-9.]+)|(?P<other>.)", re.S)


def tokenize(text: str, filename: str) -> list[Token]:
    """Split `text` into tokens; the list always ends with one eof token."""
    tokens: list[Token] = []
    append = tokens.append
    line, line_start = 1, 0
    end = len(text)  # where the eof token is reported: a comment at the very end does not count
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind == "space":
            continue
        if kind == "comment":
            end = match.start()
            continue
        end = len(text)
        if kind == "newline":
            line, line_start = line + 1, match.end()
            continue
        start = match.start()
        word = match.group()
        loc = Location(filename, line, start - line_start + 1)
        if kind == "number":
            if word == ".":
                append(Token(".", ".", loc))
                continue
            try:
                value = float(word)
            except ValueError:
                raise CompileError(loc, f"invalid number literal '{word}'") from None
            append(Token("number", word, loc, value))
        elif kind == "word":
            append(Token(word if word in KEYWORDS else "identifier", word, loc))
        else:
            if not word.isprintable() or not word.isascii():
                raise CompileError(loc, f"unexpected character {word!r}")
            append(Token(word, word, loc))
    tokens.append(Token(EOF_KIND, "", Location(filename, line, end - line_start + 1)))
    return tokens
