"""HDFS backend over WebHDFS (the `hdfs` package); Spark uses hdfs:// for the same root."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlparse

from hdfs_layout.storage import Storage, StorageError, resolve

DEFAULT_WEBHDFS_PORT = 9870


def webhdfs_address(root_url: str, webhdfs_url: str | None) -> str:
    """The WebHDFS http address for an hdfs:// root (explicit, or the NameNode on port 9870)."""
    if webhdfs_url:
        return webhdfs_url.rstrip("/")
    host = urlparse(root_url).hostname
    if not host:
        raise StorageError(f"storage root {root_url!r} names no NameNode host")
    return f"http://{host}:{DEFAULT_WEBHDFS_PORT}"


class HdfsStorage(Storage):
    def __init__(self, root_url: str, webhdfs_url: str | None = None, user: str | None = None,
                 timeout: float = 30):
        from hdfs import InsecureClient

        parsed = urlparse(root_url)
        self.root_url = root_url.rstrip("/")
        self.root_path = parsed.path.rstrip("/") or "/"
        self.address = webhdfs_address(root_url, webhdfs_url)
        self.client = InsecureClient(self.address, user=user or os.environ.get("HADOOP_USER_NAME")
                                     or "root", timeout=timeout)

    def _abs(self, path: str) -> str:
        rel = resolve(path)
        return f"{self.root_path.rstrip('/')}/{rel}" if rel else self.root_path

    def _call(self, path: str, fn, *args, **kwargs):
        from hdfs.util import HdfsError
        from requests.exceptions import RequestException

        try:
            return fn(*args, **kwargs)
        except HdfsError as exc:
            cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StorageError(f"{self.url(path)}: {cause}") from exc
        except RequestException as exc:
            raise StorageError(
                f"{self.url(path)}: NameNode unreachable at {self.address} ({type(exc).__name__})"
            ) from exc

    def exists(self, path: str) -> bool:
        return self._call(path, self.client.status, self._abs(path), strict=False) is not None

    def size(self, path: str) -> int:
        return int(self._call(path, self.client.status, self._abs(path))["length"])

    def read(self, path: str) -> bytes:
        def _read() -> bytes:
            with self.client.read(self._abs(path)) as reader:
                return reader.read()

        return self._call(path, _read)

    def _commit(self, path: str, upload) -> None:
        target = self._abs(path)
        parent, name = target.rsplit("/", 1)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            self._call(path, upload, tmp)
            # WebHDFS rename does not replace an existing target.
            self._call(path, self.client.delete, target)
            self._call(path, self.client.rename, tmp, target)
        finally:
            self._call(path, self.client.delete, tmp)

    def write(self, path: str, data: bytes) -> None:
        self._commit(path, lambda tmp: self.client.write(tmp, data=data, overwrite=True))

    def put_file(self, local_file: str, path: str) -> None:
        self._commit(path, lambda tmp: self.client.upload(tmp, local_file, overwrite=True))

    def list(self, path: str) -> list[str]:
        if not self.exists(path):
            return []
        names = self._call(path, self.client.list, self._abs(path))
        return sorted(n for n in names if not n.startswith("."))

    def delete(self, path: str, recursive: bool = False) -> None:
        if not resolve(path):
            raise StorageError(f"refusing to delete the storage root {self.root_url}")
        self._call(path, self.client.delete, self._abs(path), recursive=recursive)

    def fetch(self, path: str, workdir: str) -> str:
        local = os.path.join(workdir, resolve(path).replace("/", "_"))
        self._call(path, self.client.download, self._abs(path), local, overwrite=True)
        return local
