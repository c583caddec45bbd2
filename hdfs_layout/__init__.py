"""Storage layout and backends: every path sparkcast reads or writes is spelled here."""

from hdfs_layout.backends import open_storage
from hdfs_layout.layout import LayoutError, StreamLayout, validate_stream_id
from hdfs_layout.storage import Storage, StorageError, StorageUnavailable

__all__ = [
    "LayoutError", "Storage", "StorageError", "StorageUnavailable", "StreamLayout", "open_storage",
    "validate_stream_id",
]
