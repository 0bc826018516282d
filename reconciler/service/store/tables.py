"""The store's tables, declared once (SQLAlchemy Core): the schema a new database is created
with and the shape :mod:`.migrations` brings an older database up to."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

definitions = sa.Table(
    "definitions", metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("schedule", sa.Text, nullable=True),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("deployment_id", sa.String(24), nullable=True),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("updated", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
    sa.Column("last_started_job_status", sa.String(16), nullable=True),
    sa.Column("last_started_job_time", sa.String(32), nullable=True),
    sa.Column("last_scheduled_run_time", sa.String(32), nullable=True),
    sa.Column("last_successful_run_time", sa.String(32), nullable=True),
    sa.Column("last_failed_run_time", sa.String(32), nullable=True),
    sa.Index("uq_definitions_name", "name", unique=True),
    sa.Index("ix_definitions_created", "created", "id"),
    sa.Index("ix_definitions_deployment", "deployment_id"),
)
# a job spec's references to resources (intakeSettings.credentialId, ...), so a resource in use
# is not deleted
definition_refs = sa.Table(
    "definition_refs", metadata,
    sa.Column("definition_id", sa.String(24), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ref_id", sa.String(24), nullable=False),
    sa.Index("ix_definition_refs_target", "ref_id"),
)
jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_details", sa.Text, nullable=False),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("definition_id", sa.String(24), nullable=True),
    sa.Column("definition_name", sa.String(100), nullable=True),
    sa.Column("deployment_id", sa.String(24), nullable=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("updated", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    # job execution (issue #8): added to databases of schema version 2 by ALTER TABLE, so each
    # needs a server default or must be nullable
    sa.Column("upload", sa.String(16), nullable=False, server_default="none"),
    sa.Column("percentage", sa.Float, nullable=False, server_default=sa.text("0")),
    sa.Column("scored_rows", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("failed_rows", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("skipped_rows", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("intake_bytes", sa.BigInteger, nullable=True),
    sa.Column("output_bytes", sa.BigInteger, nullable=True),
    sa.Column("started", sa.String(32), nullable=True),
    sa.Column("heartbeat", sa.String(32), nullable=True),
    sa.Column("runner", sa.String(64), nullable=True),
    sa.Index("ix_jobs_created", "created", "id"),
    sa.Index("ix_jobs_definition", "definition_id"),
    sa.Index("ix_jobs_status", "status", "created"),
)
# deployments, credentials and data stores: one table, ids unique across the three kinds
resources = sa.Table(
    "resources", metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Index("ix_resources_kind", "kind", "created", "id"),
)
# kept apart from ``resources.body``, which responses render, so a secret can never reach a
# response by accident
credential_secrets = sa.Table(
    "credential_secrets", metadata,
    sa.Column("credential_id", sa.String(24), primary_key=True),
    sa.Column("secret", sa.Text, nullable=False),
)
datasets = sa.Table(
    "datasets", metadata,
    sa.Column("id", sa.String(24), primary_key=True),
    sa.Column("version_id", sa.String(24), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Column("categories", sa.Text, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Index("ix_datasets_created", "created", "id"),
    sa.Index("uq_datasets_version", "version_id", unique=True),
)
# the model artifact of each deployment (LargeBinary: BLOB / BYTEA)
deployment_models = sa.Table(
    "deployment_models", metadata,
    sa.Column("deployment_id", sa.String(24), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("task", sa.String(16), nullable=False),
    sa.Column("target_name", sa.String(255), nullable=False),
    sa.Column("class_names", sa.Text, nullable=False),
    sa.Column("feature_names", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("artifact", sa.LargeBinary, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
)
# one row per schema version applied (kept outside ``metadata``: it exists before the rest)
schema_version = sa.Table("schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False))
