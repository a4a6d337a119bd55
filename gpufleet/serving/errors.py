"""Errors of the serving room. All are :class:`gpufleet.errors.GpufleetError`, so the CLI prints one line
and exits 2."""

from __future__ import annotations

from ..errors import GpufleetError


class ServingError(GpufleetError):
    """A serving input a user can fix: a bad profile CSV, an unknown model, an impossible request."""


class ProfileError(ServingError):
    """A latency-profile CSV that does not say what it must (names the file and the line)."""
