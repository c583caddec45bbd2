"""The storage backend for a root URL: file:// (or a bare absolute path) and hdfs://."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

from hdfs_layout.storage import LocalStorage, Storage, StorageError
from hdfs_layout.webhdfs import HdfsStorage


def open_storage(root_url: str, webhdfs_url: str | None = None, user: str | None = None) -> Storage:
    """The backend for a root URL (see the module docstring for the convention)."""
    parsed = urlparse(root_url)
    if parsed.scheme in ("", "file"):
        path = unquote(parsed.path) if parsed.scheme else root_url
        if not os.path.isabs(path):
            raise StorageError(f"storage root {root_url!r} must be an absolute path or file:// URL")
        return LocalStorage(path)
    if parsed.scheme == "hdfs":
        return HdfsStorage(root_url, webhdfs_url=webhdfs_url, user=user)
    raise StorageError(f"storage root {root_url!r}: unsupported scheme {parsed.scheme!r} "
                       "(use file:// or hdfs://)")
