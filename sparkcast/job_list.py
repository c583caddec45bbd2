"""Reading the job table for `sparkcast jobs` (through the storage layer: no Spark)."""

from __future__ import annotations

import time

from core.config import Settings
from hdfs_layout import open_storage
from hdfs_layout.layout import job_from_dir, job_table_file, jobs_dir
from jobs.job_table import VideoRow, counts, read_rows


def list_jobs(settings: Settings) -> list[tuple[str, str, dict[str, int]]]:
    """(job id, finished UTC, counts by status) of every job, oldest first."""
    storage = open_storage(settings.root, settings.webhdfs_url, settings.hdfs_user)
    found = []
    for name in storage.list(jobs_dir()) if storage.exists(jobs_dir()) else []:
        job_id = job_from_dir(name)
        if job_id is None or not storage.exists(job_table_file(job_id)):
            continue
        rows = read_rows(storage.read(job_table_file(job_id)))
        finished = max((r.finished for r in rows), default=0.0)
        found.append((finished, job_id, counts(rows)))
    found.sort()
    return [(j, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(f)), n) for f, j, n in found]


def read_job(settings: Settings, job_id: str) -> list[VideoRow]:
    storage = open_storage(settings.root, settings.webhdfs_url, settings.hdfs_user)
    path = job_table_file(job_id)
    if not storage.exists(path):
        raise LookupError(f"job {job_id}: no such job under {storage.url(jobs_dir())}")
    return read_rows(storage.read(path))
