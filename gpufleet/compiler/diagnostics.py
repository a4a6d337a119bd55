"""Source locations and compiler diagnostics (the tutorial's Ch1 `Location`, and MLIR's
`file:line:col: error: message` diagnostics with the source line and a caret under the column).

Every user-facing failure of the compiler is a :class:`CompileError` carrying a location, so the
command line never shows a Python traceback for bad input.
"""

from __future__ import annotations

from typing import NamedTuple

from gpufleet.errors import GpufleetError


class Location(NamedTuple):
    """A position in a source file: 1-based line and column, as toyc reports them. (A NamedTuple: one
    is made per token, and a frozen dataclass costs several times more to build.)"""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class SourceFile:
    """The text of one input file, kept to quote the offending line in diagnostics."""

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self.lines = text.split("\n")

    def line_text(self, line: int) -> str | None:
        if 1 <= line <= len(self.lines):
            return self.lines[line - 1].rstrip("\r")
        return None


class CompileError(GpufleetError):
    """A diagnostic: `file:line:col: error: message`, then the source line and a caret."""

    def __init__(self, location: Location | None, message: str, source: SourceFile | None = None,
                 notes: list[tuple[Location | None, str]] | None = None):
        self.location = location
        self.message = message
        self.source = source
        self.notes = notes or []
        super().__init__(self.render())

    def render(self) -> str:
        parts = [_render_one(self.location, "error", self.message, self.source)]
        for loc, note in self.notes:
            parts.append(_render_one(loc, "note", note, self.source))
        return "\n".join(parts)

    def with_source(self, source: SourceFile) -> "CompileError":
        if self.source is None:
            self.source = source
            self.args = (self.render(),)
        return self

    def __str__(self) -> str:
        return self.render()


def _render_one(location: Location | None, severity: str, message: str, source: SourceFile | None) -> str:
    if location is None:
        return f"{severity}: {message}"
    text = f"{location}: {severity}: {message}"
    if source is not None and source.name == location.file:
        line = source.line_text(location.line)
        if line is not None:
            line = line.replace("\t", " ")
            caret = " " * max(location.col - 1, 0) + "^"
            text += f"\n{line}\n{caret}"
    return text
