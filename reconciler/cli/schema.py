"""``reconciler schema``: a JSON Schema, bundled into one document for editors."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from reconciler.cli.console import EXIT_OK, exit_codes
from reconciler.contract import schemas
from reconciler.errors import UsageError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("schema")
    def schema_command(
        name: Annotated[str, typer.Argument(help="Schema name; `reconciler schema --list` shows them.")] = "manifest",
        list_: Annotated[bool, typer.Option("--list", help="List schema names.")] = False,
        raw: Annotated[bool, typer.Option("--raw", help="The file as stored, with $refs to sibling files.")] = False,
    ) -> None:
        """Print a JSON Schema, bundled into one self-contained document for editors.

        Save it and point yaml-language-server at it:
        `reconciler schema > .reconciler/manifest.schema.json`, then in a manifest
        `# yaml-language-server: $schema=.reconciler/manifest.schema.json`.
        """
        if list_:
            for known in schemas.names():
                print(known)
            raise typer.Exit(EXIT_OK)
        with exit_codes():
            try:
                doc = schemas.get(name) if raw else schemas.bundle(name)
            except KeyError as exc:
                raise UsageError(exc.args[0]) from None
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
