"""``llp tune`` stopped by signals, in a child process as a user would see it: SIGTERM and
a second quick Ctrl-C still end with the resume line, and no worker is left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_crash_safety import ROOT, stored_rows

pytestmark = pytest.mark.slow


def start_tune(
    digits_csv: Path, storage: Path, *, dask_address: str | None = None
) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "llp", "tune", str(digits_csv), "--storage", str(storage)]
    command += ["--budget", "100", "--epochs", "10", "--prior", "none", "--no-report"]
    command += ["--workers", "2"]
    if dask_address is not None:
        command += ["--dask-address", dask_address]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the test can see its workers
    )


def wait_for_evaluations(storage: Path, process: subprocess.Popen[str], n: int) -> None:
    deadline = time.monotonic() + 120
    while len(stored_rows(storage)) < n:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the study stored nothing in 120 s"
        time.sleep(0.05)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(
    ("signals", "status", "word"),
    [
        ([signal.SIGTERM], 143, "terminated"),
        ([signal.SIGINT, signal.SIGINT], 130, "interrupted"),  # two quick Ctrl-Cs
    ],
    ids=["sigterm", "two-ctrl-c"],
)
def test_a_stopped_tune_says_what_is_stored_and_leaves_no_worker(
    digits_csv: Path, tmp_path: Path, signals: list[int], status: int, word: str
) -> None:
    storage = tmp_path / "kb.db"
    process = start_tune(digits_csv, storage)
    try:
        wait_for_evaluations(storage, process, 2)
        for number in signals:
            process.send_signal(number)
            time.sleep(0.05)
        _, err = process.communicate(timeout=60)
        assert process.returncode == status, err
        assert "Traceback" not in err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"llp tune: {word}: "), last
        assert " evaluations of study " in last and last.endswith("--resume")
        # The workers went with the driver.
        deadline = time.monotonic() + 10
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_alive(process.pid), "worker processes outlived llp tune"
        assert int(last.split(": ")[2].split()[0]) == len(stored_rows(storage))
    finally:
        if process.poll() is None or group_alive(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=30)


def test_a_killed_tune_leaves_no_process_behind_and_resumes(
    digits_csv: Path, tmp_path: Path
) -> None:
    """SIGKILL reaches the driver alone (no handler runs): its workers, the pool's
    forkserver and resource tracker (all in its process group) go within seconds, and
    what was stored resumes."""
    storage = tmp_path / "kb.db"
    process = start_tune(digits_csv, storage)
    try:
        wait_for_evaluations(storage, process, 2)
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        deadline = time.monotonic() + 15
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_alive(process.pid), "processes of a killed llp tune outlived it"
    finally:
        if group_alive(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    kept = len(stored_rows(storage))
    assert kept >= 2
    resumed = subprocess.run(
        [sys.executable, "-m", "llp", "tune", str(digits_csv), "--storage", str(storage),
         "--budget", "100", "--epochs", "10", "--prior", "none", "--no-report",
         "--resume", "--json", "--quiet"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    import json

    out = json.loads(resumed.stdout)
    assert out["n_reused"] == kept and out["n_evaluations"] > kept


def test_a_terminated_tune_on_a_dask_cluster_leaves_the_cluster_serving(
    digits_csv: Path, tmp_path: Path
) -> None:
    # SIGTERM while evaluations run on somebody else's Dask cluster: llp tune ends like
    # on its own workers (exit 143, the resume line, everything stored counted), closes
    # only its client, and the cluster goes on serving others.
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    storage = tmp_path / "kb.db"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        process = start_tune(digits_csv, storage, dask_address=cluster.scheduler_address)
        try:
            wait_for_evaluations(storage, process, 2)
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
            assert process.returncode == 143, err
            assert "Traceback" not in err
            last = err.strip().splitlines()[-1]
            assert last.startswith("llp tune: terminated: ") and last.endswith("--resume")
            assert int(last.split(": ")[2].split()[0]) == len(stored_rows(storage))
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.communicate(timeout=30)
        with Client(cluster.scheduler_address, timeout=30) as client:
            assert client.submit(sum, [1, 2]).result(timeout=60) == 3
            assert len(client.scheduler_info()["workers"]) == 2  # no worker was lost
            # llp's client is gone: this test's is the only one connected.
            clients = client.run_on_scheduler(
                lambda dask_scheduler: sorted(
                    c for c in dask_scheduler.clients if c != "fire-and-forget"
                )
            )
            assert clients == [client.id]
