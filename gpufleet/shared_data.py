"""Where the project's test and reproduction data lives (traces, profiles, configs it does not ship).

Rule (the developers' guide): that data sits in ``shared/`` beside the repository (``../shared`` from the
repository root, as CI lays it out), or wherever ``$GPUFLEET_SHARED`` points. The package ships none of it;
code that needs it names the missing path when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$GPUFLEET_SHARED``, else ``shared/`` beside the repository (or beside the working directory)."""
    if os.environ.get("GPUFLEET_SHARED"):
        return Path(os.environ["GPUFLEET_SHARED"])
    beside_repo = REPO_ROOT.parent / "shared"
    return beside_repo if beside_repo.is_dir() else Path.cwd().parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under the shared folder, e.g. ``shared_path("data", "openb")``."""
    return shared_dir().joinpath(*parts)
