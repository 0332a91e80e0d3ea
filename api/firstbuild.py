"""The first index of `cptqa serve` and `cptqa mcp`, built in a child process.

Building loads torch (to export the model to ONNX, or to embed when asked to); a server that
did it in its own process would keep torch resident for its whole life (1.08 GB against
460 MB). The child is `cptqa ingest` itself, so the first start prints what an ingest prints
and fails the way an ingest fails; when it exits, its memory goes with it and the server
loads the snapshot as any later start does.
"""

from __future__ import annotations

import subprocess
import sys

from api.settings import Settings


def index_in_child(settings: Settings) -> int:
    """Run `cptqa ingest` on the corpus folder into `settings.index_dir`; its exit code.

    The child reads the same environment and `.env` as this process; the index folder is
    passed on because a command-line option may have set it. Its output goes to stderr, so
    that `cptqa mcp`'s stdout carries nothing but the protocol.
    """
    command = [
        sys.executable,
        "-m",
        "api.cli",
        "ingest",
        str(settings.corpus_dir),
        "--index-dir",
        str(settings.index_dir),
    ]
    return subprocess.run(command, stdout=sys.stderr.fileno(), check=False).returncode
