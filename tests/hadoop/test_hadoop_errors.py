"""HDFS failures are one line naming the URL and the cause, exit non-zero, and leave no
manifest listing anything half-written.

The mini cluster runs with permissions on; its superuser is the user running the tests,
and "alice" is an ordinary user.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from hadooptools import STREAM, SUPERUSER, Hadoop, job_args

pytestmark = pytest.mark.heavy
MANIFEST_SUFFIXES = (".mpd", ".m3u8")


def sparkcast(args: list[str], env: dict[str, str], timeout: float = 300
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sparkcast", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def the_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The command's error: exactly one `sparkcast: error:` line, the last one on stderr."""
    assert proc.returncode != 0, proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("sparkcast: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr[-2000:]
    return errors[0]


def manifests(hadoop: Hadoop, root: str) -> list[str]:
    client = hadoop.client()
    stream = f"{hadoop.path(root)}/streams/{STREAM}"
    if client.status(stream, strict=False) is None:
        return []
    return [n for n in client.list(stream) if n.endswith(MANIFEST_SUFFIXES)]


def test_root_missing(hadoop: Hadoop, clip: Path) -> None:
    root = f"{hadoop.info.namenode_rpc}/tests/no-such-root"
    hadoop.client().delete("/tests/no-such-root", recursive=True)
    for args in (["submit", *job_args(clip, root)],
                 ["transcode", STREAM, "--root", root, "--master", "local[1]"]):
        error = the_error(sparkcast(args, hadoop.env()))
        assert error == (f"sparkcast: error: {root}: no such directory (the storage root must "
                         "exist: hdfs dfs -mkdir -p /tests/no-such-root)")
    assert hadoop.client().status("/tests/no-such-root", strict=False) is None


def test_permission_denied_writing_the_root(hadoop: Hadoop, clip: Path) -> None:
    root = hadoop.root("locked", owner=SUPERUSER, mode="755")
    proc = sparkcast(["submit", *job_args(clip, root)], hadoop.env(user="alice"))
    error = the_error(proc)
    # The video's error: its input, then the path it could not write.
    assert error.startswith(f"sparkcast: error: {clip.as_uri()}: {root}/streams/{STREAM}/")
    assert "Permission denied: user=alice, access=WRITE" in error
    assert "the job table was not written" in proc.stderr
    assert hadoop.client().list(hadoop.path(root)) == []


def test_permission_denied_reading_the_chunks_in_spark(hadoop: Hadoop, clip: Path) -> None:
    """alice owns the stream but not its raw chunks: Spark's Hadoop client is refused."""
    root = hadoop.root("unreadable", owner="alice", mode="755")
    ingest = sparkcast(["ingest", str(clip), "--stream-id", STREAM, "--root", root,
                        "--chunk-seconds", "4"], hadoop.env())
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    client, raw = hadoop.client(), f"{hadoop.path(root)}/streams/{STREAM}/raw"
    client.set_owner(f"{hadoop.path(root)}/streams/{STREAM}", owner="alice")
    for name in client.list(raw):
        client.set_permission(f"{raw}/{name}", "600")
    error = the_error(sparkcast(["transcode", STREAM, "--root", root, "--ladder", "120:150k",
                                 "--master", "local[1]"], hadoop.env(user="alice")))
    assert error.startswith(f"sparkcast: error: {root}: AccessControlException: "
                            "Permission denied: user=alice, access=READ")
    assert manifests(hadoop, root) == []


def test_namenode_unreachable(hadoop: Hadoop, clip: Path) -> None:
    root = "hdfs://127.0.0.1:1/sparkcast"
    env = hadoop.env(SPARKCAST_WEBHDFS_URL="http://127.0.0.1:1")
    for args in (["submit", *job_args(clip, root)], ["transcode", STREAM, "--root", root]):
        error = the_error(sparkcast(args, env, timeout=60))
        assert error == (f"sparkcast: error: {root}: NameNode unreachable at "
                         "http://127.0.0.1:1 (ConnectionError)")


def test_a_job_failing_halfway_lists_nothing(hadoop: Hadoop, clip: Path) -> None:
    """A namespace quota on the stream's folder lets the job write some segments, then
    fails its writes (NSQuotaExceededException): the job fails with one line naming the
    segment, the segments written stay, and no manifest or playlist exists."""
    root = hadoop.root("quota")
    ingest = sparkcast(["ingest", str(clip), "--stream-id", STREAM, "--root", root,
                        "--chunk-seconds", "4"], hadoop.env())
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    client, stream = hadoop.client(), f"{hadoop.path(root)}/streams/{STREAM}"
    used = client.content(stream)
    quota = used["directoryCount"] + used["fileCount"] + 8  # room for a few segments
    set_quota = requests.put(f"{hadoop.info.webhdfs}/webhdfs/v1{stream}", timeout=30, params={
        "op": "SETQUOTA", "namespacequota": quota, "storagespacequota": -1,
        "user.name": SUPERUSER})  # the hdfs package has no quota verb
    assert set_quota.status_code == 200, set_quota.text
    proc = sparkcast(["transcode", STREAM, "--root", root, "--ladder", "180:300k,120:150k",
                      "--master", "local[1]"], hadoop.env())
    error = the_error(proc)
    assert error.startswith(f"sparkcast: error: {root}/streams/{STREAM}/")
    assert "NameSpace quota (directories and files)" in error and "is exceeded" in error
    written = [name for folder, _, files in client.walk(f"{stream}/out") for name in files
               if name.endswith((".m4s", ".mp4"))]
    assert written, "the quota left no room for any segment: the test proves nothing"
    assert manifests(hadoop, root) == []
