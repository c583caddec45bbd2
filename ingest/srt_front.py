"""The SRT front: encoders on lossy contribution links publish over SRT, into the same
live chunker as RTMP publishers.

    sparkcast srt run [--host H] [--port P]
    ffmpeg ... -f mpegts "srt://HOST:PORT?streamid=<stream key>"

A caller's `streamid` carries its stream key: bare, or in SRT's access control form
`#!::r=<key>,m=publish`. The key is checked in the listen callback, during the handshake
(store/publish_gate.py: the database, or the last known keys while it is down), so a
refused caller's connection is rejected there (reason 1403, "forbidden") and never sends
a byte. An accepted caller's MPEG-TS is written to a recording beside the front, which a
chunker (`settings.live_ingest_command`, as for RTMP) reads as it grows, and TERMed when
the caller goes: the chunker then reads the rest and closes its chunks, as after nginx's
end of an RTMP publish. SRT itself retransmits what a lossy link drops, within
`srt_latency_ms`.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.config import Settings
from ingest.libsrt import LibSrt, SrtError
from ingest.rtmp import RtmpError, live_ingest_argv
from store.db import make_engine
from store.keys import MAX_KEY_LEN, fingerprint, publish_done
from store.publish_gate import admit

log = logging.getLogger("sparkcast.srt")
KEY = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_KEY_LEN}}}")
CHUNKER_STOP_S = 30.0  # the chunker's last GOPs and chunk after the caller went


def publish_key(streamid: str) -> str | None:
    """The stream key an SRT caller's streamid carries for a publish, or None (a request to
    play, another resource syntax, junk). Pure."""
    if streamid.startswith("#!::"):
        fields: dict[str, str] = {}
        for item in streamid[4:].split(","):
            name, sep, value = item.partition("=")
            if not sep:
                return None
            fields[name.strip()] = value.strip()
        if fields.get("m", "publish") != "publish":
            return None
        key = fields.get("r", "")
    else:
        key = streamid
    return key if KEY.fullmatch(key) else None


@dataclass(frozen=True)
class Caller:
    key: str
    stream_id: str
    peer: str


class SrtFront:
    def __init__(self, settings: Settings, run_dir: Path, host: str | None = None,
                 port: int | None = None) -> None:
        self.settings = settings
        self.host = host or settings.srt_host
        self.port = settings.srt_port if port is None else port
        self.run_dir = Path(run_dir)
        self.lib: LibSrt | None = None
        self.listener: int | None = None
        self._engine = make_engine(settings.database_url)
        self._pending: dict[int, Caller] = {}  # accepted in the handshake, not yet served
        self._live: dict[int, subprocess.Popen[bytes] | None] = {}  # socket -> its chunker
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # the handshake ------------------------------------------------------------------------

    def on_caller(self, sock: int, streamid: str, peer: str) -> bool:
        key = publish_key(streamid)
        if key is None:
            log.warning("SRT caller %s refused: its streamid is not a publish with a stream "
                        "key (%d characters)", peer, len(streamid))
            return False
        with Session(self._engine) as session:
            admission = admit(session, key, peer, self.settings.publish_keys_file)
        decision = admission.decision
        if admission.database_error:
            log.warning("SRT publish %s: database unavailable (%s); key fingerprint %s is %s",
                        "accepted" if decision.allowed else "refused",
                        admission.database_error, fingerprint(key),
                        "among the last known keys" if decision.allowed else "not known")
        if not decision.allowed or decision.stream_id is None:
            log.warning("SRT publish refused: %s (key fingerprint %s, caller %s)",
                        decision.reason, fingerprint(key), peer)
            return False
        log.info("SRT publish accepted: key id %s, stream %s, caller %s", decision.key_id,
                 decision.stream_id, peer)
        with self._lock:
            self._pending[sock] = Caller(key, decision.stream_id, peer)
        return True

    # running ---------------------------------------------------------------------------------

    def start(self) -> SrtFront:
        (self.run_dir / "recordings").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.lib = LibSrt.load()
        self.listener = self.lib.listen(self.host, self.port, self.settings.srt_latency_ms,
                                        self.on_caller)
        self.port = self.lib.bound_port(self.listener)
        thread = threading.Thread(target=self._accept_loop, name="srt-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        log.info("SRT front listening on %s:%d (latency %d ms)", self.host, self.port,
                 self.settings.srt_latency_ms)
        return self

    @property
    def url(self) -> str:
        return f"srt://{self.host}:{self.port}"

    def _accept_loop(self) -> None:
        assert self.lib is not None and self.listener is not None
        while not self._stopping.is_set():
            try:
                sock = self.lib.accept(self.listener)
            except SrtError as exc:
                if not self._stopping.is_set():
                    log.error("SRT accept failed: %s", exc)
                return
            with self._lock:
                caller = self._pending.pop(sock, None)
            if caller is None:  # cannot happen: every accepted socket passed the callback
                self.lib.close(sock)
                continue
            thread = threading.Thread(target=self._serve, args=(sock, caller),
                                      name=f"srt-{caller.stream_id}", daemon=True)
            thread.start()
            # publishes that ended are forgotten: a front runs for months
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _serve(self, sock: int, caller: Caller) -> None:
        assert self.lib is not None
        recording = (self.run_dir / "recordings"
                     / f"{caller.stream_id}-{time.time_ns() // 1_000_000}.ts")
        received, chunker = 0, None
        try:
            with open(recording, "wb") as out:
                chunker = self._start_chunker(caller, recording)
                with self._lock:
                    self._live[sock] = chunker
                # without a chunker nothing would read it: the caller is let go at once
                while chunker is not None and (data := self.lib.recv(sock)):
                    out.write(data)
                    out.flush()  # the chunker reads the file as it grows
                    received += len(data)
        except OSError as exc:  # the recording could not be written (disk full, ...)
            log.error("SRT publish of stream %s cut: %s", caller.stream_id, exc)
        finally:
            self.lib.close(sock)
            log.info("SRT publish ended: stream %s, caller %s, %d bytes", caller.stream_id,
                     caller.peer, received)
            self._publish_done(caller)
            if chunker is None:
                recording.unlink(missing_ok=True)
            else:
                self._stop_chunker(chunker, caller)
            with self._lock:
                self._live.pop(sock, None)

    def _stop_chunker(self, chunker: subprocess.Popen[bytes], caller: Caller) -> None:
        """TERM: the chunker reads the rest of the recording and closes its chunks."""
        chunker.terminate()
        try:
            chunker.wait(CHUNKER_STOP_S)
        except subprocess.TimeoutExpired:
            log.error("SRT: the chunker of stream %s did not end; killed", caller.stream_id)
            chunker.kill()
            chunker.wait()

    def _start_chunker(self, caller: Caller, recording: Path) -> subprocess.Popen[bytes] | None:
        try:
            argv = live_ingest_argv(self.settings.live_ingest_command,
                                    stream_id=caller.stream_id, url=f"file:{recording}",
                                    addr=caller.peer, chunk_seconds=self.settings.chunk_seconds)
        except RtmpError as exc:
            log.error("SRT: no chunker for stream %s: %s", caller.stream_id, exc)
            return None
        log_path = self.run_dir / "logs" / f"live-{caller.stream_id}.log"
        try:
            with open(log_path, "ab") as log_file:
                return subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        except OSError as exc:
            log.error("SRT: no chunker for stream %s: cannot run %s: %s", caller.stream_id,
                      argv[0], exc)
            return None

    def _publish_done(self, caller: Caller) -> None:
        try:
            with Session(self._engine) as session:
                publish_done(session, caller.key)
                session.commit()
        except SQLAlchemyError as exc:
            log.error("SRT publish_done of stream %s not recorded: database unavailable (%s)",
                      caller.stream_id, type(exc).__name__)

    def stop(self) -> None:
        """Refuse new callers, end every publish (their chunkers close their chunks)."""
        self._stopping.set()
        if self.lib is None:
            return
        if self.listener is not None:
            self.lib.close(self.listener)
        with self._lock:
            socks = list(self._live)
        for sock in socks:
            self.lib.close(sock)  # its recv returns: the serving thread ends the publish
        for thread in self._threads:
            thread.join(CHUNKER_STOP_S + 5)
        self._engine.dispose()

    def __enter__(self) -> SrtFront:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
