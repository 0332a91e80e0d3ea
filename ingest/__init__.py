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
from ingest.load import (
    LOADER_VERSION,
    SUPPORTED_SUFFIXES,
    LoadResult,
    ReadLimits,
    Skipped,
    detect_format,
    load_documents,
    printable_path,
)
from ingest.roles import qualifies_parent
from ingest.types import ROLES, Chunk, CodeMention, Document

__all__ = [
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
    "normalize_code",
    "qualifies_parent",
    "unique_codes",
    "update_corpus",
]
