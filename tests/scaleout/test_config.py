"""``reconciler serve --executor/--dask-scheduler`` parsing: the accepted forms and the messages."""

from __future__ import annotations

import pytest

from reconciler.service.runner.cluster.config import ExecutorConfig, ExecutorError, executor_config


@pytest.mark.parametrize(("executor", "scheduler", "expected"), [
    (None, None, ExecutorConfig()),
    ("local", None, ExecutorConfig()),
    ("dask", "tcp://scheduler:8786", ExecutorConfig(kind="dask", address="tcp://scheduler:8786")),
    (None, "tcp://10.0.0.5:8786", ExecutorConfig(kind="dask", address="tcp://10.0.0.5:8786")),
    ("DASK", "local-cluster:3", ExecutorConfig(kind="dask", local_workers=3)),
    ("dask", "tcp://[::1]:8786", ExecutorConfig(kind="dask", address="tcp://[::1]:8786")),
])
def test_accepted_forms(executor: str | None, scheduler: str | None, expected: ExecutorConfig) -> None:
    assert executor_config(executor, scheduler) == expected


@pytest.mark.parametrize(("executor", "scheduler", "message"), [
    ("ray", None, "--executor 'ray': expected one of local, dask"),
    ("local", "tcp://s:8786", "--dask-scheduler needs --executor dask"),
    ("dask", None, "--executor dask needs --dask-scheduler"),
    ("dask", "local-cluster:0", "expected local-cluster:N with 1 <= N <= 256"),
    ("dask", "scheduler:8786", "expected a scheduler address such as tcp://scheduler:8786"),
    ("dask", "tls://s:8786", "tls:// is not supported yet"),
])
def test_refused_forms_say_what_is_expected(executor: str, scheduler: str | None, message: str) -> None:
    with pytest.raises(ExecutorError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        executor_config(executor, scheduler)
