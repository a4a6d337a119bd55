"""The serving runtime: tiny PyTorch models built in code, partition worker processes, and the HTTP API
(router, dynamic batching, SLO-aware queueing, limits, /metrics). Imports torch/FastAPI lazily."""
