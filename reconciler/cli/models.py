"""``reconciler models register``: admin registration of a deployment's model, straight into the
local service's database (its ``PUT deployments/{id}/model`` does the same over HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.console import exit_codes
from reconciler.errors import ServiceError, UsageError
from reconciler.service.settings import DEFAULT_DB_URL

__all__ = ["register"]

_TRUST_NOTE = ("SECURITY: a joblib artifact is a pickle, i.e. code that runs when it is loaded (here and in the "
               "service). Register only artifacts from a trusted source.")


def register(app: typer.Typer) -> None:
    """``reconciler models register``: admin registration of a deployment's model, straight into the
    database (the service's ``PUT deployments/{id}/model`` does the same over HTTP)."""
    models = typer.Typer(help="Models behind the local service's deployments (admin).", no_args_is_help=True)
    app.add_typer(models, name="models")

    @models.command("register", help="Register (or replace) the model a deployment scores with: a scikit-learn "
                                     "estimator saved with joblib, or an ONNX file. The deployment is created with "
                                     "--label if it does not exist. " + _TRUST_NOTE)
    def register_model(
        deployment_id: Annotated[str, typer.Option("--deployment-id", help="Deployment id (24 hex digits).")],
        artifact: Annotated[Path, typer.Option(help="The model file.", exists=True, dir_okay=False, readable=True)],
        db: Annotated[str, typer.Option(help="sqlite:///path.db or postgresql://user@host:port/db.")] = DEFAULT_DB_URL,
        label: Annotated[str | None, typer.Option(help="Deployment label (creates the deployment if missing).")] = None,
        target_name: Annotated[str | None, typer.Option("--target-name", help="Target column name; default: from "
                                                        "the model, else 'target'.")] = None,
        kind: Annotated[str | None, typer.Option(help="joblib or onnx; guessed from the file when omitted.")] = None,
        feature_names: Annotated[str | None, typer.Option("--feature-names", help="Comma-separated input columns, "
                                                          "for artifacts that name none.")] = None,
        class_names: Annotated[str | None, typer.Option("--class-names", help="Comma-separated class names, for "
                                                        "ONNX classifiers without labels.")] = None,
    ) -> None:
        with exit_codes():
            import hashlib
            import re

            from reconciler.extras import MODEL_MODULES, MissingExtra, require
            from reconciler.service.serving import redacted_url

            require("models", "reconciler models register", modules=MODEL_MODULES)
            from reconciler.service.routes.models import register as store_model
            from reconciler.service.runner import artifacts
            from reconciler.service.store import Store

            if not re.fullmatch(r"[0-9a-fA-F]{24}", deployment_id):
                raise UsageError("--deployment-id must be 24 hex digits")
            if kind is not None and kind not in artifacts.KINDS:
                raise UsageError(f"--kind must be one of {', '.join(artifacts.KINDS)}")

            def names(text: str | None) -> list[str] | None:
                found = [p.strip() for p in (text or "").split(",") if p.strip()]
                return found or None

            data = artifact.read_bytes()
            try:
                description = artifacts.describe(data, kind=kind, target_name=target_name,
                                                 feature_names=names(feature_names), class_names=names(class_names))
            except artifacts.ArtifactError as exc:
                raise UsageError(f"cannot use {artifact}: {exc}") from None
            user = {"username": "admin", "userId": hashlib.sha256(b"admin").hexdigest()[:24], "fullName": None}
            try:
                store = Store(db)
            except MissingExtra:
                raise
            except Exception as exc:
                raise ServiceError(f"cannot open the database {redacted_url(db)}: {exc}") from None
            try:
                record = store_model(store, deployment_id, description, data, label=label, user=user)
            except Exception as exc:
                message = getattr(exc, "message", str(exc))
                hints = "; ".join(getattr(exc, "errors", {}).values())
                raise ServiceError(message + (f" ({hints})" if hints else "")) from None
            finally:
                store.close()
            classes = f", classes {', '.join(record.class_names)}" if record.class_names else ""
            typer.echo(f"deployment {deployment_id}: {record.kind} {record.task} model, target {record.target_name!r}"
                       f"{classes}, {len(record.feature_names)} feature(s)", err=True)
