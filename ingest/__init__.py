"""ingest: files -> cleaned Documents -> Chunks, with the CPT/HCPCS codes found in each."""

from ingest.chunk import ChunkerOptions, chunk_spans
from ingest.clean import clean_text
from ingest.codes import classify_code, extract_codes, is_well_formed_code, normalize_code
from ingest.corpus import IngestResult, chunk_document, corpus_codes, ingest_paths, mention_codes
from ingest.errors import (
    CorpusError,
    CptqaError,
    CptqaWarning,
    IndexCorrupt,
    IndexIncompatible,
    IndexMissing,
    InvalidInput,
    UnknownCode,
)
from ingest.load import SUPPORTED_SUFFIXES, LoadResult, Skipped, load_documents
from ingest.types import ROLES, Chunk, CodeMention, Document

__all__ = [
    "ROLES",
    "SUPPORTED_SUFFIXES",
    "Chunk",
    "ChunkerOptions",
    "CodeMention",
    "CorpusError",
    "CptqaError",
    "CptqaWarning",
    "Document",
    "IndexCorrupt",
    "IndexIncompatible",
    "IndexMissing",
    "IngestResult",
    "InvalidInput",
    "LoadResult",
    "Skipped",
    "UnknownCode",
    "chunk_document",
    "chunk_spans",
    "classify_code",
    "clean_text",
    "corpus_codes",
    "extract_codes",
    "ingest_paths",
    "is_well_formed_code",
    "load_documents",
    "mention_codes",
    "normalize_code",
]
