"""reconciler: GitOps for batch prediction job definitions.

The public Python API mirrors the command line: load and validate manifests, build models.
"""

from reconciler.__about__ import __version__
from reconciler.specs.load import LoadedDocument, load_paths
from reconciler.specs.model import Manifest
from reconciler.specs.validate import Issue, ValidationReport, validate_paths

__all__ = [
    "Issue",
    "LoadedDocument",
    "Manifest",
    "ValidationReport",
    "__version__",
    "load_paths",
    "validate_paths",
]
