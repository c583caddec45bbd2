"""Fixtures for RTMP tests: serve (the key callbacks) on a real HTTP port, a real
nginx-rtmp front started from the project's config, and real ffmpeg publishers."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from werkzeug.serving import make_server

from core.config import Settings
from ingest.rtmp import RtmpServer
from serve import create_app
from store.db import make_engine, session_scope
from store.keys import create_key

FAKE_CHUNKER = Path(__file__).with_name("fake_live_ingest.py")


@dataclass
class RtmpStack:
    rtmp: RtmpServer
    engine: Engine
    chunker_out: Path

    def new_key(self, stream_id: str) -> tuple[int, str]:
        with session_scope(self.engine) as s:
            row, key = create_key(s, stream_id)
            return row.id, key

    def url(self, key: str) -> str:
        return f"{self.rtmp.publish_url}/{key}"


def publisher(url: str, seconds: float, size: str = "320x240") -> subprocess.Popen[bytes]:
    """A real RTMP publisher: ffmpeg, test pattern + tone, in real time (-re)."""
    return subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-nostats", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=15",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
         "-t", f"{seconds:g}", "-c:v", "libx264", "-preset", "ultrafast",
         "-tune", "zerolatency", "-g", "15", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "64k", "-f", "flv", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def rtmp_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtmpStack]:
    tmp = tmp_path_factory.mktemp("rtmp")
    out = tmp / "chunker"
    out.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARKCAST_CONFIG", str(tmp / "no-config.toml"))
        settings = Settings(
            database_url=f"sqlite:///{tmp / 'sparkcast.db'}", root=(tmp / "root").as_uri(),
            live_ingest_command=(f"{{python}} {FAKE_CHUNKER} --out {out} "
                                 "--stream-id {stream_id} {url}"))
        app = create_app(settings, {"TESTING": True})
        http = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        rtmp = RtmpServer(settings, tmp / "run", f"http://127.0.0.1:{http.server_port}",
                          host="127.0.0.1", port=0)
        engine = make_engine(settings.database_url)
        try:
            rtmp.start()
            yield RtmpStack(rtmp, engine, out)
        finally:
            rtmp.stop()
            http.shutdown()
            engine.dispose()
