"""Ingest: cut a file or a live stream into raw chunks plus one chunk-index record each."""
