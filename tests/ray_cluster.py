"""A real Ray cluster of several nodes on loopback, for tests and bench/ingest.py.

The nodes run in a network namespace of their own, with only a loopback interface: Ray
otherwise swaps 127.0.0.1 for the machine's outward address, and nothing here may listen
there. Its drivers (`cptqa ingest --ray`) run in the same namespace (`RayCluster.command`).
Each node is a `ray start --block` process in a process group of its own, with its own temp
folder, and is stopped by signalling that group: never `ray stop`, which stops every Ray
process on the machine (another user's cluster too). Making a namespace needs root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RAY = Path(sys.executable).parent / "ray"
HEAD_PORT = 6379
# Inside the namespace every port is free: each node takes its own block of them.
_PORTS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-grpc-port",
    "--dashboard-agent-listen-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
)


@dataclass(frozen=True)
class RayCluster:
    address: str
    namespace: str
    nodes: int

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside the cluster's network namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


def can_make_namespace() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _node(
    cluster: RayCluster, n: int, args: list[str], folder: Path, temp: Path
) -> subprocess.Popen[bytes]:
    base = 20000 + 1000 * n
    ports = [f"{name}={base + k}" for k, name in enumerate(_PORTS)]
    command = cluster.command(
        str(RAY),
        "start",
        "--block",
        "--num-cpus=1",
        f'--resources={{"node{n}": 1}}',
        f"--temp-dir={temp}",
        "--disable-usage-stats",
        "--object-store-memory=500000000",
        f"--min-worker-port={base + 100}",
        f"--max-worker-port={base + 999}",
        *ports,
        *args,
    )
    log = (folder / f"node{n}.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _wait_for_nodes(
    cluster: RayCluster, nodes: int, processes: list[subprocess.Popen[bytes]]
) -> None:
    """Until `ray status` counts `nodes` live nodes (a node that exits is an error)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a Ray node exited with {process.returncode}")
        try:
            status = subprocess.run(
                cluster.command(str(RAY), "status", f"--address={cluster.address}"),
                capture_output=True,
                text=True,
                timeout=30,
            )
        except subprocess.TimeoutExpired:
            continue
        if status.returncode == 0 and status.stdout.split("Pending:")[0].count(" node_") >= nodes:
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster at {cluster.address} did not reach {nodes} nodes")


@contextlib.contextmanager
def ray_cluster(folder: Path, workers: int = 1) -> Iterator[RayCluster]:
    """A head node and `workers` more, one CPU each, node n with a resource `node<n>` of its
    own; everything stopped and the namespace removed on exit."""
    namespace = f"cptqa-{uuid.uuid4().hex[:8]}"
    # Node folders hold Unix sockets, whose paths may not pass 107 bytes: short ones in /tmp.
    temp = Path(tempfile.mkdtemp(prefix="cptqa-ray-", dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    cluster = RayCluster(f"127.0.0.1:{HEAD_PORT}", namespace, workers + 1)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run(cluster.command("ip", "link", "set", "lo", "up"), check=True)
        head = ["--head", f"--port={HEAD_PORT}", "--include-dashboard=false"]
        processes.append(_node(cluster, 0, head, folder, temp / "0"))
        _wait_for_nodes(cluster, 1, processes)
        for n in range(1, workers + 1):
            join = [f"--address={cluster.address}"]
            processes.append(_node(cluster, n, join, folder, temp / str(n)))
        _wait_for_nodes(cluster, workers + 1, processes)
        yield cluster
    finally:
        for process in reversed(processes):
            _stop(process)
        subprocess.run(["ip", "netns", "delete", namespace], check=False)
        shutil.rmtree(temp, ignore_errors=True)
