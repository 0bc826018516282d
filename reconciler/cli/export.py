"""``reconciler export``: manifests from the live definitions (plan on them shows no changes)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from reconciler.api.refs import Catalog
from reconciler.cli import options as o
from reconciler.cli.console import EXIT_OK, exit_codes, setup_logging, stderr_console
from reconciler.contract import validators
from reconciler.contract.refs import KINDS
from reconciler.engine.normalize import manifest_from_live
from reconciler.engine.refs import to_references
from reconciler.errors import ReconcilerError, UsageError
from reconciler.session import Options, Session, run
from reconciler.specs.files import read_limited

__all__ = ["register"]


def _same_text(path: Path, text: str) -> bool:
    """Whether the regular file at ``path`` holds exactly ``text`` (read no further than that)."""
    encoded = text.encode("utf-8")
    try:
        return read_limited(path, limit=len(encoded), what="file") == encoded
    except OSError:  # over the length, not a regular file, unreadable: not the same
        return False


def manifests_from_live(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One manifest per live definition, with unique ``metadata.name`` values (a clash gets -2,
    -3, ...); a warning for one the schema would reject."""
    docs, used = [], set()
    for item in sorted(items, key=lambda i: (str(i.get("name")), str(i.get("id")))):
        doc = manifest_from_live(item)
        label = doc["metadata"]["name"]
        n = 2
        while doc["metadata"]["name"] in used:
            doc["metadata"]["name"] = f"{label[:58]}-{n}"
            doc["spec"].setdefault("name", str(item.get("name")))
            n += 1
        used.add(doc["metadata"]["name"])
        if not validators.fast_validator("manifest").is_valid(doc):
            stderr_console().print(f"warning: {item.get('name')!r} [id {item.get('id')}] exports to a manifest "
                                   "the schema rejects; run `reconciler validate` on it", markup=False)
        docs.append(doc)
    return docs


def keep_known_metadata(doc: dict[str, Any], path: Path) -> None:
    """Labels and annotations live only in git (the API has none): when ``path`` already holds the
    manifest of the same definition, its ``metadata.labels`` and ``annotations`` are kept, so a
    re-export neither loses them nor differs from the file because of them."""
    from reconciler.specs.load import max_file_bytes

    if not path.is_file():
        return
    try:
        old = yaml.safe_load(read_limited(path, limit=max_file_bytes(), what="manifest").decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ReconcilerError):
        return  # not a manifest we can read: write_manifests decides about overwriting it
    if not isinstance(old, dict) or old.get("kind") != doc["kind"] or not isinstance(old.get("metadata"), dict):
        return
    old_spec = old["spec"] if isinstance(old.get("spec"), dict) else {}
    if (old_spec.get("name") or old["metadata"].get("name")) != (doc["spec"].get("name") or doc["metadata"]["name"]):
        return
    for key in ("labels", "annotations"):
        if isinstance(old["metadata"].get(key), dict) and old["metadata"][key]:
            doc["metadata"][key] = old["metadata"][key]


def write_manifests(docs: list[dict[str, Any]], out_dir: Path, *, force: bool) -> int:
    """Write one file per manifest; nothing is written when a file that differs would be
    overwritten without ``force``, or when something there is not a regular file. Returns how
    many existing files were overwritten."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file; give a directory (it is created if missing)")
    for doc in docs:
        keep_known_metadata(doc, out_dir / f"{doc['metadata']['name']}.yaml")
    files = {out_dir / f"{doc['metadata']['name']}.yaml": yaml.safe_dump(doc, sort_keys=False) for doc in docs}
    special = [str(path) for path in files if os.path.lexists(path) and not path.is_file()]
    if special:  # a FIFO there would block the write; a device or a directory is no manifest
        raise UsageError(f"export would write over something that is not a regular file: {', '.join(special[:5])}; "
                         "nothing was written. Export into an empty directory")
    clobbered = [str(path) for path, text in files.items() if path.exists() and not _same_text(path, text)]
    if clobbered and not force:
        shown = ", ".join(clobbered[:5]) + (f" and {len(clobbered) - 5} more" if len(clobbered) > 5 else "")
        raise UsageError(f"export would overwrite {len(clobbered)} existing file(s) that differ: {shown}; "
                         "nothing was written. Export into an empty directory, or pass --force to overwrite them")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename}: {exc.strerror}") from None
    return len(clobbered)


def register(app: typer.Typer) -> None:
    @app.command()
    @o.api_flags(without=("concurrency",))
    def export(
        search: Annotated[str | None, typer.Option("--search", help="Only definitions whose name contains this.")] = None,
        out_dir: Annotated[Path | None, typer.Option("--out", help="Directory for one manifest file each "
                                                     "(default: all on stdout).")] = None,
        force: Annotated[bool, typer.Option("--force", help="With --out: overwrite existing files that "
                                            "differ.")] = False,
        refs: Annotated[bool, typer.Option("--refs", help="Write deploymentRef/credentialRef/dataStoreRef by name "
                                           "where the name is unique on the target (else the id).")] = False,
        api: Options = Options(), verbose: o.VerboseOpt = False,
    ) -> None:
        """Write manifests from live definitions (plan on them shows no changes).

        With --out, an existing file that differs from what would be written is never overwritten
        without --force: nothing is written and the files are named.

        Exit 0 on success, 1 on an error.
        """
        setup_logging(verbose)
        options = o.session_options(None, default=out_dir or Path("."), api=api)
        with exit_codes():
            session = Session.open(options, check_paths=False)

            async def work() -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, str]]] | None]:
                async with session.client() as client:
                    items = await client.list_definitions(search_name=search)
                    return items, (await Catalog(client).load(sorted(KINDS)) if refs and items else None)

            items, catalog = run(work())
            docs = manifests_from_live(items)
            if catalog is not None:
                for doc in docs:
                    spec = doc["spec"]
                    spec["batchPredictionJob"] = to_references(spec["batchPredictionJob"], catalog)
            if out_dir is None:
                sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True) if docs else "")
            else:
                clobbered = write_manifests(docs, out_dir, force=force)
                stderr_console().print(f"Wrote {len(docs)} manifest(s) to {out_dir}"
                                       + (f" ({clobbered} overwritten)" if clobbered else ""), markup=False)
        raise typer.Exit(EXIT_OK)
