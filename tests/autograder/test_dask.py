"""`--scheduler`: the same tasks on a real Dask cluster (scheduler and workers started here on
loopback) give the same results as local worker processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import toycourse
from autograder import batch, executors
from autograder.cli import main

pytestmark = pytest.mark.slow
DASK = str(Path(sys.executable).with_name("dask"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dask")
    info = tmp / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], env=env, cwd=tmp, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 120
        while not info.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--nworkers", "2",
                                       "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(tmp)],
                                      env=env, cwd=tmp, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _view(results):
    view = {}
    for r in results:
        cases = {(nb, t["grade_id"]): (t["score"], [(c["outcome"], c["message"]) for c in t["cases"]])
                 for nb, entry in r.get("notebooks", {}).items() for t in entry.get("tests", [])}
        view[(r["student"], r["assignment"])] = (r["status"], r.get("score"), cases)
    return view


def _cached_results(out):
    return [json.loads(p.read_text()) for p in sorted((out / ".cache").glob("*.json"))
            if not p.name.startswith(("source-", "calibration-"))]


def test_dask_cluster_grades_like_local_processes(cluster, tmp_path, capsys):
    root = toycourse.course_copy(tmp_path / "repo")
    subs = toycourse.make_class(tmp_path / "subs", root)
    local = batch.autograde(subs, tmp_path / "local", course_root=root, workers=2, progress=False, feedback=False)
    assert main(["--course", str(root), "autograde", str(subs), "--out", str(tmp_path / "dask"),
                 "--scheduler", cluster, "--quiet", "--no-feedback"]) == 0
    printed = capsys.readouterr().out
    assert "Graded 3 of 3 submissions" in printed and "3 graded now on 2 workers" in printed
    remote = _cached_results(tmp_path / "dask")
    assert len(remote) == 3
    assert _view(remote) == _view([r.to_json() for r in local.results])
    assert {k: v[1] for k, v in _view(remote).items()} == {("alice", "toy"): 5.0, ("bob", "toy"): 4.0,
                                                           ("carol", "toy"): 2.0}
    assert (tmp_path / "dask" / "grades.csv").read_text() == (tmp_path / "local" / "grades.csv").read_text()


def test_unreachable_scheduler_is_an_error_for_people(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(executors, "SCHEDULER_TIMEOUT", "2s")
    root = toycourse.course_copy(tmp_path / "repo")
    subs = toycourse.make_class(tmp_path / "subs", root, {"alice": toycourse.CLASS["alice"]})
    status = main(["--course", str(root), "autograde", str(subs), "--out", str(tmp_path / "out"),
                   "--scheduler", "tcp://127.0.0.1:9", "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err and "dask worker" in err
