"""``models.yaml``: a Kubernetes-shaped ``gpufleet.io/v1alpha1 InferenceService`` spec.

    apiVersion: gpufleet.io/v1alpha1
    kind: InferenceService
    metadata: {name: demo}
    spec:
      planner: gpulet+int          # gpulet+int | gpulet | sbp | greedy | dedicated
      gpus: 4                      # at most this many GPUs (or CPU partition groups)
      partitions: [20, 40, 50, 60, 80, 100]
      profiles: profiles.csv       # relative to this file; default: the shipped CPU profiles of the tiny archs
      interference:                # optional; default: the paper's 2080 Ti coefficients, no utilisation data
        coefficients: [0.113, 0.716, 0.355, 0.088, 0.895]
        utilisation: util.csv      # glet UTIL.CSV format
      models:
      - name: classifier           # the key in the profile CSV unless `profile` names another
        arch: mlp                  # runtime model built in code: mlp | lenet | convnet
        seed: 0                    # runtime: torch seed of its random weights (default 0)
        sloMs: 50
        rateRps: 100
      runtime: {host: 127.0.0.1, port: 8000, maxBodyBytes: 1048576, maxQueue: 64}

Validated on load with :class:`gpufleet.cluster.spec.Field`: a bad field raises a SpecError naming the
file, the line and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..cluster.spec import Field, document_fields
from .interference import PAPER_COEFFICIENTS_2080TI, InterferenceModel, load_utilisation
from .plan import PARTITIONS, ModelDemand
from .planners import PLANNERS
from .profiles import LatencyProfile, ProfileSet, load_profiles
from .runtime.models import ARCHS

API_VERSION = "gpufleet.io/v1alpha1"
KIND = "InferenceService"
DEFAULT_PROFILES = Path(__file__).parent / "data" / "cpu_tiny_profiles.csv"


@dataclass
class ModelSpec:
    name: str
    arch: str
    slo_ms: float
    rate_rps: float
    profile: str
    seed: int = 0


@dataclass
class RuntimeSpec:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1 << 20
    max_queue: int = 64


@dataclass
class ServiceSpec:
    name: str
    planner: str
    gpus: int
    partitions: tuple[int, ...]
    models: list[ModelSpec]
    profiles_path: Path
    interference: InterferenceModel
    runtime: RuntimeSpec = field(default_factory=RuntimeSpec)
    source: str = ""

    def demands(self, rates: dict[str, float] | None = None) -> list[ModelDemand]:
        rates = rates or {}
        return [ModelDemand(m.name, rates.get(m.name, m.rate_rps), m.slo_ms) for m in self.models]

    def profiles(self) -> ProfileSet:
        loaded = load_profiles(self.profiles_path)
        out = ProfileSet()
        for m in self.models:
            src = loaded[m.profile]
            out[m.name] = LatencyProfile(m.name, src.table)
        return out


def _number_list(f: Field, what: str) -> list[float]:
    return [item.number() for item in f.items()] if f.value is not None else []


def parse_service(f: Field, base: Path) -> ServiceSpec:
    api = f.require("apiVersion").string()
    if api != API_VERSION:
        raise f.get("apiVersion").error(f"expected {API_VERSION}, got {api!r}")
    kind = f.require("kind").string()
    if kind != KIND:
        raise f.get("kind").error(f"expected {KIND}, got {kind!r}")
    name = f.require("metadata").require("name").string()
    spec = f.require("spec")
    planner = spec.get("planner").string("gpulet+int")
    if planner not in PLANNERS:
        raise spec.get("planner").error(f"expected one of {', '.join(PLANNERS)}, got {planner!r}")
    gpus = spec.get("gpus").integer(1, minimum=1)
    parts = tuple(int(p) for p in _number_list(spec.get("partitions"), "partition")) or PARTITIONS
    for i, p in enumerate(parts):
        if not 0 < p <= 100:
            raise spec.get("partitions").items()[i].error(f"expected a percentage in 1..100, got {p}")
    if 100 not in parts:
        raise spec.get("partitions").error("must include 100 (a whole GPU)")
    profiles_field = spec.get("profiles")
    profiles_path = (base / profiles_field.string()) if profiles_field.value is not None else DEFAULT_PROFILES
    if not profiles_path.is_file():
        raise profiles_field.error(f"profile CSV not found: {profiles_path}")
    inter = spec.get("interference")
    coefficients = tuple(_number_list(inter.get("coefficients"), "coefficient")) or PAPER_COEFFICIENTS_2080TI
    if len(coefficients) != 5:
        raise inter.get("coefficients").error(f"expected 5 numbers (c1..c5), got {len(coefficients)}")
    util = {}
    if inter.get("utilisation").value is not None:
        util = load_utilisation(base / inter.get("utilisation").string())
    models = []
    seen = set()
    model_items = spec.require("models").items()
    if not model_items:
        raise spec.get("models").error("expected at least one model")
    for item in model_items:
        mname = item.require("name").string()
        if mname in seen:
            raise item.get("name").error(f"duplicate model name {mname!r}")
        seen.add(mname)
        arch = item.get("arch").string("mlp")
        if arch not in ARCHS:
            raise item.get("arch").error(f"expected one of {', '.join(ARCHS)}, got {arch!r}")
        slo = item.require("sloMs").number()
        if slo <= 0:
            raise item.get("sloMs").error(f"must be > 0, got {slo:g}")
        rate = item.get("rateRps").number(0.0, minimum=0.0)
        seed = item.get("seed").integer(0, minimum=0)
        models.append(ModelSpec(mname, arch, slo, rate, item.get("profile").string(arch), seed))
    rt = spec.get("runtime")
    runtime = RuntimeSpec(rt.get("host").string("127.0.0.1"), rt.get("port").integer(8000, minimum=0),
                          rt.get("maxBodyBytes").integer(1 << 20, minimum=1), rt.get("maxQueue").integer(64, minimum=1))
    service = ServiceSpec(name, planner, gpus, parts, models, profiles_path,
                          InterferenceModel(coefficients, util), runtime, str(f.file))  # type: ignore[arg-type]
    loaded = load_profiles(profiles_path)
    for m, item in zip(models, model_items):
        if m.profile not in loaded:
            raise item.error(f"no latency profile {m.profile!r} in {profiles_path} (has: {', '.join(sorted(loaded))})")
    return service


def load_service(path: str | Path) -> ServiceSpec:
    docs = document_fields(path)
    if len(docs) != 1:
        raise docs[1].error("expected exactly one InferenceService document") if docs else \
            Field(None, "", str(path), 1).error("expected an InferenceService document, the file is empty")
    return parse_service(docs[0], Path(path).resolve().parent)
