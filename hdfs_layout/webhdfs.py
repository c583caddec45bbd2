"""HDFS backend over WebHDFS (the `hdfs` package); Spark uses hdfs:// for the same root."""

from __future__ import annotations

import os
import time
import uuid
from urllib.parse import urlparse
from xml.etree import ElementTree

from hdfs_layout.storage import Storage, StorageError, StorageUnavailable, resolve

DEFAULT_WEBHDFS_PORT = 9870
# Waits before asking the NameNode again when the DataNode it sent us to does not answer.
# It picks at random among equally close replicas, and skips a DataNode once it is stale
# (dfs.namenode.avoid.read.stale.datanode, after dfs.namenode.stale.datanode.interval).
DATANODE_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)


def webhdfs_address(root_url: str, webhdfs_url: str | None) -> str:
    """The WebHDFS http address for an hdfs:// root: explicit; else what $HADOOP_CONF_DIR's
    hdfs-site.xml gives for the root's NameNode or nameservice; else the NameNode on 9870."""
    if webhdfs_url:
        return webhdfs_url.rstrip("/")
    host = urlparse(root_url).hostname
    if not host:
        raise StorageError(f"storage root {root_url!r} names no NameNode host")
    return _from_hadoop_conf(host) or f"http://{host}:{DEFAULT_WEBHDFS_PORT}"


def _from_hadoop_conf(host: str) -> str | None:
    """A nameservice's NameNodes (HA; joined with ';', which the hdfs package tries in
    turn), or dfs.namenode.http-address when it is on host. None when the conf says nothing."""
    site = _hadoop_site("hdfs-site.xml")
    if host in (s.strip() for s in site.get("dfs.nameservices", "").split(",")):
        ids = [i.strip() for i in site.get(f"dfs.ha.namenodes.{host}", "").split(",")]
        found = [site.get(f"dfs.namenode.http-address.{host}.{i}") for i in ids]
        return ";".join(f"http://{a}" for a in found if a) or None
    address = site.get("dfs.namenode.http-address", "")
    nn_host, _, port = address.rpartition(":")
    if nn_host in (host, "0.0.0.0") and port:
        return f"http://{host}:{port}"
    return None


def _hadoop_site(name: str) -> dict[str, str]:
    """The properties of $HADOOP_CONF_DIR/<name>; {} without one."""
    conf_dir = os.environ.get("HADOOP_CONF_DIR")
    if not conf_dir:
        return {}
    try:
        root = ElementTree.parse(os.path.join(conf_dir, name)).getroot()
    except (OSError, ElementTree.ParseError):
        return {}
    return {(p.findtext("name") or "").strip(): (p.findtext("value") or "").strip()
            for p in root.iter("property")}


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

    def _call(self, path: str, fn, *args, retry_datanodes: bool = False, **kwargs):
        """fn(*args, **kwargs), its failures as one-line StorageErrors naming the URL.

        With retry_datanodes (idempotent transfers only), a DataNode that does not answer
        is retried through the NameNode (see DATANODE_RETRY_DELAYS).
        """
        from hdfs.util import HdfsError
        from requests.exceptions import RequestException
        from urllib3.exceptions import HTTPError as TransferError

        delays = iter(DATANODE_RETRY_DELAYS if retry_datanodes else ())
        while True:
            try:
                return fn(*args, **kwargs)
            except HdfsError as exc:
                cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise StorageError(f"{self.url(path)}: {cause}") from exc
            except (RequestException, TransferError) as exc:
                node = self._datanode(exc)
                if node is None:
                    raise StorageUnavailable(f"{self.url(path)}: NameNode unreachable at "
                                       f"{self.address} ({type(exc).__name__})") from exc
                delay = next(delays, None)
                if delay is None:
                    raise StorageUnavailable(f"{self.url(path)}: DataNode unreachable at {node} "
                                       f"({type(exc).__name__})") from exc
                time.sleep(delay)

    def _datanode(self, exc: Exception) -> str | None:
        """The DataNode a failed transfer went to; None when it was the NameNode."""
        from requests.exceptions import RequestException

        if not isinstance(exc, RequestException):
            return "a DataNode"  # a body broke off mid-transfer: only DataNodes send bodies
        if exc.request is None:
            return None
        url = urlparse(exc.request.url)
        origin = f"{url.scheme}://{url.netloc}"
        # The address may list several NameNodes (HA): "http://nn1:9870;http://nn2:9870".
        namenodes = {a.strip().rstrip("/") for a in self.address.split(";")}
        return None if origin in namenodes else origin

    def exists(self, path: str) -> bool:
        return self._call(path, self.client.status, self._abs(path), strict=False) is not None

    def size(self, path: str) -> int:
        return int(self._call(path, self.client.status, self._abs(path))["length"])

    def read(self, path: str) -> bytes:
        def _read() -> bytes:
            with self.client.read(self._abs(path)) as reader:
                return reader.read()

        return self._call(path, _read, retry_datanodes=True)

    def _commit(self, path: str, upload) -> None:
        target = self._abs(path)
        parent, name = target.rsplit("/", 1)
        tmps: list[str] = []

        def attempt() -> str:
            # A fresh name per attempt: a failed upload may hold its file's lease for a while.
            tmps.append(f"{parent}/.{name}.{uuid.uuid4().hex}.tmp")
            upload(tmps[-1])
            return tmps[-1]

        try:
            tmp = self._call(path, attempt, retry_datanodes=True)
            # WebHDFS rename does not replace an existing target.
            self._call(path, self.client.delete, target)
            self._call(path, self.client.rename, tmp, target)
        finally:
            for tmp in tmps:
                self._call(path, self.client.delete, tmp)

    def write(self, path: str, data: bytes) -> None:
        self._commit(path, lambda tmp: self.client.write(tmp, data=data, overwrite=True))

    def put_file(self, local_file: str, path: str) -> None:
        self._commit(path, lambda tmp: self.client.upload(tmp, local_file, overwrite=True))

    def create(self, path: str, data: bytes) -> bool:
        target = self._abs(path)
        parent, name = target.rsplit("/", 1)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
        try:
            self._call(path, self.client.write, tmp, data=data, overwrite=True,
                       retry_datanodes=True)
            try:
                # The NameNode's rename refuses an existing target: the atomic "if absent".
                self._call(path, self.client.rename, tmp, target)
                return True
            except StorageUnavailable:
                raise
            except StorageError:
                if self.exists(path):
                    return False
                raise
        finally:
            self._call(path, self.client.delete, tmp)

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
        self._call(path, self.client.download, self._abs(path), local, overwrite=True,
                   retry_datanodes=True)
        return local
