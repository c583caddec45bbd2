"""Storage layout and backends: every path sparkcast reads or writes is spelled here."""

from hdfs_layout.layout import LayoutError, StreamLayout, validate_stream_id
from hdfs_layout.storage import Storage, StorageError, StorageUnavailable, open_storage

__all__ = [
    "LayoutError", "Storage", "StorageError", "StorageUnavailable", "StreamLayout", "open_storage",
    "validate_stream_id",
]
