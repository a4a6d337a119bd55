"""Errors every room raises for bad input. A SpecError names the file, line and field."""

from __future__ import annotations


from ..errors import GpufleetError  # the shared base; it imports nothing

__all__ = ["GpufleetError", "SpecError", "AssignError"]


class SpecError(GpufleetError):
    """A spec, trace or config that does not say what it must.

    The message reads ``FILE:LINE: FIELD: what is wrong (expected ...)``; parts that are unknown are left
    out.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class AssignError(GpufleetError):
    """An assignment that would break a ClusterState invariant (over-commit, unknown GPU, ...)."""
