"""Toy IR passes (MLIR Toy tutorial, Chapters 3 and 4) and the `-opt` pipelines toyc runs per chapter."""

from __future__ import annotations

from ..ir import Module
from .canonicalize import canonicalize_module
from .cse import cse_module
from .dce import dce_module
from .inline import inline_module
from .shape_inference import infer_shapes_module

__all__ = ["canonicalize_module", "cse_module", "dce_module", "inline_module", "infer_shapes_module",
           "optimize"]


def optimize(module: Module, chapter: int) -> None:
    """`-opt` as toyc-chN runs it: Chapter 3 runs the canonicalizer on each function; from Chapter 4
    on: inline (followed by canonicalization, as MLIR's inliner does), shape inference, canonicalize, CSE."""
    if chapter < 3:
        return
    if chapter == 3:
        canonicalize_module(module, chapter)
        return
    inline_module(module, chapter)
    infer_shapes_module(module)
    canonicalize_module(module, chapter)
    cse_module(module)
