"""Storage backends behind one small set of verbs.

Every path given to a backend is relative to the storage root and goes
through `resolve()`, which refuses anything that would leave the root. Writes
are atomic: bytes go to a temporary name in the same folder, then are renamed,
so a reader (a player, a manifest writer) never sees half a file.

Root URL convention (SPARKCAST_ROOT):
  file:///var/lib/sparkcast   or a bare absolute path  -> LocalStorage
  hdfs://namenode:8020/sparkcast                       -> HdfsStorage over WebHDFS
      (WebHDFS address from SPARKCAST_WEBHDFS_URL, default http://namenode:9870;
       Spark itself reads and writes the same root through hdfs://)
"""

from __future__ import annotations

import os
import shutil
import uuid
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath


class StorageError(RuntimeError):
    """A storage operation failed; the message names the URL and the cause."""


class StorageUnavailable(StorageError):
    """The storage did not answer (e.g. a NameNode or DataNode down): trying later may work,
    and the file may well exist."""


def resolve(path: str) -> str:
    """Normalise a root-relative path; raise StorageError if it could escape the root."""
    if not isinstance(path, str) or "\x00" in path or "\\" in path:
        raise StorageError(f"invalid storage path {path!r}")
    if path.startswith("/"):
        raise StorageError(f"storage path {path!r} must be relative to the root")
    parts = [p for p in PurePosixPath(path).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise StorageError(f"storage path {path!r} leaves the root")
    return "/".join(parts)


class Storage(ABC):
    """The verbs every backend offers. Paths are relative to `root_url`."""

    root_url: str

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def size(self, path: str) -> int:
        """Size in bytes; raises StorageError if missing."""

    @abstractmethod
    def read(self, path: str) -> bytes: ...

    @abstractmethod
    def write(self, path: str, data: bytes) -> None:
        """Atomically create or replace path with data."""

    @abstractmethod
    def create(self, path: str, data: bytes) -> bool:
        """Atomically create path with data unless it exists: True if this call created it,
        False if it was there (first writer wins; the file is never replaced)."""

    @abstractmethod
    def list(self, path: str) -> list[str]:
        """Sorted names directly under a folder; [] when the folder does not exist."""

    @abstractmethod
    def delete(self, path: str, recursive: bool = False) -> None: ...

    @abstractmethod
    def fetch(self, path: str, workdir: str) -> str:
        """A local file holding path's bytes (the file itself on local storage)."""

    @abstractmethod
    def put_file(self, local_file: str, path: str) -> None:
        """Atomically copy a local file to path."""

    def url(self, path: str) -> str:
        """Full URL of path, as Spark and other tools name it."""
        rel = resolve(path)
        return f"{self.root_url.rstrip('/')}/{rel}" if rel else self.root_url

    def local_path(self, path: str) -> str | None:
        """A filesystem path for path when the backend is local, else None."""
        return None

    def write_text(self, path: str, text: str) -> None:
        self.write(path, text.encode("utf-8"))

    def read_text(self, path: str) -> str:
        return self.read(path).decode("utf-8")


class LocalStorage(Storage):
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        self.root_url = self.root.as_uri()
        try:
            # A local root is made on first use, so the defaults need no set-up.
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"{self.root_url}: cannot create the storage root "
                               f"({exc.strerror})") from exc

    def _p(self, path: str) -> Path:
        return self.root / resolve(path) if resolve(path) else self.root

    def local_path(self, path: str) -> str:
        return str(self._p(path))

    def exists(self, path: str) -> bool:
        return self._p(path).exists()

    def size(self, path: str) -> int:
        try:
            return self._p(path).stat().st_size
        except OSError as exc:
            raise StorageError(f"{self.url(path)}: {exc.strerror}") from exc

    def read(self, path: str) -> bytes:
        try:
            return self._p(path).read_bytes()
        except OSError as exc:
            raise StorageError(f"{self.url(path)}: {exc.strerror}") from exc

    def _atomic(self, path: str, fill) -> None:
        target = self._p(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                fill(tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"{self.url(path)}: {exc.strerror or exc}") from exc

    def write(self, path: str, data: bytes) -> None:
        self._atomic(path, lambda tmp: tmp.write_bytes(data))

    def put_file(self, local_file: str, path: str) -> None:
        self._atomic(path, lambda tmp: shutil.copyfile(local_file, tmp))

    def create(self, path: str, data: bytes) -> bool:
        target = self._p(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                tmp.write_bytes(data)
                os.link(tmp, target)  # a hard link never replaces: the atomic "if absent"
                return True
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"{self.url(path)}: {exc.strerror or exc}") from exc

    def list(self, path: str) -> list[str]:
        p = self._p(path)
        if not p.is_dir():
            return []
        return sorted(n for n in os.listdir(p) if not n.startswith("."))

    def delete(self, path: str, recursive: bool = False) -> None:
        p = self._p(path)
        if p == self.root:
            raise StorageError(f"refusing to delete the storage root {self.root_url}")
        if p.is_dir():
            if not recursive:
                raise StorageError(f"{self.url(path)} is a folder (pass recursive=True)")
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)

    def fetch(self, path: str, workdir: str) -> str:
        if not self.exists(path):
            raise StorageError(f"{self.url(path)}: no such file")
        return self.local_path(path)
