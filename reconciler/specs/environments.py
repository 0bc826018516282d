"""Environments: one set of manifests, several targets (``dev``, ``prod``, ...). Pure apart from
reading overlay files.

Why: the same definition usually runs against several installations with a few different values
(a deployment id, a bucket, a concurrency). Copying manifests per environment drifts; templating
engines hide what is applied. Two small, explicit mechanisms cover the need, and everything they
produce goes through the same validation as a plain manifest.

The project config (``reconciler.yaml``) names the targets::

    targets:
      dev:
        endpoint: https://dev.example.com/api/v2
        tokenFrom: {env: DEV_API_TOKEN}        # or {file: PATH}; never the token itself
        scope: {namePrefix: "dev-"}            # optional, wins over the project's scope
        variables: {ENV: dev, BUCKET: acme-dev, CONCURRENCY: 1}
      prod:
        endpoint: https://app.example.com/api/v2
        tokenFrom: {env: PROD_API_TOKEN}
        variables: {ENV: prod, BUCKET: acme-prod, CONCURRENCY: 8}
        overlays: overlays/prod                # optional; this is the default for target prod

1. **Variables.** ``${NAME}`` in any string *value* of a manifest (not in keys) is replaced by
   the target's variable ``NAME`` (``[A-Za-z_][A-Za-z0-9_]*``). A value that is exactly one
   placeholder takes the variable's type (``numConcurrent: ${CONCURRENCY}`` becomes the integer
   8); inside a longer string the variable is formatted as YAML would write it (``true``, ``8``).
   ``$${NAME}`` is the literal text ``${NAME}``; any other ``$`` is left alone. An unknown
   variable or a malformed placeholder (``${}``, ``${a-b}``, an unclosed ``${``) is an error at
   the value's ``file:line:col``. Variables come only from the config, never from the process
   environment, so a plan is the same on every machine.
2. **Overlays.** The file ``DIR/<metadata.name>.yaml`` (or ``.yml``; the name after
   substitution), if present, where ``DIR``
   is the target's ``overlays:`` or, by default, ``overlays/<target>`` beside the config, is a
   partial manifest merged into that manifest with JSON Merge Patch semantics
   (RFC 7386): mappings merge key by key, any other value (lists included) replaces, and
   ``null`` deletes the key. Overlays are substituted too, with their own positions. An overlay
   cannot change ``apiVersion``, ``kind`` or ``metadata.name``; an overlay that matches no
   manifest is a warning (a typo, or a manifest not in this run).

Positions: a merged document keeps the base file's positions; a value set by an overlay points
into the overlay file once :func:`relocate_issues` has run over the validation issues (a
:class:`~reconciler.specs.validate.Issue` carries one file per document, hence the second step).
:func:`validate_for_target` does load, environment, validation and relocation in one call.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.contract.issues import Issue, Mark, Path_, dotted, suggest_key
from reconciler.specs import secrets
from reconciler.specs.config import DEFAULT_TARGET, VARIABLE_NAME, Scalar, TargetConfig, TargetError
from reconciler.specs.files import read_limited
from reconciler.specs.load import LoadedDocument, load_bytes, load_paths, max_file_bytes
from reconciler.specs.validate import ValidationReport, problem_issues, validate_documents

__all__ = [
    "OverlaidDocument",
    "Scalar",
    "TargetError",
    "apply_environment",
    "default_target",
    "merge_patch",
    "relocate_issues",
    "resolve_target",
    "substitute",
    "unused_overlay_issues",
    "validate_for",
    "validate_for_target",
]

_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)(\}?)")
_FIXED_PATHS: tuple[Path_, ...] = (("apiVersion",), ("kind",), ("metadata", "name"))


def resolve_target(config_targets: Mapping[str, TargetConfig] | None, name: str | None) -> TargetConfig:
    """The parsed target called ``name``; with no name, the only target, or an empty default when
    there are none. Chooses, never parses: :func:`reconciler.specs.config.parse_config` did that once."""
    targets = dict(config_targets or {})
    if name is None:
        if not targets:
            return TargetConfig(name=DEFAULT_TARGET)
        if len(targets) > 1:
            raise TargetError(f"several targets are configured ({', '.join(sorted(targets))}); "
                              "choose one with --target NAME")
        name = next(iter(targets))
    if name not in targets:
        known = sorted(targets)
        hint = suggest_key(name, known) if known else "add a `targets:` section to reconciler.yaml"
        raise TargetError(f"no target named {name!r} (known: {', '.join(known) or 'none'}); {hint}")
    return targets[name]


def default_target(config_targets: Mapping[str, TargetConfig] | None) -> TargetConfig:
    """What a run without ``--target`` sees: the embedded local service, with no variables and no
    overlays, so that a placeholder is an error that says to choose a target."""
    known = ", ".join(sorted(config_targets or {})) or "none configured"
    return TargetConfig(name=DEFAULT_TARGET, use_overlays=False,
                        unknown_hint=f"no --target was given; choose one with --target NAME "
                                     f"(known: {known}) to fill in ${{...}} placeholders")


def _as_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute(text: str, variables: Mapping[str, Scalar]) -> tuple[Any, list[tuple[int, str, str | None]]]:
    """``text`` with its placeholders replaced, and problems as ``(offset, message, hint)``. Pure.

    A string that is exactly one placeholder becomes the variable's own value, typed.
    """
    if "$" not in text:
        return text, []
    problems: list[tuple[int, str, str | None]] = []
    out: list[str] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(text):
        out.append(text[pos:match.start()])
        pos = match.end()
        if match.group(0) == "$${":
            out.append("${")
            continue
        name, closed = match.group(1), match.group(2)
        if not closed:
            problems.append((match.start(), f"unclosed placeholder in {text!r}", "write ${NAME}, or $${ for a literal ${"))
            out.append(match.group(0))
            continue
        if not VARIABLE_NAME.match(name):
            problems.append((match.start(), f"malformed placeholder ${{{name}}}",
                             "a variable name has letters, digits and _; write $${ for a literal ${"))
            out.append(match.group(0))
            continue
        if name not in variables:
            known = sorted(variables)
            hint = suggest_key(name, known) if known else "this target defines no variables"
            problems.append((match.start(), f"unknown variable ${{{name}}}", hint))
            out.append(match.group(0))
            continue
        if match.start() == 0 and match.end() == len(text):
            return variables[name], problems
        out.append(_as_text(variables[name]))
    out.append(text[pos:])
    return "".join(out), problems


def _substitute_tree(value: Any, path: Path_, doc: LoadedDocument, variables: Mapping[str, Scalar],
                     issues: list[Issue], target: str, unknown_hint: str | None = None) -> Any:
    if isinstance(value, str):
        new, problems = substitute(value, variables)
        for _offset, message, hint in problems:
            mark = doc.mark(path)
            if unknown_hint and message.startswith("unknown variable"):
                hint = unknown_hint
            issues.append(Issue(doc.file, mark.line, mark.col, dotted(path), f"{message} (target {target!r})", hint))
        return new
    if isinstance(value, dict):
        return {k: _substitute_tree(v, (*path, k), doc, variables, issues, target, unknown_hint)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_tree(v, (*path, i), doc, variables, issues, target, unknown_hint)
                for i, v in enumerate(value)]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: a new value, neither argument is changed. Pure."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass(slots=True)
class OverlaidDocument(LoadedDocument):
    """A manifest with an overlay merged in: ``overlay_file`` and the overlay's own positions, so
    that an issue about a value the overlay set can be pointed at the overlay (:func:`relocate_issues`)."""

    overlay_file: str = ""
    overlay_values: dict[Path_, Mark] = field(default_factory=dict)
    overlay_keys: dict[Path_, Mark] = field(default_factory=dict)
    replaced: frozenset[Path_] = frozenset()  # paths whose value (or absence) the overlay decided

    def overlay_mark(self, path: Path_) -> Mark | None:
        """The overlay position of ``path`` or of its nearest parent the overlay set, if any."""
        probe = tuple(path)
        while probe:
            if probe in self.overlay_values:
                return self.overlay_values[probe]
            if probe in self.overlay_keys:
                return self.overlay_keys[probe]
            probe = probe[:-1]
        return None


def _overlay_file(directory: Path, name: str) -> Path | None:
    for suffix in (".yaml", ".yml"):
        candidate = directory / f"{name}{suffix}"
        if os.path.lexists(candidate):  # a FIFO or a broken link there is an error, never a skipped overlay
            return candidate
    return None


def _read_overlay(path: Path) -> tuple[LoadedDocument | None, list[Issue]]:
    file = str(path)
    try:
        raw = read_limited(path, limit=max_file_bytes(), what="overlay file")
    except OSError as exc:
        return None, [Issue(file, 1, 1, "", f"cannot read overlay: {exc.strerror}", getattr(exc, "hint", None))]
    docs, errors = load_bytes(raw, file=file)
    if errors:
        return None, [Issue(e.file, e.line, e.col, "", e.message, e.hint) for e in errors]
    if len(docs) != 1:
        return None, [Issue(file, 1, 1, "", f"an overlay holds exactly one YAML document, found {len(docs)}",
                            "split it: one overlay file per manifest, named <metadata.name>.yaml")]
    problems = problem_issues(docs[0])
    return (None, problems) if problems else (docs[0], [])


def _fixed_field_issues(base: dict[str, Any], overlay: LoadedDocument) -> list[Issue]:
    issues = []
    for path in _FIXED_PATHS:
        value: Any = overlay.data
        for part in path:
            value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            continue
        current: Any = base
        for part in path:
            current = current.get(part) if isinstance(current, dict) else None
        if value != current:
            mark = overlay.mark(path)
            issues.append(Issue(overlay.file, mark.line, mark.col, dotted(path),
                                f"an overlay cannot change {dotted(path)} (manifest has {current!r}, overlay {value!r})",
                                "remove the field from the overlay; overlays are matched by metadata.name"))
    return issues


_MISSING = object()


def _marks_outside(table: dict[Path_, Mark], replaced: set[Path_]) -> dict[Path_, Mark]:
    """Base positions minus those under a path the overlay replaced or deleted."""
    def covered(path: Path_) -> bool:
        return any(path[:len(p)] == p for p in replaced)
    return {p: m for p, m in table.items() if not covered(p)}


def _replaced_paths(base: Any, patch: Any, path: Path_ = ()) -> set[Path_]:
    """Paths whose base subtree the patch replaces wholesale or deletes (not merges into)."""
    out: set[Path_] = set()
    if not isinstance(patch, dict):
        return out
    for key, value in patch.items():
        child = (*path, key)
        if isinstance(value, dict) and isinstance(base, dict) and isinstance(base.get(key), dict):
            out |= _replaced_paths(base[key], value, child)
        else:
            out.add(child)
    return out


def _positioned(cls: type[OverlaidDocument], doc: LoadedDocument, data: dict[str, Any], *,
                values: dict[Path_, Mark], keys: dict[Path_, Mark], **extra: Any) -> OverlaidDocument:
    """A document with explicit positions, whether the loader stores them eagerly or lazily."""
    names = {f.name for f in dataclasses.fields(LoadedDocument)}
    kwargs: dict[str, Any] = {"file": doc.file, "index": doc.index, "data": data, "line": doc.line, "col": doc.col,
                              "problems": doc.problems}
    prefix = "" if "values" in names else "_"
    kwargs[prefix + "values"], kwargs[prefix + "keys"] = values, keys
    return cls(**kwargs, **extra)


def apply_environment(docs: list[LoadedDocument], target: TargetConfig, *, overlays_root: Path | None,
                      refused: list[LoadedDocument] | None = None,
                      unused_warnings: bool = True) -> tuple[list[LoadedDocument], list[Issue]]:
    """Each manifest as ``target`` sees it: overlay merged, placeholders substituted.

    ``overlays_root`` is the directory a relative ``overlays:`` path is resolved against (the
    directory of ``reconciler.yaml``); ``None`` means the working directory. A document with an
    error is left out of the result, so that no partial set is ever planned; every error is in
    the issues, located in the file (manifest or overlay) that holds the mistake. Such documents
    go to ``refused`` when given (their names still count for duplicates). ``unused_warnings``:
    warn of overlays no document used (off when called one file at a time; see
    :func:`unused_overlay_issues`).
    """
    directory: Path | None = target.overlays_dir(root=overlays_root) if target.use_overlays else None
    issues: list[Issue] = []
    out: list[LoadedDocument] = []
    used: set[Path] = set()
    for doc in docs:
        doc_issues: list[Issue] = []
        data = _substitute_tree(doc.data, (), doc, target.variables, doc_issues, target.name, target.unknown_hint)
        overlay_doc: LoadedDocument | None = None
        name = data["metadata"].get("name") if isinstance(data.get("metadata"), dict) else None
        if isinstance(name, str) and name and directory is not None:
            path = _overlay_file(directory, name)
            if path is not None:
                used.add(path.resolve())
                overlay_doc, read_issues = _read_overlay(path)
                doc_issues.extend(read_issues)
        if overlay_doc is not None:
            doc_issues.extend(_fixed_field_issues(data, overlay_doc))
            patch = _substitute_tree(overlay_doc.data, (), overlay_doc, target.variables, doc_issues, target.name,
                                     target.unknown_hint)
            replaced = _replaced_paths(data, patch)
            merged = merge_patch(data, patch)
            result: LoadedDocument = _positioned(
                OverlaidDocument, doc, merged, values=_marks_outside(doc.values, replaced),
                keys=_marks_outside(doc.keys, replaced), overlay_file=overlay_doc.file,
                overlay_values=dict(overlay_doc.values), overlay_keys=dict(overlay_doc.keys),
                replaced=frozenset(replaced))
        else:
            result = dataclasses.replace(doc, data=data)  # same shape, so the same positions
        issues.extend(doc_issues)
        if not any(i.severity == "error" for i in doc_issues):
            out.append(result)
        elif refused is not None:
            refused.append(result)
    if unused_warnings:
        issues.extend(unused_overlay_issues(directory, used, target))
    return out, issues


def unused_overlay_issues(directory: Path | None, used: set[Path], target: TargetConfig) -> list[Issue]:
    """A warning for each overlay in ``directory`` that no manifest used (``used``: resolved paths)."""
    issues = []
    if directory is not None and directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file() and path.resolve() not in used:
                issues.append(Issue(str(path), 1, 1, "", f"overlay {path.name!r} matches no manifest of this run "
                                    f"(target {target.name!r})",
                                    "an overlay is named after the manifest's metadata.name", severity="warning"))
    return issues


def relocate_issues(issues: Iterable[Issue], docs: Sequence[LoadedDocument]) -> list[Issue]:
    """Issues about values an overlay set, pointed at the overlay file instead of the manifest.

    An issue is matched to its document by file and field (the dotted path of a value the overlay
    replaced, or of something under it) and confirmed by position: the merged document has no
    base position under a replaced path, so the issue stands at the nearest base parent.
    """
    by_file: dict[str, list[OverlaidDocument]] = {}
    for doc in docs:
        if isinstance(doc, OverlaidDocument):
            by_file.setdefault(doc.file, []).append(doc)
    out = []
    for issue in issues:
        moved = issue
        for doc in by_file.get(issue.file, ()):
            path = _replaced_prefix(issue.field, doc)
            if path is None:
                continue
            here = {(m.line, m.col) for m in (doc.mark(path), doc.mark(path, key=True))}
            if (issue.line, issue.col) not in here:
                continue
            exact = next((p for p in (*doc.overlay_values, *doc.overlay_keys) if dotted(p) == issue.field), path)
            mark = doc.overlay_mark(exact) or Mark(1, 1)
            moved = Issue(doc.overlay_file, mark.line, mark.col, issue.field, issue.message, issue.hint,
                          issue.severity)
            break
        out.append(moved)
    return out


def _replaced_prefix(field_text: str, doc: OverlaidDocument) -> Path_ | None:
    """The longest path the overlay replaced that is ``field_text`` or holds it."""
    best: Path_ | None = None
    for path in doc.replaced:
        text = dotted(path)
        if (field_text == text or (field_text.startswith(text) and field_text[len(text):][:1] in (".", "["))) and (
                best is None or len(path) > len(best)):
            best = path
    return best


def validate_for_target(paths: Iterable[str | os.PathLike[str]], target: TargetConfig, *, overlays_root: Path | None,
                        secret_roots: Sequence[str | os.PathLike[str]] | None = None) -> ValidationReport:
    """Load, apply the environment, validate, relocate: ``reconciler validate --target`` in one call.

    ``secret_roots`` default: the manifest roots ``paths`` name."""
    paths = list(paths)
    loaded = load_paths(paths)
    refused: list[LoadedDocument] = []
    docs, env_issues = apply_environment(loaded.documents, target, overlays_root=overlays_root, refused=refused)
    roots = secrets.manifest_roots(paths) if secret_roots is None else secret_roots
    report = validate_documents(docs, loaded.errors, files=loaded.files, secret_roots=roots, refused=refused)
    report.issues = relocate_issues([*report.issues, *env_issues], docs)
    report.issues.sort(key=lambda i: (i.file, i.line, i.col, i.field))
    report.checked = len(loaded.documents)
    return report


def validate_for(paths: Iterable[str | os.PathLike[str]], *, targets: Mapping[str, TargetConfig] | None,
                 target_name: str | None, overlays_root: Path | None,
                 secret_roots: Sequence[str | os.PathLike[str]] | None = None) -> ValidationReport:
    """What every command validates: with a named target, the manifests with its variables and
    overlays applied; without one, as the default target (the embedded local service) sees them:
    no variables, so a placeholder is an error saying to choose a target, or, when the config
    declares no targets at all, the plain manifests. Raises :class:`TargetError` for an unknown target.
    ``secret_roots``: where secret files may resolve (default: the manifest roots)."""
    from reconciler.specs.validate import validate_paths

    if target_name is None:
        if not targets:
            return validate_paths(paths, secret_roots=secret_roots)
        return validate_for_target(paths, default_target(targets), overlays_root=None, secret_roots=secret_roots)
    return validate_for_target(paths, resolve_target(targets, target_name), overlays_root=overlays_root,
                               secret_roots=secret_roots)
