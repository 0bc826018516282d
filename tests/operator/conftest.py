"""Fixtures for the operator tests: the cluster (k8s-test-cluster.sh start/stop for the session,
CRDs installed), the local service with a token, a fresh namespace per test holding the API Secret,
and ``start_operator`` (``reconciler operator`` child processes, stopped at teardown)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from operator_harness import (
    RESYNC,
    TOKEN,
    Cluster,
    Namespace,
    OperatorProcess,
    Service,
    find_script,
    install_crds,
    kubernetes,
    seed,
    unavailable,
)

from reconciler.service.testing import LocalServer


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    script = find_script()
    if not script.is_file():
        unavailable(f"k8s-test-cluster.sh not found at {script}")
    cache = Path(os.environ.get("K8S_TEST_CACHE", Path.home() / ".cache" / "k8s-test-cluster"))
    if not (cache / "bin" / "kube-apiserver").is_file():
        unavailable(f"kube-apiserver is not built; run `bash {script} build` once (about 4 minutes)")
    directory = tmp_path_factory.mktemp("k8s") / "cluster"
    started = subprocess.run(["bash", str(script), "start", str(directory)], capture_output=True, text=True,
                             timeout=180, check=False)
    if started.returncode != 0:
        pytest.fail(f"k8s-test-cluster.sh start failed: {started.stderr[-3000:]}")
    kubeconfig = Path(started.stdout.strip().splitlines()[-1])
    try:
        api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        install_crds(api)
        yield Cluster(kubeconfig=kubeconfig, api=api)
    finally:
        subprocess.run(["bash", str(script), "stop", str(directory)], capture_output=True, timeout=60, check=False)


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    with LocalServer(token=TOKEN) as server, httpx.Client(
            base_url=server.api_url, headers={"Authorization": f"Token {TOKEN}"}, timeout=10) as http:
        seed(server.api_url, TOKEN)
        yield Service(server=server, http=http)


@pytest.fixture
def namespace(cluster: Cluster, service: Service) -> Namespace:
    """A fresh namespace holding the API Secret (endpoint of the local service + its token)."""
    name = "op-" + uuid.uuid4().hex[:10]
    cluster.core.create_namespace({"metadata": {"name": name}})
    ns = Namespace(name=name, cluster=cluster)
    ns.set_secret(endpoint=service.api_url, token=TOKEN)
    return ns


@pytest.fixture
def start_operator(cluster: Cluster, tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    """Start ``reconciler operator`` for a namespace; every process is stopped at teardown."""
    started: list[OperatorProcess] = []

    def start(ns: Namespace, *extra: str, name: str = "operator", kubeconfig: Path | None = None) -> OperatorProcess:
        log = tmp_path / f"{name}-{len(started)}.log"
        args = [sys.executable, "-c", "from reconciler.cli import main; main()", "operator",
                "--namespace", ns.name, "--secret", f"{ns.name}/{ns.secret}",
                "--resync-interval", str(RESYNC), "--backoff-initial", "0.5", "--backoff-max", "2",
                "--log-level", "debug", *extra]
        if "--peering" not in extra:
            args.append("--standalone")
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or cluster.kubeconfig)}
        env.pop("DATAROBOT_API_TOKEN", None)
        with log.open("wb") as out:
            process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        handle = OperatorProcess(process=process, log=log, args=args)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
        # Shown by pytest only when the test failed.
        print(f"----- {handle.log.name} (exit {handle.process.returncode}) -----\n{handle.text()[-6000:]}")


