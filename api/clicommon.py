"""What every `cptqa` command shares: the consoles, the one table from error class to exit
code, the settings a command runs with, and the --index-dir option."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from api.settings import Settings
from index import IndexBusy, IndexUnwritable, ModelUnavailable
from index.ray_build import RayUnavailable
from ingest import (
    CorpusError,
    CptqaError,
    IndexCorrupt,
    IndexIncompatible,
    IndexMissing,
    InvalidInput,
    UnknownCode,
    UnknownDocument,
)

out = Console()
err = Console(stderr=True, soft_wrap=True)

# The one table from error class to exit code (the HTTP statuses live in api/errors.py).
EXIT_BY_ERROR: dict[type[CptqaError], int] = {
    InvalidInput: 2,
    CorpusError: 2,
    IndexMissing: 3,
    IndexIncompatible: 3,
    IndexCorrupt: 3,
    ModelUnavailable: 3,
    UnknownCode: 4,
    UnknownDocument: 4,
    IndexBusy: 5,
    IndexUnwritable: 6,
    RayUnavailable: 2,
}


def fail(exc: CptqaError) -> NoReturn:
    code = next((EXIT_BY_ERROR[c] for c in type(exc).__mro__ if c in EXIT_BY_ERROR), 1)
    err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
    raise typer.Exit(code)


def load_settings(index_dir: Path | None = None, service: bool = False) -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CPTQA_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        fail(InvalidInput(f"bad setting: {problems}"))
    if index_dir is not None:
        settings = settings.model_copy(update={"index_dir": index_dir})
    if not service and "CPTQA_SOLO_QUERY_THREADS" not in os.environ:
        # The solo encoder session pays off over many questions; a one-shot command would
        # spend 0.6 s of CPU opening it beside its own work, and wait for it at exit.
        settings = settings.model_copy(update={"solo_query_threads": 1})
    # A one-shot command prints its own report; its log says only what went wrong unless
    # CPTQA_LOG_LEVEL asks for more. The server logs at the configured level.
    chosen = "CPTQA_LOG_LEVEL" in os.environ or service
    level = settings.log_level.upper() if chosen else "WARNING"
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each build at DEBUG
    if level != "DEBUG":  # the MCP SDK's session manager logs its start and stop at INFO
        logging.getLogger("mcp").setLevel(logging.WARNING)
    return settings


IndexDirOption = Annotated[
    Path | None, typer.Option("--index-dir", help="Index folder (default: CPTQA_INDEX_DIR).")
]
