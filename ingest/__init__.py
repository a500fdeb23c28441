"""Ingestion: corpus files → cleaned units → chunks → the Chroma store."""
