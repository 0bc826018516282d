"""``--dask-scheduler local-cluster:N``: the service starts its own Dask cluster (worker
processes) and scores split jobs there with the same output as the local executor."""

from __future__ import annotations

from .conftest import PARTITION_BYTES, PARTITION_ROWS, Service, artifact, frame, serve
from .slow_model import SlowBinary


def test_a_local_cluster_writes_what_the_local_executor_writes(on_local: Service) -> None:
    server, http = serve(executor="dask", dask_scheduler="local-cluster:1", dask_partition_bytes=PARTITION_BYTES,
                         dask_partition_rows=PARTITION_ROWS, dask_worker_wait_seconds=60)
    on_cluster = Service(server, http)
    try:
        model = artifact(SlowBinary(delay=0.0, weight=-0.4))
        source = frame(5000, seed=31)
        source["note"] = ["a", "b,c", "\"q\"", "", "x"] * 1000
        data = source.to_csv(index=False).encode()
        body = {"intakeSettings": {"type": "localFile"}, "outputSettings": {"type": "localFile"},
                "passthroughColumnsSet": "all", "includeProbabilities": True}
        split = on_cluster.run({**body, "deploymentId": on_cluster.register(model)}, data)
        single = on_local.run({**body, "deploymentId": on_local.register(model)}, data)
        assert split["status"] == single["status"] == "COMPLETED", (split, single)
        assert "on the Dask cluster in" in split["statusDetails"], split["statusDetails"]
        assert on_cluster.download(split) == on_local.download(single)
    finally:
        http.close()
        server.stop()
