"""Benchmark: what 10 policy rules add to ``validate`` over 10,000 manifests, for each CEL library
tried, against the naive approach (compiling every rule again for every document).

Not a test: it prints numbers. ``python bench/bench_policy.py [--docs N] [--sample M]``.

(a) what reconciler runs: :func:`reconciler.engine.policy.compile_policies` once, then
    :func:`~reconciler.engine.policy.with_manifest_issues` over the documents ``validate_paths``
    returned (Google's ``cel-expr-python``: one activation per document shared by its rules);
    printed beside ``validate_paths`` itself. Target: under 1 s for 10,000 x 10.
(b) the candidates on the same data and rules, each compiled once: ``cel-expr-python`` (Google's
    C++ runtime), ``common-expression-language`` (Rust bindings, one Context per document) and
    ``cel-python`` (pure Python, each document converted with json_to_cel). The slow ones run
    over ``--sample`` documents and the per-document time is scaled to ``--docs`` (printed as such).
(c) naive: cel-expr-python recompiling the 10 rules for every document (over ``--sample``, scaled).

Candidates that are not installed are reported as such (``pip install cel-python
common-expression-language``; the dev requirements have them).
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench_validate import generate

from reconciler.engine import policy
from reconciler.specs.policies import PolicyRule
from reconciler.specs.validate import validate_paths

# Ten rules of the kinds the README shows (every one applies to every document: the worst case).
RULES = {
    "max-concurrency": "!has(manifest.spec.batchPredictionJob.numConcurrent)"
                       " || manifest.spec.batchPredictionJob.numConcurrent <= 8",
    "intake-types": "manifest.spec.batchPredictionJob.intakeSettings.type in "
                    "['s3', 'azure', 'gcp', 'jdbc', 'dataset', 'snowflake', 'bigquery', 'datasphere']",
    "output-types": "manifest.spec.batchPredictionJob.outputSettings.type in "
                    "['s3', 'azure', 'gcp', 'jdbc', 'snowflake', 'bigquery', 'datasphere', 'localFile']",
    "office-hours": "schedule == null || !(schedule.daysOfWeek.exists(d, d >= 1 && d <= 5)"
                    " && schedule.hours.exists(h, h >= 8 && h < 18))",
    "team-label": "has(manifest.metadata.labels) && 'team' in manifest.metadata.labels",
    "name-prefix": "manifest.metadata.name.startsWith('def-')",
    "deployment-id": "manifest.spec.batchPredictionJob.deploymentId.matches('^[0-9a-f]{24}$')",
    "threshold": "!has(manifest.spec.batchPredictionJob.predictionThreshold)"
                 " || manifest.spec.batchPredictionJob.predictionThreshold >= 0.1",
    "explanations": "!has(manifest.spec.batchPredictionJob.maxExplanations)"
                    " || manifest.spec.batchPredictionJob.maxExplanations <= 10",
    "prod-target": "target != 'prod' || manifest.metadata.labels.tier != 'bronze'",
}


def _inputs(documents: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"manifest": d.data, "target": "prod", "schedule": policy.schedule_view(d.data),
             "labels": d.data["metadata"].get("labels", {})} for d in documents]


def _timed(run: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    violations = run()
    return time.perf_counter() - start, violations


def _google(inputs: Sequence[dict[str, Any]]) -> int:
    from cel_expr_python import cel

    env = cel.NewEnv(variables=dict.fromkeys(policy.MANIFEST_VARIABLES, cel.Type.DYN))
    programs = [env.compile(text) for text in RULES.values()]
    bad = 0
    for data in inputs:
        activation = env.Activation(data=data)
        bad += sum(p.eval(activation).value() is not True for p in programs)
    return bad


def _google_naive(inputs: Sequence[dict[str, Any]]) -> int:
    from cel_expr_python import cel

    env = cel.NewEnv(variables=dict.fromkeys(policy.MANIFEST_VARIABLES, cel.Type.DYN))
    bad = 0
    for data in inputs:
        bad += sum(env.compile(text).eval(data=data).value() is not True for text in RULES.values())
    return bad


def _rust(inputs: Sequence[dict[str, Any]]) -> int:
    cel: Any = importlib.import_module("cel")
    programs = [cel.compile(text) for text in RULES.values()]
    bad = 0
    for data in inputs:
        context = cel.Context(data)
        for program in programs:
            try:
                bad += program.execute(context) is not True
            except Exception:  # a missing key raises; a rule that cannot say yes says no
                bad += 1
    return bad


def _pure(inputs: Sequence[dict[str, Any]]) -> int:
    celpy: Any = importlib.import_module("celpy")
    env = celpy.Environment()
    programs = [env.program(env.compile(text)) for text in RULES.values()]
    bad = 0
    for data in inputs:
        activation = {key: celpy.json_to_cel(value) for key, value in data.items()}
        for program in programs:
            try:
                bad += not bool(program.evaluate(activation))  # a celtypes.BoolType
            except Exception:  # CELEvalError
                bad += 1
    return bad


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000, help="manifests (default 10,000)")
    parser.add_argument("--sample", type=int, default=500, help="documents for the slow candidates and naive")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, files=max(1, args.docs // 10), per_file=min(10, args.docs), invalid_every=0)
        seconds, _ = _timed(lambda: len(validate_paths([root]).documents))
        report = validate_paths([root])
    docs = report.documents
    load = os.getloadavg()[0]
    print(f"{len(docs)} manifests, {len(RULES)} rules, every rule applies to every manifest; "
          f"{os.cpu_count()} cores, load average {load:.1f} (timings scale with it)")
    print(f"validate_paths alone:                                {seconds:7.3f} s")

    rules = [PolicyRule(name=name, expression=text, message=name, severity="warn", file="bench.yaml", line=i + 1)
             for i, (name, text) in enumerate(RULES.items())]
    compile_s, compiled = _timed(lambda: len(policy.compile_policies(rules).manifest_rules))
    policies = policy.compile_policies(rules)
    judged, verdicts = _timed(lambda: sum(len(policy.manifest_verdicts(policies, d.data, target="prod"))
                                          for d in docs))
    added, _ = _timed(lambda: len(policy.with_manifest_issues(report, policies, target="prod").issues))
    print(f"(a) reconciler: compile {compiled} rules once: {compile_s * 1000:.1f} ms")
    print(f"(a) reconciler: judge every manifest ({verdicts} verdicts):    {judged:7.3f} s; target < 1 s: "
          f"{'met' if judged + compile_s < 1 else 'MISSED'}")
    print(f"(a) reconciler: the same as validate issues, located:  {added:7.3f} s (a violating manifest's "
          "positions are read again, as for any invalid one)")

    inputs = _inputs(docs)
    sample = random.Random(7).sample(inputs, min(args.sample, len(inputs)))
    scale = len(inputs) / len(sample)
    candidates: list[tuple[str, str, Callable[[Sequence[dict[str, Any]]], int], bool]] = [
        ("cel-expr-python (Google, C++)", "cel_expr_python", _google, True),
        ("common-expression-language (Rust)", "cel", _rust, True),
        ("cel-python (pure Python)", "celpy", _pure, False),
        ("naive: cel-expr-python, recompiled per document", "cel_expr_python", _google_naive, False),
    ]
    counts = set()
    for label, module, run, whole in candidates:
        if not _installed(module):
            print(f"(b) {label:50s} not installed")
            continue
        if whole:
            took, bad = _timed(lambda run=run: run(inputs))  # type: ignore[misc]
            note = "all documents"
        else:
            took, bad = _timed(lambda run=run: run(sample))  # type: ignore[misc]
            took, bad, note = took * scale, round(bad * scale), f"measured on {len(sample)}, scaled x{scale:g}"
        counts.add(bad)
        print(f"(b) {label:50s} {took:7.3f} s for {len(inputs)} x {len(RULES)} "
              f"({took / (len(inputs) * len(RULES)) * 1e6:5.1f} us/eval; {bad} violations; {note})")
    if len(counts) > 1:
        print(f"note: the candidates counted different violations {sorted(counts)} (scaled counts differ by sampling)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
