"""The one base error every room shares; importing it loads nothing else (the toyc CLI starts fast).

A GpufleetError is a user error: the CLI prints it as one line on stderr and exits 2.
"""


class GpufleetError(Exception):
    """Base class for errors the CLI reports as one clear line (exit code 2)."""
