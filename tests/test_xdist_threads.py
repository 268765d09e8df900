"""llama.cpp's prompt-evaluation threads are shared out between the processes that run a
chain at once (pytest-xdist workers, Spark Python workers) instead of every process taking
every core (``rag.llm.batch_threads``)."""

from __future__ import annotations

import pytest

from rag.llm import batch_threads


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_a_plain_run_keeps_every_core() -> None:
    assert batch_threads(cores=2) == 2
    assert batch_threads(cores=8) == 8


@pytest.mark.parametrize(
    ("cores", "workers", "expected"), [(2, 2, 1), (8, 2, 4), (8, 3, 2), (2, 4, 1), (4, 1, 4)]
)
def test_xdist_workers_share_the_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int, expected: int
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(workers))
    assert batch_threads(cores=cores) == expected


def test_omp_num_threads_caps_them_as_pyspark_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert batch_threads(cores=8) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "16")  # never more than the cores
    assert batch_threads(cores=8) == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # unset or unreadable: ignored
    assert batch_threads(cores=8) == 8
