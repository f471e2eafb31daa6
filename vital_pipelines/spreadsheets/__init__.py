"""Spreadsheet ingestion: safe reading, contracts, steward reports, loading, and the sample-data generator."""
