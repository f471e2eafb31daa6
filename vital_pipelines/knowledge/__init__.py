"""The knowledge layer: documents in assets/knowledge/ extracted, chunked, embedded and kept in sync with pgvector."""
