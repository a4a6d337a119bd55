"""The GPULet paper's models, SLOs and scenarios, with reference profiles built from ../shared/data/gpulet.

Test and reproduction data only (the project ships none of it). The shared directory is
``$GPUFLEET_SHARED`` or ``../shared`` next to the repository root; :func:`gpulet_data_dir` raises a
ServingError naming the missing path.

Reference profiles (docs/serving.md, "Reference profiles", explains each rule):

* googlenet, resnet50, ssd-mobilenet, vgg16: the paper's Fig. 4 latencies on an RTX 2080 Ti
  (``gpulet_atc22_fig4_latency_APPROX_digitized.csv``, read by eye, +-10 %), batch 1..32 x 20..100 %.
* mobilenet_v2, mnasnet, densenet, bert_base (no Fig. 4 curve): the whole-GPU batch curve of the
  paper's own profiler table (glet ``3080__UTIL.CSV`` ``avg_duration(ms)``, batch 1..32) scaled by one
  calibration constant, the median ratio Fig.4(b, 100 %) / UTIL(b) over googlenet, resnet50 and
  ssd-mobilenet (vgg16's UTIL row is an outlier and is left out); the partition axis uses the median
  Fig. 4 ratio ``L(b, p) / L(b, 100)`` of the four Fig. 4 models. lenet's UTIL row (5.6 ms flat: profiler
  overhead) cannot meet its own 5 ms SLO, so lenet's whole-GPU curve is an assumption,
  ``0.6 ms + 0.04 ms x batch``, with the same partition axis.
* Interference features: L2 and DRAM utilisation from glet ``2080ti__UTIL.CSV`` with the paper's
  ``2080ti__INT_MODEL_CONSTANT.CSV`` coefficients.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..shared_data import shared_dir
from .errors import ServingError
from .interference import InterferenceModel, load_coefficients, load_utilisation
from .plan import ModelDemand
from .profiles import LatencyProfile, ProfileSet

FIG4_MODELS = ("googlenet", "resnet50", "ssd-mobilenet", "vgg16")
UTIL_NAMES = {"densenet161": "densenet", "mnasnet1_0": "mnasnet", "ssd-mobilenetv1": "ssd-mobilenet",
              "ssd": "ssd-mobilenet", "bert": "bert_base"}
BATCHES = (1, 2, 4, 8, 12, 16, 20, 24, 28, 32)
LENET_BASE_MS, LENET_PER_IMAGE_MS = 0.6, 0.04


def gpulet_data_dir() -> Path:
    path = shared_dir() / "data" / "gpulet"
    if not path.is_dir():
        raise ServingError(f"GPULet reference data not found at {path} (set GPUFLEET_SHARED)")
    return path


def paper_facts() -> dict:
    return json.loads((gpulet_data_dir() / "gpulet_paper_facts.json").read_text())


def _fig4(data: Path) -> dict[str, dict[tuple[int, int], float]]:
    out: dict[str, dict[tuple[int, int], float]] = {}
    with (data / "gpulet_atc22_fig4_latency_APPROX_digitized.csv").open() as f:
        for row in csv.DictReader(f):
            out.setdefault(row["model"], {})[(int(row["batch"]), int(row["partition_pct"]))] = float(row["latency_ms_approx"])
    return out


def _util_durations(path: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            name = UTIL_NAMES.get(row["bench"], row["bench"])
            out.setdefault(name, {})[int(row["batch"])] = float(row["avg_duration(ms)"])
    return out


def reference_profiles(data: Path | None = None) -> ProfileSet:
    """Profiles of the paper's nine models (Table 3), built as the module docstring says."""
    data = data or gpulet_data_dir()
    fig4 = _fig4(data)
    parts = sorted({p for m in fig4.values() for (_, p) in m})
    fig_batches = sorted({b for m in fig4.values() for (b, _) in m})
    out = ProfileSet()
    for model in FIG4_MODELS:
        out[model] = LatencyProfile.from_points(model, [(b, p, l) for (b, p), l in fig4[model].items()])
    # partition axis: median over the Fig. 4 models of L(b, p) / L(b, 100), interpolated in batch
    shape = {p: np.array([np.median([fig4[m][(b, p)] / fig4[m][(b, 100)] for m in FIG4_MODELS])
                          for b in fig_batches]) for p in parts}
    util = _util_durations(data / "glet_official" / "3080__UTIL.CSV")
    calib = float(np.median([fig4[m][(b, 100)] / util[m][b] for m in ("googlenet", "resnet50", "ssd-mobilenet")
                             for b in fig_batches if b in util[m]]))
    for model in ("mobilenet_v2", "mnasnet", "densenet", "bert_base"):
        points = []
        for b in BATCHES:
            base = util[model][b] * calib
            for p in parts:
                points.append((b, p, base * float(np.interp(b, fig_batches, shape[p]))))
        out[model] = LatencyProfile.from_points(model, points)
    # lenet: an assumed whole-GPU curve 0.6 ms + 0.04 ms per image (no reference curve exists)
    points = []
    for b in BATCHES:
        for p in parts:
            points.append((b, p, (LENET_BASE_MS + LENET_PER_IMAGE_MS * b) * float(np.interp(b, fig_batches, shape[p]))))
    out["lenet"] = LatencyProfile.from_points("lenet", points)
    return out


def reference_interference(data: Path | None = None) -> InterferenceModel:
    data = data or gpulet_data_dir()
    official = data / "glet_official"
    return InterferenceModel(load_coefficients(official / "2080ti__INT_MODEL_CONSTANT.CSV"),
                             load_utilisation(official / "2080ti__UTIL.CSV", UTIL_NAMES))


def paper_scenarios(data: Path | None = None) -> dict[str, list[ModelDemand]]:
    """Scenario name -> models with their Table 3 SLOs (rates 1.0 each: scale them with ``with_rate``).

    Table 4's scen1..scen5 plus the two applications: game (resnet50 + six lenets, SLO 95 ms in the repo
    config) and traffic (ssd-mobilenet, googlenet, vgg16 with the repo's 69/67/67 ms)."""
    facts = json.loads(((data or gpulet_data_dir()) / "gpulet_paper_facts.json").read_text())
    slo = dict(facts["table3_models_slo_ms"])
    slo["bert"] = slo["bert_base"]
    out: dict[str, list[ModelDemand]] = {}
    for name, models in facts["table4_scenarios"].items():
        out[name] = [ModelDemand("bert_base" if m == "bert" else m, 1.0, float(slo[m])) for m in models]
    game_slo = float(facts["apps"]["game"]["slo_ms_in_repo_config"])
    out["game"] = [ModelDemand("resnet50", 1.0, game_slo)]
    out["game"] += [ModelDemand(f"lenet{i}", 1.0, game_slo) for i in range(1, 7)]
    t = facts["apps"]["traffic"]["slo_ms_repo_config"]
    out["traffic"] = [ModelDemand("ssd-mobilenet", 1.0, float(t["ssd"])),
                      ModelDemand("googlenet", 1.0, float(t["googlenet"])),
                      ModelDemand("vgg16", 1.0, float(t["vgg16"]))]
    return out


def with_lenet_copies(profiles: ProfileSet, interference: InterferenceModel | None = None) -> ProfileSet:
    """The game app runs six lenets: give each the lenet profile (and utilisation)."""
    out = ProfileSet(profiles)
    for i in range(1, 7):
        out[f"lenet{i}"] = LatencyProfile(f"lenet{i}", profiles["lenet"].table)
        if interference is not None:
            for (m, b), v in list(interference.utilisation.items()):
                if m == "lenet":
                    interference.utilisation[(f"lenet{i}", b)] = v
    return out


def with_rate(demands: list[ModelDemand], total_rps: float) -> list[ModelDemand]:
    """The scenario at ``total_rps`` requests/s split evenly over its models."""
    return [ModelDemand(d.name, total_rps / len(demands), d.slo_ms) for d in demands]
