"""What an ingest changes in an indexed corpus: documents added, changed, removed, unchanged.

`cptqa ingest PATHS` brings the index in line with PATHS. A file found there is *added* (a
source path not indexed before), *changed* (same source path, other bytes) or *unchanged*
(same bytes; its text is reused, not parsed again). A document indexed before whose source lies
under one of PATHS but is gone, or can no longer be read, is *removed*. A path that does not
exist, or under which no file can be read, is an error whatever the index holds (a mistyped
folder must not look like "nothing changed"); to empty the index of a folder, `remove` it.
Documents indexed from other paths are *kept* as they are, so ingesting one new folder never
drops another.
`remove` takes documents out by source path (a file, or everything under a folder) or by id
(a document id, or the folder part of ids: "policies" removes "policies/a.pdf").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ingest.errors import CorpusError, InvalidInput
from ingest.load import DEFAULT_MAX_BYTES, FileReader, ReadLimits, Skipped, load_documents
from ingest.types import Document


@dataclass(frozen=True)
class CorpusChanges:
    """Document ids by what happened to them, each in corpus order."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # indexed from paths not given this time; left as they were

    @property
    def any(self) -> bool:
        """True when a document was added, changed or removed."""
        return bool(self.added or self.changed or self.removed)


@dataclass(frozen=True)
class CorpusUpdate:
    documents: list[Document]
    changes: CorpusChanges
    skipped: list[Skipped]


def update_corpus(
    paths: Iterable[str | Path],
    previous: Sequence[Document] = (),
    remove: Iterable[str | Path] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    reuse_text: bool = True,
    limits: ReadLimits = ReadLimits(),  # noqa: B008 - frozen, shared safely
    read: FileReader | None = None,
) -> CorpusUpdate:
    """The corpus after ingesting `paths` and removing `remove`, starting from `previous`;
    `read` reads the files found (ingest/load.py, `FileReader`).

    Raises `InvalidInput` when a `remove` entry matches no indexed document, and `CorpusError`
    when nothing would be left to index.
    """
    scan = [Path(p) for p in paths]
    missing = [p for p in scan if not (p.exists() or p.is_symlink())]
    if missing:
        raise CorpusError(
            ", ".join(str(p) for p in missing)
            + (" does" if len(missing) == 1 else " do")
            + " not exist: name files or folders to index (nothing was published)"
        )
    removals = [Path(r) for r in remove]
    removed = _removed_ids(removals, previous)
    roots = [p.absolute() for p in scan]
    kept = [d for d in previous if d.id not in removed and not _under_any(d.path, roots)]
    reuse = {d.sha256: d for d in previous} if reuse_text else None
    loaded = load_documents(scan, max_bytes=max_bytes, reuse=reuse, limits=limits, read=read)
    for path, root in zip(scan, roots, strict=True):
        if not any(_under_any(d.path, [root]) for d in loaded.documents):
            raise CorpusError(_unreadable_message(path, loaded.skipped))
    old_by_path = {d.path: d for d in previous}
    taken = {d.id for d in kept}
    documents = list(kept)
    added: list[str] = []
    changed: list[str] = []
    unchanged: list[str] = []
    removal_roots = [r.absolute() for r in removals]
    for document in loaded.documents:
        if _under_any(document.path, removal_roots):
            continue
        old = old_by_path.get(document.path)
        doc_id = old.id if old is not None else document.id
        if doc_id in taken:
            doc_id = document.path
        taken.add(doc_id)
        documents.append(replace(document, id=doc_id) if doc_id != document.id else document)
        if old is None:
            added.append(doc_id)
        elif old.sha256 == document.sha256:
            unchanged.append(doc_id)
        else:
            changed.append(doc_id)
    found = {d.path for d in documents}
    gone = [d.id for d in previous if d.id in removed or d.path not in found]
    changes = CorpusChanges(
        tuple(added), tuple(changed), tuple(gone), tuple(unchanged), tuple(d.id for d in kept)
    )
    if not documents:
        raise CorpusError(_empty_message(scan, removals, loaded.skipped))
    return CorpusUpdate(documents, changes, loaded.skipped)


def _removed_ids(remove: list[Path], previous: Sequence[Document]) -> set[str]:
    removed: set[str] = set()
    for target in remove:
        name = target.as_posix()
        matched = {
            d.id
            for d in previous
            if d.id == name
            or d.id.startswith(name.rstrip("/") + "/")
            or _under_any(d.path, [target.absolute()])
        }
        if not matched:
            known = ", ".join(d.id for d in list(previous)[:5]) or "none"
            raise InvalidInput(
                f"nothing indexed is {target} or lies under it (indexed documents: {known}"
                f"{', ...' if len(previous) > 5 else ''}); give a file or folder that was "
                "ingested, or a document id"
            )
        removed |= matched
    return removed


def _under_any(path: str, roots: list[Path]) -> bool:
    source = Path(path)
    return any(source == root or source.is_relative_to(root) for root in roots)


def _unreadable_message(path: Path, skipped: list[Skipped]) -> str:
    what = "folder" if path.is_dir() else "file"
    message = f"nothing readable in {path}: no text, Markdown, HTML or PDF file with text"
    mine = [s for s in skipped if Path(s.path) == path or s.path.startswith(f"{path}/")]
    if mine:
        message += "; skipped: " + "; ".join(f"{s.path} ({s.reason})" for s in mine[:10])
    return (
        message + f". Nothing was published: give a {what} with documents in it, or take "
        "indexed documents out with `cptqa ingest --remove PATH`."
    )


def _empty_message(paths: list[Path], remove: list[Path], skipped: list[Skipped]) -> str:
    if remove and not paths:
        return (
            "removing " + ", ".join(str(r) for r in remove) + " would leave the index empty; "
            "nothing was published. Ingest other documents first, or start over with "
            "`cptqa ingest --rebuild PATHS`."
        )
    where = ", ".join(str(p) for p in paths) or "(no paths given)"
    message = f"nothing to index in {where}: no readable text, Markdown, HTML or PDF file"
    if skipped:
        message += "; skipped: " + "; ".join(f"{s.path} ({s.reason})" for s in skipped[:10])
    return message + ". Add documents to the corpus folder and run `cptqa ingest` again."
