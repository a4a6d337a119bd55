"""Kubernetes resource quantities ("500m", "4", "16Gi", "1.5G") converted to gpufleet's integer units.

Rule: k8s.io/apimachinery/pkg/api/resource (Quantity): decimal SI suffixes (k, M, G, T, P, E),
binary suffixes (Ki, Mi, Gi, Ti, Pi, Ei), the milli suffix m, and plain or exponent numbers.
CPU is kept in millicores and memory in MiB.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_SUFFIX = {
    "": Fraction(1), "m": Fraction(1, 1000),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(2**10), "Mi": Fraction(2**20), "Gi": Fraction(2**30), "Ti": Fraction(2**40),
    "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}
_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def parse_quantity(value: object) -> Fraction:
    """Return the quantity as an exact Fraction of base units; ValueError names what was expected."""
    if isinstance(value, bool):
        raise ValueError(f"expected a quantity such as 4, 500m or 16Gi, got {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite quantity, got {value!r}")
        return Fraction(value).limit_denominator(10**9)
    if isinstance(value, str):
        match = _RE.match(value.strip())
        if match:
            number, suffix = match.group(1), match.group(2) or ""
            return Fraction(number) * _SUFFIX[suffix]
    raise ValueError(f"expected a quantity such as 4, 500m or 16Gi, got {value!r}")


def cpu_to_milli(value: object) -> int:
    """CPU quantity to millicores, rounded up as the API server does for requests."""
    return math.ceil(parse_quantity(value) * 1000)


def memory_to_mib(value: object) -> int:
    """Memory quantity (bytes unless suffixed) to MiB, rounded up."""
    return math.ceil(parse_quantity(value) / 2**20)


def count(value: object) -> int:
    """A whole-number quantity (pods, GPUs, extended resources)."""
    q = parse_quantity(value)
    if q.denominator != 1:
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(q)
