"""Benchmark: ``validate_paths`` over 10,000 manifests in 1,000 files, against the naive approach.

Not a test: it prints numbers. Run ``python bench/bench_validate.py [--files N] [--per-file M]``.

(a) ``reconciler.specs.validate.validate_paths([dir])`` end to end (load with positions, compiled
    validator on the fast path, precise messages only for invalid documents, semantic checks);
(b) the naive approach: ``yaml.safe_load_all`` + ``jsonschema.validate(doc, schema, registry=...)``
    per document, which rebuilds a validator for every document.

Target for (a): under 5 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from reconciler.contract import schemas, validators
from reconciler.specs.validate import validate_paths

HEX = "0123456789abcdef"


def _hex_id(rng: random.Random) -> str:
    return "".join(rng.choice(HEX) for _ in range(24))


def _intake(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["s3", "azure", "gcp", "jdbc", "dataset", "snowflake", "bigquery", "datasphere"])
    cred = _hex_id(rng)
    if kind == "s3":
        return {"type": "s3", "url": f"s3://bucket-{rng.randrange(99)}/in.csv", "credentialId": cred, "format": "csv"}
    if kind == "azure":
        return {"type": "azure", "url": "https://acct.blob.core.windows.net/c/in.csv", "credentialId": cred}
    if kind == "gcp":
        return {"type": "gcp", "url": "gs://bucket/in.parquet", "format": "parquet"}
    if kind == "jdbc":
        base = {"type": "jdbc", "dataStoreId": _hex_id(rng), "credentialId": cred, "fetchSize": 1000}
        return {**base, "table": "scoring_input", "schema": "public"} if rng.random() < 0.5 else {
            **base, "query": "SELECT * FROM t WHERE d > now() - interval '1 day'"}
    if kind == "dataset":
        return {"type": "dataset", "datasetId": _hex_id(rng)}
    if kind == "snowflake":
        return {"type": "snowflake", "dataStoreId": _hex_id(rng), "externalStage": "my_stage", "table": "t",
                "cloudStorageType": "s3", "cloudStorageCredentialId": cred}
    if kind == "bigquery":
        return {"type": "bigquery", "dataset": "ds", "table": "t", "bucket": "staging", "credentialId": cred}
    return {"type": "datasphere", "dataStoreId": _hex_id(rng), "table": "t", "schema": "s"}


def _output(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["s3", "gcp", "azure", "jdbc", "synapse", "bigquery"])
    if kind == "s3":
        return {"type": "s3", "url": "s3://bucket/out/", "credentialId": _hex_id(rng)}
    if kind == "gcp":
        return {"type": "gcp", "url": "gs://bucket/out.csv"}
    if kind == "azure":
        return {"type": "azure", "url": "https://acct.blob.core.windows.net/c/out.csv"}
    if kind == "jdbc":
        statement = rng.choice(["insert", "update", "insert_update", "create_table"])
        out: dict[str, Any] = {"type": "jdbc", "dataStoreId": _hex_id(rng), "table": "scores",
                               "statementType": statement, "createTableIfNotExists": True}
        if statement == "update":
            out |= {"updateColumns": ["score"], "whereColumns": ["id"]}
        elif statement == "insert_update":
            out |= {"whereColumns": ["id"]}
        return out
    if kind == "synapse":
        return {"type": "synapse", "dataStoreId": _hex_id(rng), "externalDataSource": "src", "table": "scores",
                "statementType": "insert"}
    return {"type": "bigquery", "dataset": "ds", "table": "scores", "bucket": "staging"}


def _schedule(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.4:
        return {"cron": rng.choice(["0 2 * * 1-5", "*/15 * * * *", "30 6 1,15 * *", "@daily", "0 0 * jan-mar sun"])}
    return {"minute": [rng.randrange(60)], "hour": ["*"] if rng.random() < 0.3 else [rng.randrange(24)],
            "dayOfMonth": ["*"], "month": ["*"] if rng.random() < 0.7 else ["jan", "jul"],
            "dayOfWeek": ["*"] if rng.random() < 0.5 else ["mon", "fri"]}


def manifest(rng: random.Random, name: str, *, invalid: bool) -> dict[str, Any]:
    job: dict[str, Any] = {"deploymentId": _hex_id(rng), "numConcurrent": rng.randint(1, 8),
                           "intakeSettings": _intake(rng), "outputSettings": _output(rng)}
    if rng.random() < 0.3:
        job["passthroughColumnsSet"] = "all"
    if rng.random() < 0.3:
        job["maxExplanations"] = rng.randint(0, 10)
        job["predictionThreshold"] = round(rng.random(), 2)
    if rng.random() < 0.2:
        job["csvSettings"] = {"delimiter": "tab", "encoding": "utf-8"}
    enabled = rng.random() < 0.8
    spec: dict[str, Any] = {"enabled": enabled, "schedule": _schedule(rng), "batchPredictionJob": job}
    if invalid:
        breakage = rng.choice(["snake", "range", "url", "enum"])
        if breakage == "snake":
            job["num_concurrent"] = job.pop("numConcurrent")
        elif breakage == "range":
            job["predictionThreshold"] = 1.5
        elif breakage == "url":
            job["intakeSettings"] = {"type": "s3", "url": "http://nope"}
        else:
            job["outputSettings"] = {"type": "ftp"}
    return {"apiVersion": "reconciler.io/v1alpha1", "kind": "BatchPredictionJobDefinition",
            "metadata": {"name": name, "labels": {"team": "growth", "tier": rng.choice(["gold", "silver"])}},
            "spec": spec}


def generate(root: Path, *, files: int, per_file: int, invalid_every: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    invalid = 0
    for f in range(files):
        docs = []
        for d in range(per_file):
            n = f * per_file + d
            bad = invalid_every > 0 and n % invalid_every == invalid_every - 1
            invalid += bad
            docs.append(manifest(rng, f"def-{n:05d}", invalid=bad))
        sub = root / f"team-{f % 10}"
        sub.mkdir(exist_ok=True)
        (sub / f"defs-{f:04d}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
    return invalid


def naive(root: Path) -> int:
    schema = schemas.get("manifest")
    registry = validators.registry()
    bad = 0
    for path in sorted(root.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            try:
                jsonschema.validate(doc, schema, registry=registry)  # type: ignore[call-arg]
            except jsonschema.ValidationError:
                bad += 1
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--per-file", type=int, default=10)
    parser.add_argument("--invalid-every", type=int, default=500, help="every Nth manifest is broken (0: none)")
    parser.add_argument("--profile", action="store_true", help="profile (a) and print the top functions")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as tmp:
        root = Path(tmp)
        invalid = generate(root, files=args.files, per_file=args.per_file, invalid_every=args.invalid_every)
        total = args.files * args.per_file
        print(f"{total} manifests in {args.files} files ({invalid} invalid) under {root}")
        # warm-up outside the timing: schema loading and validator compilation happen once per process
        validators.fast_validator("manifest")
        validators.validator("manifest")

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        report = validate_paths([root])
        fast, fast_cpu = time.perf_counter() - start, time.process_time() - cpu
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        print(f"(a) validate_paths:                 {fast:7.2f} s  ({total / fast:8.0f} manifests/s), "
              f"cpu {fast_cpu:.2f} s, {report.checked} checked, {len(report.errors)} errors, {len(report.warnings)} warnings "
              f"[target < 5 s: {'met' if fast < 5 else 'MISSED'}]")
        if args.skip_naive:
            return 0
        start, cpu = time.perf_counter(), time.process_time()
        bad = naive(root)
        slow, slow_cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"(b) safe_load_all + jsonschema.validate: {slow:7.2f} s  ({total / slow:8.0f} manifests/s), {bad} invalid")
        print(f"ratio (b)/(a): {slow / fast:.1f}x wall, {slow_cpu / fast_cpu:.1f}x cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
