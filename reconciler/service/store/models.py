"""Deployment models: each deployment's model description and artifact bytes (issue #8)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from reconciler.service import errors
from reconciler.service.records import ModelRecord
from reconciler.service.store.database import Database, dump, load
from reconciler.service.store.tables import deployment_models, resources


class Models(Database):
    """Queries of the deployment models aggregate."""

    @staticmethod
    def _model(row: Any) -> ModelRecord:
        return ModelRecord(deployment_id=row.deployment_id, kind=row.kind, task=row.task,
                           target_name=row.target_name, class_names=load(row.class_names),
                           feature_names=load(row.feature_names), sha256=row.sha256, size=int(row.size),
                           created=row.created, created_by=load(row.created_by))

    def put_model(self, record: ModelRecord, artifact: bytes, *, label: str | None) -> ModelRecord:
        """Set (or replace) a deployment's model. A missing deployment is created when ``label``
        is given (admin registration), else 404."""
        with self._write() as conn:
            found = conn.execute(sa.select(resources.c.id).where(resources.c.id == record.deployment_id,
                                                                 resources.c.kind == "deployment")).first()
            if found is None:
                if not label:
                    raise errors.HTTPNotFound(f"no deployment with id {record.deployment_id!r}", errors={
                        "id": "create it first (POST deployments/) or pass a label to create it"})
                taken = conn.execute(sa.select(resources.c.kind).where(
                    resources.c.id == record.deployment_id)).first()
                if taken is not None:
                    raise errors.HTTPConflict(f"id {record.deployment_id} is used by a {taken.kind}",
                                          errors={"id": "choose another deployment id"})
                conn.execute(sa.insert(resources).values(
                    id=record.deployment_id, kind="deployment", name=label, body=dump({"label": label}),
                    created=record.created, created_by=dump(record.created_by)))
            conn.execute(sa.delete(deployment_models).where(
                deployment_models.c.deployment_id == record.deployment_id))
            conn.execute(sa.insert(deployment_models).values(
                deployment_id=record.deployment_id, kind=record.kind, task=record.task,
                target_name=record.target_name, class_names=dump(record.class_names),
                feature_names=dump(record.feature_names), sha256=record.sha256, size=record.size,
                artifact=artifact, created=record.created, created_by=dump(record.created_by)))
        return record

    def get_model(self, deployment_id: str) -> ModelRecord:
        """The model's description (not its bytes); 404 with the way to register one."""
        columns = [c for c in deployment_models.c if c.name != "artifact"]
        with self._read() as conn:
            row = conn.execute(sa.select(*columns).where(deployment_models.c.deployment_id == deployment_id)).first()
        if row is None:
            raise _no_model(deployment_id)
        return self._model(row)

    def get_model_artifact(self, deployment_id: str) -> tuple[ModelRecord, bytes]:
        with self._read() as conn:
            row = conn.execute(sa.select(deployment_models).where(
                deployment_models.c.deployment_id == deployment_id)).first()
        if row is None:
            raise _no_model(deployment_id)
        return self._model(row), bytes(row.artifact)


def _no_model(deployment_id: str) -> errors.HTTPNotFound:
    return errors.HTTPNotFound(f"deployment {deployment_id} has no model", errors={
        "deploymentId": "register one: reconciler models register --deployment-id ID --artifact FILE, "
                        "or PUT deployments/{id}/model with the artifact bytes"})
