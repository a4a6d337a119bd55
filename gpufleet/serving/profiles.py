"""Latency profiles: ``L(batch, partition %)`` in milliseconds per model, loaded from and written to CSV.

A profile is the "minimal performance profile collected offline" of GPULet (Choi et al., USENIX ATC'22,
Sec. 4.1): the latency of one batch of ``b`` requests on a partition holding ``p`` % of a GPU (an MPS
active-thread percentage; on a CPU a share of the cores). CSV format (docs/serving.md):

    model,batch,partition_pct,batch_latency_ms[,anything else]

one row per measured point, a header line required, extra columns (``throughput_rps``, ``source``) ignored.
``latency_ms`` is accepted as the name of the latency column too.

Between measured points the latency is interpolated linearly: first along the batch axis within a
measured partition (as glet's ``LatencyModel::getBatchInterpolatedLatency`` does), then between the two
nearest measured partitions. Batches above the largest measured batch are not served (``max_batch``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .errors import ProfileError

LATENCY_COLUMNS = ("batch_latency_ms", "latency_ms", "latency_ms_approx")


@dataclass
class LatencyProfile:
    """Measured batch latencies of one model: ``table[partition_pct] = (batches, latencies_ms)``."""

    model: str
    table: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def from_points(cls, model: str, points: Iterable[tuple[int, int, float]]) -> "LatencyProfile":
        """From ``(batch, partition_pct, latency_ms)`` triples; a repeated point keeps the last value."""
        by_part: dict[int, dict[int, float]] = {}
        for batch, part, latency in points:
            by_part.setdefault(int(part), {})[int(batch)] = float(latency)
        table = {}
        for part, row in sorted(by_part.items()):
            batches = np.array(sorted(row), dtype=np.int64)
            table[part] = (batches, np.array([row[b] for b in batches], dtype=np.float64))
        return cls(model, table)

    @property
    def partitions(self) -> list[int]:
        return sorted(self.table)

    @property
    def max_batch(self) -> int:
        """The largest batch measured on every partition."""
        return int(min(b[-1] for b, _ in self.table.values()))

    def latency(self, batch: int, partition_pct: float) -> float:
        """Predicted latency (ms) of one batch; ``inf`` for a batch above ``max_batch`` or a partition
        below the smallest measured one."""
        if batch < 1 or batch > self.max_batch:
            return float("inf")
        parts = self.partitions
        if partition_pct in self.table:
            return self._at(batch, int(partition_pct))
        if partition_pct < parts[0]:
            return float("inf")
        if partition_pct > parts[-1]:
            return self._at(batch, parts[-1])
        hi = next(p for p in parts if p > partition_pct)
        lo = max(p for p in parts if p < partition_pct)
        w = (partition_pct - lo) / (hi - lo)
        return (1 - w) * self._at(batch, lo) + w * self._at(batch, hi)

    def _at(self, batch: int, part: int) -> float:
        batches, lat = self.table[part]
        return float(np.interp(batch, batches, lat))

    def latencies(self, partition_pct: float) -> np.ndarray:
        """``L(b, p)`` for b = 1..max_batch as an array (index b-1)."""
        return np.array([self.latency(b, partition_pct) for b in range(1, self.max_batch + 1)])

    def throughput(self, batch: int, partition_pct: float) -> float:
        """Requests per second when batches of ``batch`` run back to back."""
        return 1000.0 * batch / self.latency(batch, partition_pct)

    def points(self) -> Iterator[tuple[int, int, float]]:
        for part, (batches, lat) in sorted(self.table.items()):
            for b, l in zip(batches, lat):
                yield int(b), part, float(l)


class ProfileSet(dict):
    """Profiles by model name, with a clear error for a model that has none."""

    def __missing__(self, model: str) -> LatencyProfile:
        known = ", ".join(sorted(self)) or "none"
        raise ProfileError(f"no latency profile for model {model!r} (profiles exist for: {known})")


def load_profiles(path: str | Path, models: Iterable[str] | None = None) -> ProfileSet:
    """Read a profile CSV; with ``models``, keep only those (ProfileError when one is missing)."""
    path = Path(path)
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read latency profiles: {exc.strerror}") from None
    points: dict[str, list[tuple[int, int, float]]] = {}
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        latency_col = next((c for c in LATENCY_COLUMNS if c in header), None)
        missing = [c for c in ("model", "batch", "partition_pct") if c not in header]
        if missing or latency_col is None:
            raise ProfileError(f"{path}:1: header must name model,batch,partition_pct,batch_latency_ms "
                               f"(got {','.join(header) or 'nothing'})")
        for line, row in enumerate(reader, start=2):
            try:
                batch, part = int(row["batch"]), int(float(row["partition_pct"]))
                latency = float(row[latency_col])
            except (TypeError, ValueError):
                raise ProfileError(f"{path}:{line}: expected integer batch, partition_pct in 1..100 and a "
                                   f"latency in ms, got {row}") from None
            if batch < 1 or not 0 < part <= 100 or not latency > 0:
                raise ProfileError(f"{path}:{line}: expected batch >= 1, partition_pct in 1..100 and "
                                   f"latency > 0, got batch={batch} partition_pct={part} latency={latency}")
            points.setdefault(row["model"].strip(), []).append((batch, part, latency))
    out = ProfileSet({m: LatencyProfile.from_points(m, pts) for m, pts in points.items()})
    if models is not None:
        return ProfileSet({m: out[m] for m in models})
    return out


def write_profiles(path: str | Path, profiles: Iterable[LatencyProfile]) -> None:
    with Path(path).open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["model", "batch", "partition_pct", "batch_latency_ms", "throughput_rps"])
        for prof in profiles:
            for b, p, l in prof.points():
                w.writerow([prof.model, b, p, f"{l:.4f}", f"{1000.0 * b / l:.2f}"])
