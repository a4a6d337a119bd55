"""Tiny PyTorch models built in code (random weights from a fixed seed; nothing is downloaded).

| arch | input (per request) | output | what it stands for |
|---|---|---|---|
| ``mlp`` | 64 floats | 10 logits | a small classifier head |
| ``lenet`` | 1 x 28 x 28 floats (784) | 10 logits | LeCun et al.'s LeNet-5 shape (conv-pool-conv-pool-fc) |
| ``convnet`` | 3 x 32 x 32 floats (3072) | 10 logits | a small CIFAR-style CNN |
"""

from __future__ import annotations

ARCHS = {"mlp": (64,), "lenet": (1, 28, 28), "convnet": (3, 32, 32)}


def input_size(arch: str) -> int:
    n = 1
    for d in ARCHS[arch]:
        n *= d
    return n


def build_model(arch: str, seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if arch == "mlp":
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    elif arch == "lenet":
        model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    elif arch == "convnet":
        model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(32 * 8 * 8, 64), nn.ReLU(), nn.Linear(64, 10))
    else:
        from ..errors import ServingError
        raise ServingError(f"unknown model arch {arch!r} (expected one of {', '.join(ARCHS)})")
    return model.eval()
