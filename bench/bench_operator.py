"""Benchmark: the operator over many resources on a real kube-apiserver, with the live cache and
(``--compare``) without it, the naive approach of one lookup per resource per resync.

Not a test: it prints numbers. Run
``python bench/bench_operator.py [--resources 2000] [--resync 60] [--compare]``.

It starts the Kubernetes test cluster (``../shared/tools/k8s-test-cluster.sh``: kube-apiserver and
etcd on loopback), the local service in a process of its own (it counts the requests it answers
per route: its /metrics), and ``reconciler operator`` as a child process, then:

(a) creates ``--resources`` custom resources and times until all are ``Ready``;
(b) waits for as many resync reconciles as there are resources (a resync of all of them; on a busy
    machine the timers fall behind the interval) and counts, at the service, the requests of that
    window: list calls (``GET batchPredictionJobDefinitions/``, 1,000 a page), single lookups
    (``GET .../{id}/``) and writes (POST/PATCH/DELETE), next to the resync reconciles the operator
    counted (its --metrics-port);
(c) reports the operator's peak memory (VmHWM of its process).

Target: a resync of 2,000 unchanged resources costs list pages (2 per list), not 2,000 lookups,
and no writes. Measured on the shared 2-core machine under a load average of 20-25 (other suites
running), ``--resources 1200 --resync 120``: all Ready in 1,426 s (creation is the operator's
throughput on a starved CPU, ~0.85 resources/s), then 1,227 resync reconciles in 124 s cost 2 list
calls (one list of 2 pages), 0 lookups and 0 writes; operator peak RSS 229 MiB. Without the cache
(``--compare``, measured at 40 resources, resync 5 s): 89 lookups for 91 resync reconciles, against
3 list calls for 95 with it. ``--resources 2000 --resync 120`` at load 2-4 (the suite running
beside it): created in 29.8 s, all Ready in 223.1 s, then 2,064 resync reconciles in 126 s cost 2
list GETs (one list of 2 pages), 0 lookups and 0 writes; operator peak RSS 313 MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes

from reconciler.operator import crd
from reconciler.service.settings import TOKEN_ENV
from reconciler.service.testing import (
    counter_sum,
    free_port,
    requests_by_route,
    stop_process,
    wait_until_healthy,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = next((p for p in (ROOT / ".." / "shared" / "tools" / "k8s-test-cluster.sh",
                            Path("/work/shared/tools/k8s-test-cluster.sh")) if p.is_file()),
              ROOT / ".." / "shared" / "tools" / "k8s-test-cluster.sh")
LIST = "/api/v2/batchPredictionJobDefinitions/"
ONE = "/api/v2/batchPredictionJobDefinitions/{definition_id}/"
DEPLOYMENT = "64b0c0ffee000000000d0001"
CREDENTIAL = "64b0c0ffee000000000c0001"


def requests(server: Service) -> dict[tuple[str, str], int]:
    return requests_by_route(server.url, server.headers())


def resyncs(port: int) -> int:
    return counter_sum(f"http://127.0.0.1:{port}/metrics", "reconciler_operator_reconciles_total",
                       label=("mode", "resync"))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def resource(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{crd.GROUP}/{crd.VERSION}", "kind": crd.KIND, "metadata": {"name": name},
            "spec": {"enabled": True, "schedule": {"cron": "0 2 * * *"},
                     "batchPredictionJob": {
                         "deploymentId": DEPLOYMENT, "numConcurrent": 4,
                         "intakeSettings": {"type": "s3", "url": "s3://bucket/in.csv", "credentialId": CREDENTIAL},
                         "outputSettings": {"type": "s3", "url": "s3://bucket/out.csv",
                                            "credentialId": CREDENTIAL}}}}


def ready_count(custom: Any, namespace: str) -> int:
    count, token = 0, None
    while True:
        page = custom.list_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL, limit=500,
                                                    _continue=token)
        for obj in page["items"]:
            if any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (obj.get("status") or {}).get("conditions") or []):
                count += 1
        token = page["metadata"].get("continue")
        if not token:
            return count


def wait(predicate: Any, timeout: float, what: str, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def run(kube: Any, kubeconfig: Path, *, resources: int, resync: float, cache: bool) -> dict[str, Any]:
    token = "bench-" + secrets.token_hex(12)
    core: Any = kubernetes.client.CoreV1Api(kube)  # dict bodies, as the API takes them
    custom: Any = kubernetes.client.CustomObjectsApi(kube)
    namespace = "bench-" + uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": namespace}})
    with _service(token) as server:
        for path, body in (("deployments/", {"id": DEPLOYMENT, "label": "bench"}),
                           ("credentials/", {"id": CREDENTIAL, "name": "bench"})):
            httpx.post(server.api_url + path, json=body, headers=server.headers(), timeout=30).raise_for_status()
        core.create_namespaced_secret(namespace, {"metadata": {"name": "api"}, "data": {
            "endpoint": b64encode(server.api_url.encode()).decode(), "token": b64encode(token.encode()).decode()}})
        port = free_port()
        log = Path(tempfile.mkstemp(prefix="bench-operator-", suffix=".log")[1])
        args = [sys.executable, "-c", "from reconciler.cli import main; main()", "operator", "--namespace", namespace,
                "--secret", f"{namespace}/api", "--resync-interval", str(resync), "--standalone",
                "--metrics-port", str(port), "--log-level", "warning",
                "--live-cache" if cache else "--no-live-cache"]
        with log.open("wb") as sink:
            operator = subprocess.Popen(args, env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=sink,
                                        stderr=subprocess.STDOUT)
        try:
            wait(lambda: _answers(port), 120, "the operator's metrics endpoint")
            started = time.monotonic()
            for n in range(resources):
                custom.create_namespaced_custom_object(crd.GROUP, crd.VERSION, namespace, crd.PLURAL,
                                                       resource(f"r-{n:05d}"))
            created = time.monotonic() - started
            wait(lambda: ready_count(custom, namespace) >= resources, 3600, f"{resources} resources Ready", 2.0)
            to_ready = time.monotonic() - started

            wait(lambda: resyncs(port) >= resources, 3600, "a first resync of every resource", 2.0)
            before, counted, window_start = requests(server), resyncs(port), time.monotonic()
            wait(lambda: resyncs(port) - counted >= resources, 3600, "one more resync of each", 2.0)
            after, window = requests(server), time.monotonic() - window_start
            done = resyncs(port) - counted

            def delta(method: str, route: str) -> int:
                return after.get((method, route), 0) - before.get((method, route), 0)

            return {
                "cache": cache, "resources": resources, "create_s": created, "ready_s": to_ready,
                "window_s": window, "resync_reconciles": done, "list_calls": delta("GET", LIST),
                "lookups": delta("GET", ONE),
                "writes": sum(after.get(k, 0) - before.get(k, 0) for k in after if k[0] in ("POST", "PATCH", "DELETE")),
                "peak_rss_mib": peak_rss_mib(operator.pid),
            }
        finally:
            stop_process(operator, timeout=30)


class Service:
    """``reconciler serve`` in a process of its own (no job runner), waited for up to 3 minutes: on a
    loaded machine its start takes longer than LocalServer's 30 s."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api/v2/"
        command = [sys.executable, "-c", "from reconciler.cli import main; main()", "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), "--db", f"sqlite:///{tempfile.mkdtemp(prefix='bench-op-')}/s.db",
                   "--no-access-log", "--no-run-jobs", "--no-ui"]
        self.process = subprocess.Popen(command, env={**os.environ, TOKEN_ENV: token}, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_until_healthy(self.url, timeout=180, process=self.process)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


@contextlib.contextmanager
def _service(token: str) -> Iterator[Service]:
    server = Service(token)
    try:
        yield server
    finally:
        server.stop()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=2000, help="custom resources to create (default 2000)")
    parser.add_argument("--resync", type=float, default=60.0, help="the operator's --resync-interval in seconds")
    parser.add_argument("--compare", action="store_true", help="also run without the live cache (the naive way)")
    parser.add_argument("--script", type=Path, default=SCRIPT, help="k8s-test-cluster.sh")
    options = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="bench-k8s-")) / "cluster"
    started = subprocess.run(["bash", str(options.script), "start", str(directory)], capture_output=True, text=True,
                             timeout=300, check=False)
    if started.returncode != 0:
        raise SystemExit(f"k8s-test-cluster.sh start failed: {started.stderr[-2000:]}")
    kubeconfig = Path(started.stdout.strip().splitlines()[-1])
    try:
        kube: Any = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        extensions: Any = kubernetes.client.ApiextensionsV1Api(kube)
        extensions.create_custom_resource_definition(crd.crd())
        wait(lambda: any(c.type == "Established" and c.status == "True" for c in
                         extensions.read_custom_resource_definition(crd.crd()["metadata"]["name"]).status.conditions
                         or []), 60, "the CRD Established")
        results = [run(kube, kubeconfig, resources=options.resources, resync=options.resync, cache=True)]
        if options.compare:
            results.append(run(kube, kubeconfig, resources=options.resources, resync=options.resync, cache=False))
    finally:
        subprocess.run(["bash", str(options.script), "stop", str(directory)], capture_output=True, timeout=120,
                       check=False)

    pages = -(-options.resources // 1000)
    print(f"operator over {options.resources} resources, resync every {options.resync:g}s "
          f"({pages} list page(s) of 1,000 per list)")
    print(f"{'live cache':<12}{'create s':>10}{'all Ready s':>13}{'window s':>10}{'resyncs':>9}{'list GETs':>11}"
          f"{'lookups':>9}{'writes':>8}{'peak MiB':>10}")
    for r in results:
        print(f"{'on' if r['cache'] else 'off (naive)':<12}{r['create_s']:>10.1f}{r['ready_s']:>13.1f}"
              f"{r['window_s']:>10.1f}{r['resync_reconciles']:>9}{r['list_calls']:>11}{r['lookups']:>9}"
              f"{r['writes']:>8}{r['peak_rss_mib']:>10.1f}")
    for r in results:
        lists = r["list_calls"] / pages
        print(f"cache {'on' if r['cache'] else 'off'}: {r['resync_reconciles']} resync reconciles in "
              f"{r['window_s']:.0f}s cost {r['list_calls'] + r['lookups']} API calls "
              f"({lists:.1f} list(s) of {pages} page(s), {r['lookups']} lookups) and {r['writes']} writes")


if __name__ == "__main__":
    main()
