"""A built-in synthetic GPU cluster and workload shaped like openb, for ``gpufleet demo`` (no files needed).

Where the numbers come from: counted once from the openb trace (Alibaba cluster-trace-gpu-v2023, files
openb_node_list_gpu_node.csv and openb_pod_list_default.csv, 1,213 nodes and 8,152 pods) and hard-coded
here; nothing is read at run time.

* Nodes: the four most common openb GPU node shapes with two or more GPUs of one of the models
  T4, G2, V100M16, V100M32, with their openb node counts as the mix.
* Pods (openb default, 8,152 pods): 1,088 CPU-only (13.3%), 3,911 one whole GPU (48.0%), 3,078 a share
  of one GPU (37.8%), 16 two GPUs, 15 four GPUs, 44 eight GPUs (0.9% multi-GPU together). A shared GPU's
  milli is drawn from openb's 20 distinct values with their counts; CPU and memory from the most common
  (cpu_milli, memory_mib) pairs of each kind with their counts. No pod names a GPU model (as in openb
  default).
"""

from __future__ import annotations

import numpy as np

from ..cluster import MILLI_PER_GPU, Node, Pod

# (pool name, openb node count, cpu_milli, memory_mib, GPUs, GPU model)
NODE_SHAPES = (
    ("g2x8", 549, 96000, 393216, 8, "G2"),
    ("t4x2", 387, 104000, 524288, 2, "T4"),
    ("v100m16x4", 28, 32000, 131072, 4, "V100M16"),
    ("v100m32x8", 21, 96000, 786432, 8, "V100M32"),
)

# Pod kind -> (openb pod count, GPUs per pod); "gpu-share-1" pods take a share of one GPU.
POD_KINDS = {
    "cpu-only": (1088, 0), "gpu-whole-1": (3911, 1), "gpu-share-1": (3078, 1),
    "gpu-whole-2": (16, 2), "gpu-whole-4": (15, 4), "gpu-whole-8": (44, 8),
}

# gpu_milli of shared-GPU pods in openb default: value -> pod count.
SHARED_GPU_MILLI_COUNTS = {
    50: 7, 110: 24, 140: 1, 160: 74, 220: 62, 230: 140, 270: 4, 290: 1, 320: 328, 330: 7, 350: 6, 370: 47,
    440: 2, 460: 128, 470: 750, 480: 19, 550: 72, 590: 75, 650: 253, 810: 1078,
}

# Most common (cpu_milli, memory_mib) per kind in openb default: ((cpu, memory), pod count).
CPU_MEMORY_COUNTS = {
    "cpu-only": (((12500, 57344), 364), ((32000, 49152), 284), ((8000, 30517), 163), ((15400, 51200), 120),
                 ((16500, 51200), 95)),
    "gpu-whole-1": (((11300, 49152), 857), ((11400, 48128), 534), ((3152, 5600), 470), ((18708, 64512), 255),
                    ((9810, 41560), 195), ((12000, 24576), 158), ((15700, 58368), 158), ((11908, 47104), 153)),
    "gpu-share-1": (((3152, 5600), 1122), ((11908, 47104), 625), ((8000, 30517), 486), ((4000, 22888), 189),
                    ((4000, 15258), 182), ((4152, 10600), 152), ((4000, 30517), 136)),
    "gpu-whole-2": (((16200, 66560), 7), ((6000, 65536), 3), ((30200, 160768), 3)),
    "gpu-whole-4": (((32200, 132096), 9), ((32000, 131072), 3), ((60200, 320512), 3)),
    "gpu-whole-8": (((88000, 327680), 18), ((64200, 263168), 18), ((120000, 737280), 3), ((64000, 262144), 3)),
}


def _weights(counts) -> np.ndarray:
    w = np.asarray(counts, dtype=float)
    return w / w.sum()


def synthetic_nodes(num_nodes: int = 200) -> list[Node]:
    """``num_nodes`` nodes split over NODE_SHAPES in openb's proportions (largest remainder rounding)."""
    share = _weights([s[1] for s in NODE_SHAPES]) * num_nodes
    counts = np.floor(share).astype(int)
    for i in np.argsort(-(share - counts), kind="stable")[: num_nodes - counts.sum()]:
        counts[i] += 1
    return [Node.with_gpus(f"{name}-{i:04d}", cpu, memory, gpus, model)
            for (name, _, cpu, memory, gpus, model), count in zip(NODE_SHAPES, counts) for i in range(count)]


def mean_gpu_request_milli() -> float:
    shared = sum(m * c for m, c in SHARED_GPU_MILLI_COUNTS.items()) / sum(SHARED_GPU_MILLI_COUNTS.values())
    per_kind = {k: (shared if k == "gpu-share-1" else gpus * MILLI_PER_GPU) for k, (_, gpus) in POD_KINDS.items()}
    weights = _weights([c for c, _ in POD_KINDS.values()])
    return float(sum(w * per_kind[k] for w, k in zip(weights, POD_KINDS)))


def synthetic_pods(num_pods: int, seed: int = 0) -> list[Pod]:
    """``num_pods`` pods whose kinds, GPU shares, CPU and memory follow the openb counts above."""
    rng = np.random.default_rng(seed)
    kinds = list(POD_KINDS)
    kind_of = rng.choice(len(kinds), size=num_pods, p=_weights([POD_KINDS[k][0] for k in kinds]))
    milli_values = list(SHARED_GPU_MILLI_COUNTS)
    milli_of = rng.choice(milli_values, size=num_pods, p=_weights(list(SHARED_GPU_MILLI_COUNTS.values())))
    pods = []
    for i, (k, milli) in enumerate(zip(kind_of, milli_of)):
        kind = kinds[k]
        shapes = CPU_MEMORY_COUNTS[kind]
        cpu, memory = shapes[rng.choice(len(shapes), p=_weights([c for _, c in shapes]))][0]
        gpus = POD_KINDS[kind][1]
        pods.append(Pod(f"synth-{kind}-{i:05d}", cpu, memory, gpus,
                        int(milli) if kind == "gpu-share-1" else (MILLI_PER_GPU if gpus else 0)))
    return pods


def synthetic_pods_for(nodes: list[Node], seed: int = 0, demand: float = 1.0) -> list[Pod]:
    """A trace asking for about ``demand`` x the nodes' GPU capacity (openb default asks for ~98%)."""
    capacity = sum(n.gpu_count for n in nodes) * MILLI_PER_GPU
    return synthetic_pods(max(1, round(demand * capacity / mean_gpu_request_milli())), seed)
