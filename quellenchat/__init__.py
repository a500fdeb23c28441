"""Shared core: settings, types, the embedder and the store layout."""
