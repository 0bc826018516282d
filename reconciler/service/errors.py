"""Errors the service reports, and their HTTP shape.

Each is named ``HTTP...`` for the answer it becomes, apart from the client side's errors in
:mod:`reconciler.errors` (``ServiceError``, ``NameTaken``: what a caller is told about such an answer).
Storage raises them (:class:`HTTPNotFound`, :class:`HTTPNameTaken`, ...); routes never build
responses for them by hand. One handler turns every :class:`HTTPProblem` into the API's error body
``{"message": ..., "errors": {field: message}}`` so that clients (SDK, Terraform, our own
client) see one shape for every 4xx.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.service.records import Reference


class HTTPProblem(Exception):
    status_code = 400

    def __init__(self, message: str, *, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"message": self.message}
        if self.errors:
            out["errors"] = self.errors
        return out


class HTTPBadRequest(HTTPProblem):
    status_code = 400


class HTTPForbidden(HTTPProblem):
    status_code = 403


class HTTPNotFound(HTTPProblem):
    status_code = 404


class HTTPConflict(HTTPProblem):
    status_code = 409


class HTTPNameTaken(HTTPConflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"a job definition named {name!r} already exists",
                         errors={"name": "names are unique; choose another name or update the existing definition"})


class HTTPPayloadTooLarge(HTTPProblem):
    status_code = 413


class HTTPUnsupportedMediaType(HTTPProblem):
    status_code = 415


class HTTPUnprocessable(HTTPProblem):
    status_code = 422


class HTTPMissingReferences(HTTPNotFound):
    """404, as the real API answers a definition whose deployment (or credential, data store) does
    not exist. The body names each missing id by its field, so a client can tell this from an
    unknown URL (whose body has no ``errors``) and report the field to fix."""

    def __init__(self, missing: Sequence[Reference]) -> None:
        errors = {ref.field: f"no {ref.kind} with id {ref.ref_id!r} exists; create it first "
                             f"(POST {_ROUTES[ref.kind]}) or fix the id" for ref in missing}
        super().__init__("the job spec references resources that do not exist", errors=errors)
        self.missing = list(missing)


_ROUTES = {"deployment": "deployments/", "credential": "credentials/", "dataStore": "externalDataStores/"}
