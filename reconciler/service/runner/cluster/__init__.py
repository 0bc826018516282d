"""Scoring one job on a Dask cluster (``reconciler serve --executor dask``).

The service stays the driver: it claims the job, plans it into partitions (``partitions``), ships
the model and the job's resolved settings once per worker, scores each partition on a worker
(``worker``), writes each partition's output as a part and commits the parts once, atomically
(``parts``), and records progress per partition (``driver``). Nothing here is a scheduler of its
own: placement, retries of a lost worker's tasks and cancellation are Dask's.
"""
