"""ingest: files -> cleaned Documents -> Chunks, with the CPT/HCPCS codes found in each."""

from ingest.changes import CorpusChanges, CorpusUpdate, update_corpus
from ingest.chunk import ChunkerOptions, chunk_spans
from ingest.clean import clean_text
from ingest.codes import (
    EXTRACTOR_VERSION,
    classify_code,
    extract_codes,
    is_well_formed_code,
    normalize_code,
    unique_codes,
)
from ingest.corpus import (
    IngestResult,
    chunk_corpus,
    chunk_document,
    corpus_codes,
    ingest_paths,
)
from ingest.dates import DatedText, PassageDate, chunk_dates, passage_date, service_year, text_year
from ingest.errors import (
    CorpusError,
    CptqaError,
    CptqaWarning,
    IndexCorrupt,
    IndexIncompatible,
    IndexMissing,
    InvalidInput,
    UnknownCode,
    UnknownDocument,
    UnusableFile,
)
from ingest.history import CHANGES, STATUSES, CodeChange, CodeHistory, Dated, load_history
from ingest.load import (
    LOADER_VERSION,
    SUPPORTED_SUFFIXES,
    FileReader,
    LoadResult,
    ReadLimits,
    Skipped,
    detect_format,
    load_documents,
    printable_path,
    read_files,
)
from ingest.roles import clause_bounds, qualifies_parent
from ingest.stated import stated_changes
from ingest.types import ROLES, Chunk, CodeMention, Document

__all__ = [
    "CHANGES",
    "STATUSES",
    "CodeChange",
    "CodeHistory",
    "Dated",
    "DatedText",
    "PassageDate",
    "chunk_dates",
    "load_history",
    "passage_date",
    "service_year",
    "stated_changes",
    "text_year",
    "EXTRACTOR_VERSION",
    "LOADER_VERSION",
    "ROLES",
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "ChunkerOptions",
    "CodeMention",
    "CorpusChanges",
    "CorpusError",
    "CorpusUpdate",
    "CptqaError",
    "CptqaWarning",
    "Document",
    "FileReader",
    "IndexCorrupt",
    "IndexIncompatible",
    "IndexMissing",
    "IngestResult",
    "InvalidInput",
    "LoadResult",
    "ReadLimits",
    "Skipped",
    "UnknownCode",
    "UnknownDocument",
    "UnusableFile",
    "chunk_corpus",
    "chunk_document",
    "chunk_spans",
    "classify_code",
    "clean_text",
    "corpus_codes",
    "detect_format",
    "extract_codes",
    "ingest_paths",
    "is_well_formed_code",
    "load_documents",
    "printable_path",
    "read_files",
    "normalize_code",
    "clause_bounds",
    "qualifies_parent",
    "unique_codes",
    "update_corpus",
]
