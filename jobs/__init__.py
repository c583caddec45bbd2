"""Spark jobs (the library job over many videos, one ingested stream, live) and the steps
they share: ingest tasks, map (ffmpeg per chunk), reduce (segments -> manifests)."""
