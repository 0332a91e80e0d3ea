"""A real Ray cluster of several nodes, for tests and bench/ingest.py.

By default the nodes share one network namespace of their own, with only a loopback
interface: Ray otherwise swaps 127.0.0.1 for the machine's outward address, and nothing here
may listen there. With `hosts=True` each node is a host of its own instead: its own network
namespace, joined to the head's by a virtual Ethernet link with an address of its own
(10.77.n.2, the head 10.77.n.1), so that Ray's traffic crosses a network as between machines,
and each worker node has its own mount namespace in which the `hidden` folders are empty
(a tmpfs over each): it sees none of the corpus, as on another machine. Drivers (`cptqa ingest
--ray`) run in the head's namespace (`RayCluster.command`). Each node is a `ray start --block`
process in a process group of its own, with its own temp folder, and is stopped by signalling
that group: never `ray stop`, which stops every Ray process on the machine (another user's
cluster too). Making a namespace needs root.
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
    namespace: str  # the head node's (every node's, unless each is a host of its own)
    nodes: int
    hosts: tuple[str, ...] = ()  # with hosts=True: each worker node's namespace
    pids: tuple[int, ...] = ()  # each node's `ray start` process, head first

    def command(self, *argv: str) -> list[str]:
        """`argv` run inside the head node's network namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


def can_make_namespace() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _node(
    cluster: RayCluster,
    n: int,
    args: list[str],
    folder: Path,
    temp: Path,
    namespace: str | None = None,
    hidden: tuple[Path, ...] = (),
    cpus: int = 1,
) -> subprocess.Popen[bytes]:
    base = 20000 + 1000 * n
    ports = [f"{name}={base + k}" for k, name in enumerate(_PORTS)]
    # A worker node that sees none of `hidden`: its own mount namespace, a tmpfs over each.
    hide = (
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            " && ".join(f"mount -t tmpfs cptqa-hidden '{p}'" for p in hidden) + ' && exec "$@"',
            "sh",
        ]
        if hidden
        else []
    )
    command = [
        "ip",
        "netns",
        "exec",
        namespace or cluster.namespace,
        *hide,
        str(RAY),
        "start",
        "--block",
        f"--num-cpus={cpus}",
        f'--resources={{"node{n}": 1}}',
        f"--temp-dir={temp}",
        "--disable-usage-stats",
        "--object-store-memory=500000000",
        f"--min-worker-port={base + 100}",
        f"--max-worker-port={base + 999}",
        *ports,
        *args,
    ]
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
def ray_cluster(
    folder: Path,
    workers: int = 1,
    hosts: bool = False,
    hidden: tuple[Path, ...] = (),
    head_cpus: int = 1,
) -> Iterator[RayCluster]:
    """A head node and `workers` more, one CPU each (the head `head_cpus`), node n with a
    resource `node<n>` of its own; with `hosts`, each node a host of its own whose worker
    nodes see none of `hidden` (see the module's docstring). Everything is stopped and the
    namespaces removed on exit."""
    tag = uuid.uuid4().hex[:8]
    namespace = f"cptqa-{tag}"
    names = [f"cptqa-{tag}-{n}" for n in range(1, workers + 1)] if hosts else []
    # Node folders hold Unix sockets, whose paths may not pass 107 bytes: short ones in /tmp.
    temp = Path(tempfile.mkdtemp(prefix="cptqa-ray-", dir="/tmp"))
    folder.mkdir(parents=True, exist_ok=True)
    head_ip = "10.77.1.1" if hosts else "127.0.0.1"
    processes: list[subprocess.Popen[bytes]] = []
    made: list[str] = []
    try:
        for name in [namespace, *names]:
            subprocess.run(["ip", "netns", "add", name], check=True)
            made.append(name)
            _in(name, "ip", "link", "set", "lo", "up")
        for n, name in enumerate(names, start=1):
            # A link from the head's host to node n's: 10.77.n.1 there, 10.77.n.2 here; node n
            # reaches the head's address (10.77.1.1) through it, and the head forwards
            # between nodes.
            ends = (f"cq{tag[:4]}h{n}", f"cq{tag[:4]}n{n}")
            subprocess.run(["ip", "link", "add", ends[0], "type", "veth", "peer", "name", ends[1]],
                           check=True)  # fmt: skip
            subprocess.run(["ip", "link", "set", ends[0], "netns", namespace], check=True)
            subprocess.run(["ip", "link", "set", ends[1], "netns", name], check=True)
            _in(namespace, "ip", "addr", "add", f"10.77.{n}.1/24", "dev", ends[0])
            _in(namespace, "ip", "link", "set", ends[0], "up")
            _in(name, "ip", "addr", "add", f"10.77.{n}.2/24", "dev", ends[1])
            _in(name, "ip", "link", "set", ends[1], "up")
            _in(name, "ip", "route", "add", "10.77.0.0/16", "via", f"10.77.{n}.1")
        if names:
            _in(namespace, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        cluster = RayCluster(f"{head_ip}:{HEAD_PORT}", namespace, workers + 1, tuple(names))
        head = ["--head", f"--port={HEAD_PORT}", "--include-dashboard=false"]
        if hosts:
            head.append(f"--node-ip-address={head_ip}")
        processes.append(_node(cluster, 0, head, folder, temp / "0", cpus=head_cpus))
        _wait_for_nodes(cluster, 1, processes)
        for n in range(1, workers + 1):
            join = [f"--address={cluster.address}"]
            if hosts:
                join.append(f"--node-ip-address=10.77.{n}.2")
            processes.append(
                _node(
                    cluster, n, join, folder, temp / str(n),
                    names[n - 1] if hosts else None, hidden if hosts else (),
                )
            )  # fmt: skip
        _wait_for_nodes(cluster, workers + 1, processes)
        yield RayCluster(
            cluster.address, namespace, workers + 1, tuple(names), tuple(p.pid for p in processes)
        )
    finally:
        for process in reversed(processes):
            _stop(process)
        for name in reversed(made):
            subprocess.run(["ip", "netns", "delete", name], check=False)
        shutil.rmtree(temp, ignore_errors=True)


def _in(namespace: str, *argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", namespace, *argv], check=True)
