"""Lexer for the Toy language (MLIR Toy tutorial, Chapter 1; the `struct` keyword is Chapter 7).

Tokens: the keywords `def`, `var`, `return`, `struct`; identifiers `[a-zA-Z][a-zA-Z0-9_]*`; numbers
`[0-9.]+` (64-bit floats); `#` comments to the end of the line; any other single character is a token
of its own (`( ) { } [ ] < > , ; = + - * .`). Locations are 1-based line and column of the token's
first character, as toyc prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .diagnostics import CompileError, Location

KEYWORDS = {"def", "var", "return", "struct"}
EOF_KIND = "eof"


@dataclass(frozen=True)
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


def tokenize(text: str, filename: str) -> list[Token]:
    """Split `text` into tokens; the list always ends with one eof token."""
    tokens: list[Token] = []
    line, col, i, n = 1, 1, 0, len(text)
    while True:
        # Skip whitespace and comments.
        while i < n:
            ch = text[i]
            if ch == "\n":
                line, col, i = line + 1, 1, i + 1
            elif ch.isspace():
                col, i = col + 1, i + 1
            elif ch == "#":
                while i < n and text[i] != "\n":
                    i += 1
            else:
                break
        loc = Location(filename, line, col)
        if i >= n:
            tokens.append(Token(EOF_KIND, "", loc))
            return tokens
        ch = text[i]
        start = i
        if ch.isascii() and ch.isalpha():
            while i < n and text[i].isascii() and (text[i].isalnum() or text[i] == "_"):
                i += 1
            word = text[start:i]
            tokens.append(Token(word if word in KEYWORDS else "identifier", word, loc))
        elif ch.isascii() and (ch.isdigit() or ch == "."):
            while i < n and text[i].isascii() and (text[i].isdigit() or text[i] == "."):
                i += 1
            word = text[start:i]
            if word == ".":
                tokens.append(Token(".", ".", loc))
            else:
                try:
                    value = float(word)
                except ValueError:
                    raise CompileError(loc, f"invalid number literal '{word}'") from None
                tokens.append(Token("number", word, loc, value))
        else:
            i += 1
            if not ch.isprintable() or not ch.isascii():
                raise CompileError(loc, f"unexpected character {ch!r}")
            tokens.append(Token(ch, ch, loc))
        col += i - start
