"""reconciler: GitOps for batch prediction job definitions.

The public Python API mirrors the command line: load and validate manifests, build models.

Names are imported on first use (PEP 562), so that ``import reconciler.<part>`` loads only that
part and what it imports: the local service or the engine never pull in the manifest loader
through this package, and no layer imports another through ``reconciler`` itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reconciler.__about__ import __version__

if TYPE_CHECKING:
    from reconciler.contract.issues import Issue
    from reconciler.specs.load import LoadedDocument, load_paths
    from reconciler.specs.model import Manifest
    from reconciler.specs.validate import ValidationReport, validate_paths

__all__ = [
    "Issue",
    "LoadedDocument",
    "Manifest",
    "ValidationReport",
    "__version__",
    "load_paths",
    "validate_paths",
]

_PUBLIC = {
    "Issue": "reconciler.contract.issues",
    "LoadedDocument": "reconciler.specs.load",
    "load_paths": "reconciler.specs.load",
    "Manifest": "reconciler.specs.model",
    "ValidationReport": "reconciler.specs.validate",
    "validate_paths": "reconciler.specs.validate",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
