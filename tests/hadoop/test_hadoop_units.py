"""Fast checks of the Hadoop plumbing, with no cluster: the WebHDFS address from
HADOOP_CONF_DIR, DataNode retries against a fake NameNode, serve's answer when HDFS is
down, and what ./spark-submit.sh hands to spark-submit."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hadooptools import REPO

from hdfs_layout import StorageError, StorageUnavailable, open_storage
from hdfs_layout.webhdfs import webhdfs_address


def _site(conf: Path, props: dict[str, str]) -> None:
    body = "".join(f"<property><name>{k}</name><value>{v}</value></property>"
                   for k, v in props.items())
    (conf / "hdfs-site.xml").write_text(f"<configuration>{body}</configuration>")


def test_webhdfs_address_from_hadoop_conf_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    _site(tmp_path, {"dfs.namenode.http-address": "0.0.0.0:50070"})
    assert webhdfs_address("hdfs://nn1:8020/x", None) == "http://nn1:50070"
    _site(tmp_path, {"dfs.namenode.http-address": "nn1:9871"})
    assert webhdfs_address("hdfs://nn1:8020/x", None) == "http://nn1:9871"
    assert webhdfs_address("hdfs://other:8020/x", None) == "http://other:9870"  # not its NN
    assert webhdfs_address("hdfs://nn1:8020/x", "http://gw:14000") == "http://gw:14000"
    _site(tmp_path, {"dfs.nameservices": "prod", "dfs.ha.namenodes.prod": "a, b",
                     "dfs.namenode.http-address.prod.a": "nn-a:9870",
                     "dfs.namenode.http-address.prod.b": "nn-b:9870"})
    assert webhdfs_address("hdfs://prod/sparkcast", None) == "http://nn-a:9870;http://nn-b:9870"
    (tmp_path / "hdfs-site.xml").write_text("not xml")
    assert webhdfs_address("hdfs://nn1:8020/x", None) == "http://nn1:9870"


class _FakeHdfs(http.server.BaseHTTPRequestHandler):
    """A NameNode that sends reads to a dead DataNode `dead_first` times, then to itself."""

    dead_port = 1
    dead_first = 0
    opens = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/dn/"):
            body = b"segment bytes"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        type(self).opens += 1
        port = self.dead_port if type(self).opens <= self.dead_first else self.server.server_port
        self.send_response(307)
        self.send_header("Location", f"http://127.0.0.1:{port}/dn/x")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_namenode() -> Iterator[tuple[str, type[_FakeHdfs]]]:
    handler = type("Handler", (_FakeHdfs,), {"opens": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


def test_a_read_sent_to_a_dead_datanode_is_retried(fake_namenode, monkeypatch) -> None:
    monkeypatch.setattr("hdfs_layout.webhdfs.DATANODE_RETRY_DELAYS", (0.01, 0.01, 0.01))
    address, handler = fake_namenode
    storage = open_storage("hdfs://127.0.0.1:1/root", webhdfs_url=address)
    handler.dead_first = 2
    assert storage.read("streams/s/out/a/00000001.m4s") == b"segment bytes"
    assert handler.opens == 3
    handler.opens, handler.dead_first = 0, 10
    with pytest.raises(StorageUnavailable) as info:
        storage.read("streams/s/out/a/00000001.m4s")
    assert str(info.value) == ("hdfs://127.0.0.1:1/root/streams/s/out/a/00000001.m4s: DataNode "
                               "unreachable at http://127.0.0.1:1 (ConnectionError)")
    assert handler.opens == 4  # the first try and three retries


def test_namenode_unreachable_is_not_retried(monkeypatch) -> None:
    monkeypatch.setattr("hdfs_layout.webhdfs.DATANODE_RETRY_DELAYS", (5.0,))
    storage = open_storage("hdfs://127.0.0.1:1/root", webhdfs_url="http://127.0.0.1:1")
    with pytest.raises(StorageUnavailable, match="NameNode unreachable at http://127.0.0.1:1"):
        storage.read("streams/s/manifest.mpd")  # would take 5 s if it were retried
    assert issubclass(StorageUnavailable, StorageError)


def test_serve_answers_503_not_404_when_hdfs_is_down(tmp_path: Path) -> None:
    from core.config import Settings
    from serve import create_app

    app = create_app(Settings(root="hdfs://127.0.0.1:1/sparkcast",
                              webhdfs_url="http://127.0.0.1:1",
                              database_url=f"sqlite:///{tmp_path / 'db.sqlite'}"),
                     {"TESTING": True, "EDGE_FILLER": False})
    client = app.test_client()
    assert client.get("/streams/s/out/180p/00000000.m4s").status_code == 503
    assert client.get("/streams/s/manifest.mpd").status_code == 503
    assert client.get("/healthz").status_code == 503


def _submitted(*args: str, tmp_path: Path) -> list[str]:
    """The argv ./spark-submit.sh gives spark-submit (a stand-in that prints it)."""
    fake = tmp_path / "fake-spark-submit"
    fake.write_text("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n")
    fake.chmod(0o755)
    proc = subprocess.run([str(REPO / "spark-submit.sh"), *args], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "SPARK_SUBMIT": str(fake),
                                          "PYSPARK_PYTHON": sys.executable}, check=True)
    return proc.stdout.splitlines()


def test_spark_submit_sh_passes_spark_options_through(tmp_path: Path) -> None:
    argv = _submitted("--master", "yarn", "--deploy-mode", "client", "--num-executors", "2",
                      "--executor-memory", "512m", "--executor-cores", "1", "--conf", "a=b",
                      "transcode", "in.mp4", "--root", "hdfs://nn:8020/x", tmp_path=tmp_path)
    entry = argv.index(str(REPO / "sparkcast" / "spark_entry.py"))
    assert argv[entry - 2] == "--py-files" and argv[entry - 1].endswith("sparkcast-py.zip")
    assert argv[entry + 1:] == ["transcode", "in.mp4", "--root", "hdfs://nn:8020/x"]
    spark_opts = argv[:entry - 2]
    assert spark_opts[-14:-2] == ["--master", "yarn", "--deploy-mode", "client",
                                  "--num-executors", "2", "--executor-memory", "512m",
                                  "--executor-cores", "1", "--conf", "a=b"]
    # The OutputFormat the tasks write HDFS files through (jobs/task_output.py).
    assert spark_opts[-2:] == ["--jars", str(REPO / "build" / "sparkcast-spark-io.jar")]
    assert f"spark.pyspark.python={sys.executable}" in spark_opts


def test_spark_submit_sh_adds_its_jar_to_the_users(tmp_path: Path) -> None:
    jar = str(REPO / "build" / "sparkcast-spark-io.jar")
    for given in (["--jars", "a.jar,b.jar"], ["--jars=a.jar,b.jar"]):
        argv = _submitted(*given, "transcode", "in.mp4", tmp_path=tmp_path)
        spark_opts = argv[:argv.index(str(REPO / "sparkcast" / "spark_entry.py")) - 2]
        assert [a for a in spark_opts if "jar" in a] == ["--jars", f"a.jar,b.jar,{jar}"]


@pytest.mark.parametrize(("args", "master"), [
    (["transcode", "in.mp4"], "local[*]"),
    (["transcode", "in.mp4", "--master", "spark://h:7077"], "spark://h:7077"),
    (["--master=local[2]", "transcode", "in.mp4", "--master", "yarn"], "local[2]"),
])
def test_spark_submit_sh_master(args: list[str], master: str, tmp_path: Path) -> None:
    """--master before the job name decides; else the job's own; else local[*]."""
    argv = _submitted(*args, tmp_path=tmp_path)
    spark_opts = argv[:argv.index(str(REPO / "sparkcast" / "spark_entry.py"))]
    masters = [a.split("=", 1)[1] for a in spark_opts if a.startswith("--master=")]
    masters += [spark_opts[i + 1] for i, a in enumerate(spark_opts) if a == "--master"]
    assert masters == [master]


def test_spark_submit_sh_cluster_mode_passes_settings_to_the_driver(tmp_path: Path,
                                                                    monkeypatch) -> None:
    """Cluster mode: the transcode job's driver runs in YARN, so this shell's SPARKCAST_*
    settings go to it as appMasterEnv; the live job takes cluster mode on an hdfs:// root
    only, and is retried by YARN."""
    fake = tmp_path / "spark-submit"
    fake.write_text("#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n")
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "SPARK_SUBMIT": str(fake), "PYSPARK_PYTHON": sys.executable,
           "SPARKCAST_ROOT": "hdfs://nn:8020/x", "SPARKCAST_LADDER": "360:800k,180:300k"}
    argv = subprocess.run([str(REPO / "spark-submit.sh"), "--master", "yarn", "--deploy-mode",
                           "cluster", "transcode", "hdfs://nn:8020/in/"], capture_output=True,
                          text=True, env=env, check=True).stdout.splitlines()
    confs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
    assert "spark.yarn.appMasterEnv.SPARKCAST_ROOT=hdfs://nn:8020/x" in confs
    assert "spark.yarn.appMasterEnv.SPARKCAST_LADDER=360:800k,180:300k" in confs
    assert "spark.yarn.maxAppAttempts=1" in confs
    live = subprocess.run([str(REPO / "spark-submit.sh"), "--master", "yarn", "--deploy-mode",
                           "cluster", "live"], capture_output=True, text=True, env=env,
                          check=True).stdout.splitlines()
    confs = [live[i + 1] for i, a in enumerate(live) if a == "--conf"]
    assert "spark.yarn.maxAppAttempts=4" in confs
    assert "spark.yarn.appMasterEnv.SPARKCAST_ROOT=hdfs://nn:8020/x" in confs
    no_root = {k: v for k, v in env.items() if k != "SPARKCAST_ROOT"}
    for local_env, args in (({"SPARKCAST_ROOT": "file:///srv/media"}, []),
                            ({}, ["--root", "/srv/media"])):
        proc = subprocess.run([str(REPO / "spark-submit.sh"), "--deploy-mode", "cluster",
                               "live", *args], capture_output=True, text=True,
                              env={**no_root, **local_env})
        assert proc.returncode == 2 and "needs an hdfs:// root" in proc.stderr, proc.stderr
    help_text = subprocess.run([str(REPO / "spark-submit.sh"), "--help"], capture_output=True,
                               text=True, check=True).stdout
    for item in ("spark://HOST:7077", "yarn", "--num-executors", "--executor-memory",
                 "--executor-cores", "--conf", "HADOOP_CONF_DIR", "transcode", "live"):
        assert item in help_text, item
