"""Spark jobs (batch transcode, live) and the pure map/reduce steps they share."""
