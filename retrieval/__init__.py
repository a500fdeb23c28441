"""Retrieval: reads the store, searches, cites and answers. Never writes the store."""
