"""The knowledge base: documents in assets/knowledge/ as embedded chunks in pgvector, and agents as vectors."""
