"""`python -m gpufleet.compiler FILE [-emit=...] [-opt] [-x toy|mlir] [--chapter N]`: toyc on its own."""

from __future__ import annotations

import argparse
import sys

from gpufleet.errors import GpufleetError

from .cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toyc", description="The Toy tensor language compiler.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except GpufleetError as exc:
        print(f"toyc: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
