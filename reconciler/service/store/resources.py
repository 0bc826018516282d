"""Deployments, credentials and data stores (one table, ids unique across the three kinds) and
the credentials' secrets, which live in a table of their own that no renderer reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from reconciler.service import errors
from reconciler.service.records import Page, Reference, ResourceRecord
from reconciler.service.store.database import Database, dump, escape_like, load
from reconciler.service.store.tables import credential_secrets, definition_refs, resources

_ROUTE = {"deployment": "deployments/", "credential": "credentials/", "dataStore": "externalDataStores/"}


def check_refs(conn: Connection, refs: Sequence[Reference]) -> None:
    if not refs:
        return
    wanted = {ref.ref_id for ref in refs}
    rows = conn.execute(sa.select(resources.c.id, resources.c.kind).where(resources.c.id.in_(wanted))).all()
    found = {(row.kind, row.id) for row in rows}
    missing = [ref for ref in refs if (ref.kind, ref.ref_id) not in found]
    if missing:
        raise errors.HTTPMissingReferences(missing)


class Resources(Database):
    """Queries of the resources aggregate (with the credentials' secrets)."""

    @staticmethod
    def _resource(row: Any) -> ResourceRecord:
        return ResourceRecord(id=row.id, kind=row.kind, name=row.name, body=load(row.body),
                              created=row.created, created_by=load(row.created_by))

    def create_resource(self, record: ResourceRecord) -> ResourceRecord:
        try:
            with self._write() as conn:
                conn.execute(sa.insert(resources).values(
                    id=record.id, kind=record.kind, name=record.name, body=dump(record.body),
                    created=record.created, created_by=dump(record.created_by)))
        except sa.exc.IntegrityError:
            raise errors.HTTPConflict(f"id {record.id} is already used", errors={
                "id": "ids are unique across deployments, credentials and data stores; omit id to get a new one"
            }) from None
        return record

    def get_resource(self, kind: str, resource_id: str) -> ResourceRecord:
        with self._read() as conn:
            row = conn.execute(sa.select(resources).where(resources.c.id == resource_id,
                                                          resources.c.kind == kind)).first()
        if row is None:
            raise errors.HTTPNotFound(f"no {kind} with id {resource_id!r}", errors={"id": f"list them with GET {_ROUTE[kind]}"})
        return self._resource(row)

    def _body_text(self, key: str) -> sa.ColumnElement[str]:
        """One string field of the stored JSON body, in SQL (SQLite's json_extract, PostgreSQL's ->>)."""
        if self.dialect == "postgresql":
            field: sa.ColumnElement[str] = sa.cast(resources.c.body, postgresql.JSON)[key].astext
            return field
        return sa.func.json_extract(resources.c.body, f"$.{key}", type_=sa.String)

    def list_resources(self, kind: str, *, offset: int, limit: int, search: str | None = None,
                       search_description: bool = False, types: Sequence[str] | None = None) -> Page:
        """One kind, oldest first. ``search``: a case-insensitive substring of the name (and of the
        description with ``search_description``); ``types``: the body's ``type`` is one of these."""
        where: list[sa.ColumnElement[bool]] = [resources.c.kind == kind]
        if search:
            pattern = f"%{escape_like(search.lower())}%"
            found: sa.ColumnElement[bool] = sa.func.lower(resources.c.name).like(pattern, escape="\\")
            if search_description:
                described = sa.func.lower(sa.func.coalesce(self._body_text("description"), "")).like(pattern,
                                                                                                    escape="\\")
                found = sa.or_(found, described)
            where.append(found)
        if types is not None:
            where.append(self._body_text("type").in_(list(types)))
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(resources).where(*where)).scalar_one()
            rows = conn.execute(sa.select(resources).where(*where)
                                .order_by(resources.c.created, resources.c.id).offset(offset).limit(limit)).all()
        return Page([self._resource(row) for row in rows], int(total))

    def delete_resource(self, kind: str, resource_id: str) -> None:
        """Refused (409) while a definition refers to it, so a stored definition never dangles."""
        with self._write() as conn:
            row = conn.execute(sa.select(resources.c.id).where(resources.c.id == resource_id,
                                                               resources.c.kind == kind)).first()
            if row is None:
                raise errors.HTTPNotFound(f"no {kind} with id {resource_id!r}",
                                      errors={"id": f"list them with GET {_ROUTE[kind]}"})
            users = conn.execute(sa.select(definition_refs.c.definition_id).where(
                definition_refs.c.ref_id == resource_id, definition_refs.c.kind == kind).distinct()).scalars().all()
            if users:
                shown = ", ".join(sorted(users)[:5])
                raise errors.HTTPConflict(f"{kind} {resource_id} is used by {len(users)} job definition(s): {shown}",
                                      errors={"id": "update or delete those definitions first"})
            conn.execute(sa.delete(resources).where(resources.c.id == resource_id))
            conn.execute(sa.delete(credential_secrets).where(credential_secrets.c.credential_id == resource_id))

    def create_credential(self, record: ResourceRecord, secret: dict[str, Any]) -> ResourceRecord:
        """A credential and its secret in one transaction; the secret lives in its own table so
        that no response renderer ever sees it."""
        try:
            with self._write() as conn:
                conn.execute(sa.insert(resources).values(
                    id=record.id, kind=record.kind, name=record.name, body=dump(record.body),
                    created=record.created, created_by=dump(record.created_by)))
                if secret:
                    conn.execute(sa.insert(credential_secrets).values(credential_id=record.id, secret=dump(secret)))
        except sa.exc.IntegrityError:
            raise errors.HTTPConflict(f"id {record.id} is already used", errors={
                "id": "ids are unique across deployments, credentials and data stores; omit id to get a new one"
            }) from None
        return record

    def get_credential_secret(self, credential_id: str) -> dict[str, Any]:
        """The secret fields of a credential (for adapters only); {} when it has none."""
        self.get_resource("credential", credential_id)  # 404 with a hint when it does not exist
        with self._read() as conn:
            text = conn.execute(sa.select(credential_secrets.c.secret)
                                .where(credential_secrets.c.credential_id == credential_id)).scalar()
        return {} if text is None else dict(load(text))
