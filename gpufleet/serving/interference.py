"""The GPULet interference model: how much slower a model runs next to another one on the same GPU.

Choi et al., USENIX ATC'22, Sec. 4.4: the slowdown of model 1 co-located (in another MPS partition of the
same GPU) with model 2 is a linear function of both models' L2-cache and DRAM utilisation::

    factor = c1 * l2_m1 + c2 * l2_m2 + c3 * dram_m1 + c4 * dram_m2 + c5
    latency_colocated = latency_solo * factor

fitted by least squares on co-location measurements (90% of the paper's predictions within 12.35%).
Utilisations are fractions (0..1) measured for ``(model, batch)`` on a whole GPU and scaled by the
partition fraction, as glet's planner does; a table measured per partition (``from_partition_table``)
is used as is. The default coefficients are the paper's RTX 2080 Ti constants
(casys-kaist/glet ``INT_MODEL_CONSTANT.CSV``). A model with no utilisation entry gets factor 1.
The factor is never below 1 (co-location does not make a model faster).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import ProfileError

# RTX 2080 Ti constants from the paper's public code (l2_m1, l2_m2, dram_m1, dram_m2, constant).
PAPER_COEFFICIENTS_2080TI = (0.11290838746224496, 0.7159598718755424, 0.35486591956022895,
                             0.0882038259888065, 0.8953693917277343)


@dataclass(frozen=True)
class ColocationSample:
    """One measurement: model 1's latency next to model 2, over its solo latency, with both features."""

    l2_m1: float
    l2_m2: float
    dram_m1: float
    dram_m2: float
    slowdown: float  # colocated latency / solo latency


@dataclass
class InterferenceModel:
    """``factor(m1, b1, p1, m2, b2, p2)``; ``utilisation[(model, batch)] = (l2, dram)`` as fractions."""

    coefficients: tuple[float, float, float, float, float] = PAPER_COEFFICIENTS_2080TI
    utilisation: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    per_partition: dict[tuple[str, int, int], tuple[float, float]] = field(default_factory=dict)

    def features(self, model: str, batch: int, partition_pct: float) -> tuple[float, float] | None:
        key = (model, int(batch), int(partition_pct))
        if key in self.per_partition:
            return self.per_partition[key]
        batches = sorted(b for (m, b) in self.utilisation if m == model)
        if not batches:
            return None
        # Nearest profiled batch at or above (utilisation grows with batch), else the largest.
        b = next((x for x in batches if x >= batch), batches[-1])
        l2, dram = self.utilisation[(model, b)]
        scale = partition_pct / 100.0
        return l2 * scale, dram * scale

    def factor(self, model: str, batch: int, partition_pct: float,
               other: str, other_batch: int, other_partition_pct: float) -> float:
        """Slowdown of ``model`` (>= 1) when ``other`` runs in another partition of the same GPU."""
        mine = self.features(model, batch, partition_pct)
        theirs = self.features(other, other_batch, other_partition_pct)
        if mine is None or theirs is None:
            return 1.0
        c1, c2, c3, c4, c5 = self.coefficients
        value = c1 * mine[0] + c2 * theirs[0] + c3 * mine[1] + c4 * theirs[1] + c5
        return max(1.0, float(value))

    @staticmethod
    def fit(samples: Sequence[ColocationSample]) -> tuple[float, float, float, float, float]:
        """Least-squares coefficients (c1..c5) from co-location samples (numpy ``lstsq``)."""
        if len(samples) < 5:
            raise ProfileError(f"need at least 5 co-location samples to fit 5 coefficients, got {len(samples)}")
        x = np.array([[s.l2_m1, s.l2_m2, s.dram_m1, s.dram_m2, 1.0] for s in samples])
        y = np.array([s.slowdown for s in samples])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        return tuple(float(c) for c in coef)  # type: ignore[return-value]

    def prediction_errors(self, samples: Iterable[ColocationSample]) -> np.ndarray:
        """Relative errors |predicted - measured| / measured of the slowdown (unclamped prediction)."""
        c = np.array(self.coefficients)
        x = np.array([[s.l2_m1, s.l2_m2, s.dram_m1, s.dram_m2, 1.0] for s in samples])
        y = np.array([s.slowdown for s in samples])
        return np.abs(x @ c - y) / y


def load_utilisation(path: str | Path, names: dict[str, str] | None = None) -> dict[tuple[str, int], tuple[float, float]]:
    """``(model, batch) -> (l2, dram)`` fractions from a glet-style UTIL.CSV
    (``bench,batch,avg_duration(ms),SM_util(%),l2_util(%),mem_util(%),...``); ``names`` renames models."""
    names = names or {}
    out: dict[tuple[str, int], tuple[float, float]] = {}
    try:
        handle = Path(path).open(newline="")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read utilisation table: {exc.strerror}") from None
    with handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                model = names.get(row["bench"], row["bench"])
                out[(model, int(row["batch"]))] = (float(row["l2_util(%)"]) / 100, float(row["mem_util(%)"]) / 100)
            except (KeyError, TypeError, ValueError):
                raise ProfileError(f"{path}:{line}: expected bench,batch,...,l2_util(%),mem_util(%)") from None
    return out


def load_coefficients(path: str | Path) -> tuple[float, float, float, float, float]:
    """The five constants of a glet-style INT_MODEL_CONSTANT.CSV (header, then one row)."""
    try:
        rows = list(csv.reader(Path(path).open()))
        values = tuple(float(v) for v in rows[1][:5])
    except (OSError, IndexError, ValueError):
        raise ProfileError(f"{path}: expected a header and one row of 5 interference constants") from None
    if len(values) != 5:
        raise ProfileError(f"{path}: expected 5 interference constants, got {len(values)}")
    return values  # type: ignore[return-value]
