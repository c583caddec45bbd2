"""The live chunker: one publish in, raw chunks on the frame grid out, as they complete.

    sparkcast live-ingest --stream-id ID rtmp://127.0.0.1:1935/live/KEY

One ffmpeg reads the live input and
  - stream-copies the video into one MPEG-TS file per GOP (the segment muxer cuts
    at every keyframe), listing each finished file in a CSV;
  - encodes the audio once, continuously, to fragmented AAC on its stdout
    (ingest/live_audio.py packages it).
A raw chunk is the byte concatenation of the GOP files that hold its frames,
from the GOP containing its first frame, with `skip` frames to drop first:
the same chunk records as batch ingest, so the live job runs the same map step.

A publish that follows an earlier one on the same stream (a reconnect, or this
process restarted by nginx) continues it: the next seq, a new period starting
on the next segment boundary after the previous end, `discontinuity` set.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from core.codecs import AudioCodec
from core.grid import Grid, plan_grid
from core.media.ffmpeg_run import FFMPEG, MediaError, run
from core.media.probe import frame_rate, packets_args, parse_packets, probe_args
from core.records import ChunkRecord, SourceRecord
from hdfs_layout import Storage, StreamLayout
from ingest.live_audio import AudioPackager
from ingest.pipelines import ANCHOR_SLACK_S, Board, PeriodClaim, gop_key, next_period, place
from ingest.stream_lock import StreamLock

log = logging.getLogger("sparkcast.live")
# With two pipelines: how long a publish that finds the newest period live waits for the
# other pipeline's anchors (plus a chunk) before it starts a new period, and how long an
# ending publish looks for the other going on before it writes a last, short chunk.
JOIN_WAIT_S = 5.0
FLUSH_GRACE_S = 3.0


@dataclass
class Gop:
    path: Path
    local: int  # index of its first frame among the frames this publish read
    frames: int
    key: str  # content key (ingest/pipelines.py)
    pts: float  # its keyframe's time in this publish's ffmpeg output, seconds


LIVE_TIMEOUT_S = 12.0  # a live network input that sends nothing for this long has ended


def is_recording(url: str) -> bool:
    """A `file:` input is a front's recording of the publish, still being written: nginx's
    FLV (RTMP) or the SRT front's MPEG-TS (`.ts`)."""
    return url.startswith("file:")


def recording_path(url: str) -> Path:
    return Path(url[len("file:"):])


def _input(url: str) -> list[str]:
    """ffmpeg input options for a live source. A recording is fed through stdin by
    `_feed` (ffmpeg's own -follow cannot be told that the file is complete, and an
    interrupted ffmpeg loses the GOP it was writing: measured)."""
    if is_recording(url):
        fmt = "mpegts" if recording_path(url).suffix == ".ts" else "flv"
        return ["-f", fmt, "-i", "pipe:0"]
    if "://" in url:
        return ["-rw_timeout", str(int(LIVE_TIMEOUT_S * 1e6)), "-i", url]
    return ["-i", url]


def probe_live(url: str, timeout: float = 20.0) -> dict:
    """Streams of a live input, once its first packets are there."""
    deadline = time.monotonic() + timeout
    while True:
        target = str(recording_path(url)) if is_recording(url) else url
        try:
            out = run(probe_args(target), source=_redact(url), timeout=timeout)
            doc = json.loads(out or b"{}")
            if any(s.get("codec_type") == "video" for s in doc.get("streams", [])):
                return doc
        except MediaError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            return doc
        time.sleep(0.2)  # a recording that has only just begun


def _feed(path: Path, sink, done: threading.Event, caught_up: threading.Event) -> None:
    """Copy a growing file into ffmpeg's stdin; after `done`, copy the rest and close.
    `caught_up` is set once everything written so far has been copied."""
    with open(path, "rb") as f:
        try:
            while True:
                data = f.read(1 << 16)
                if data:
                    sink.write(data)
                    continue
                caught_up.set()
                if done.is_set():
                    # nginx has closed the recording: whatever is still unread is the end.
                    rest = f.read()
                    if not rest:
                        break
                    sink.write(rest)
                    continue
                time.sleep(0.05)
        except BrokenPipeError:
            pass
        finally:
            with suppress(BrokenPipeError):
                sink.close()


def _redact(url: str) -> str:
    """A live URL's (or recording's) last path element holds the stream key: never log it."""
    return url.rsplit("/", 1)[0] + "/<key>" if url.startswith(("rtmp", "file:")) else url


def ingest_args(url: str, gop_dir: Path, gop_list: Path, audio: bool, codec: AudioCodec,
                realtime: bool = False) -> list[str]:
    """The live chunker's ffmpeg: video GOP files + continuous AAC on stdout. Pure."""
    args = [FFMPEG, "-v", "error"]
    if realtime:
        args.append("-re")  # a file standing in for a live source, read at its own pace
    args += [*_input(url),
             "-map", "0:v:0", "-c", "copy", "-f", "segment", "-segment_format", "mpegts",
             # A tiny segment time cuts at every keyframe: one file per GOP.
             "-segment_time", "0.001", "-segment_list", str(gop_list),
             "-segment_list_type", "csv", "-segment_list_flags", "+live",
             "-muxdelay", "0", "-muxpreload", "0",
             # Write every packet through at once: a stopped ffmpeg cannot flush its buffer,
             # and the GOP file it was writing must hold every frame it muxed.
             "-flush_packets", "1", str(gop_dir / "gop%08d.ts")]
    if audio:
        args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", codec.bitrate, "-ac",
                 str(codec.channels), "-ar", str(codec.sample_rate),
                 "-af", "aresample=async=1000",  # fill publisher gaps so audio stays in sync
                 "-f", "mp4", "-movflags", "+empty_moov+default_base_moof",
                 # A fragment per AAC frame: the packager cuts them on the video's grid.
                 "-frag_duration", "1", "-fflags", "+bitexact", "pipe:1"]
    return args


class LiveChunker:
    def __init__(self, storage: Storage, stream_id: str, url: str, chunk_seconds: float = 10.0,
                 segment_seconds: float = 2.0, audio: AudioCodec | None = None,
                 realtime: bool = False, stop: threading.Event | None = None,
                 pipeline: str = ""):
        self.storage, self.layout = storage, StreamLayout(stream_id)
        self.pipeline = pipeline  # this front's name with two ingest pipelines, else ""
        self.board = Board(storage, stream_id, pipeline)
        self.stream_id, self.url = stream_id, url
        self.chunk_seconds, self.segment_seconds = chunk_seconds, segment_seconds
        self.audio_codec = audio or AudioCodec()
        self.realtime = realtime
        self.stop = stop or threading.Event()
        # One chunker per stream and pipeline (the other pipeline's runs beside it).
        self.lock = StreamLock(f"{stream_id}.{pipeline}" if pipeline else stream_id)
        # nginx's worker starts the chunker of a recording; it is gone if we are reparented.
        self._front = os.getppid()
        self.chunks: list[ChunkRecord] = []

    # set-up -------------------------------------------------------------------------------

    def _source(self, streams: dict) -> tuple[SourceRecord, bool]:
        video = next((s for s in streams.get("streams", []) if s.get("codec_type") == "video"),
                     None)
        if video is None:
            raise MediaError(_redact(self.url), "live input has no video stream")
        has_audio = any(s.get("codec_type") == "audio" for s in streams["streams"])
        if self.storage.exists(self.layout.source_record):
            source = SourceRecord.from_json(self.storage.read(self.layout.source_record))
            if source.live:
                return source, has_audio
        rate = frame_rate(video)
        if rate is None:
            raise MediaError(_redact(self.url), "live input's video has no usable frame rate")
        grid = plan_grid(rate, self.segment_seconds, self.chunk_seconds)
        source = SourceRecord(
            stream_id=self.stream_id, input=_redact(self.url), width=int(video["width"]),
            height=int(video["height"]), sar=video.get("sample_aspect_ratio", "1:1")
            .replace(":", "/").replace("0/1", "1"), frame_rate=str(rate),
            segment_frames=grid.segment_frames, chunk_frames=grid.chunk_frames, frames=0,
            duration=0.0, audio=None, live=True)
        if self.storage.exists(self.layout.source_record):
            # an earlier file ingest of this id: the live stream replaces its record
            self.storage.write_text(self.layout.source_record, source.to_json())
        elif not self.storage.create(self.layout.source_record, source.to_json().encode()):
            # the other ingest pipeline wrote it first: one grid for both
            source = SourceRecord.from_json(self.storage.read(self.layout.source_record))
        return source, has_audio

    # the loop -------------------------------------------------------------------------------

    def run(self) -> list[ChunkRecord]:
        """Chunk until the input ends or stop is set; returns the chunks written."""
        with self.lock:
            chunks = self._run()
        if is_recording(self.url):
            recording_path(self.url).unlink(missing_ok=True)  # all of it is in chunks now
        return chunks

    def _run(self) -> list[ChunkRecord]:
        source, has_audio = self._source(probe_live(self.url))
        grid = source.grid
        work = Path(tempfile.mkdtemp(prefix=f"sparkcast-live-{self.stream_id}-"))
        gop_list = work / "gops.csv"
        gop_list.touch()
        started = time.time()  # the wall time of this publish's first frame, near enough
        proc = subprocess.Popen(
            ingest_args(self.url, work, gop_list, has_audio, self.audio_codec, self.realtime),
            stdout=subprocess.PIPE if has_audio else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.PIPE if is_recording(self.url) else subprocess.DEVNULL)
        publish_over = threading.Event()
        # A network input is read at its live edge from the start; a recording once the
        # feed has copied all of it (a chunker restarted mid-publish reads it from its
        # first byte and must not place the publish before it has seen where it is now).
        caught_up = threading.Event()
        if is_recording(self.url):
            assert proc.stdin is not None
            threading.Thread(target=_feed, args=(recording_path(self.url), proc.stdin,
                                                 publish_over, caught_up), daemon=True).start()
        else:
            caught_up.set()
        audio_thread = None
        packager = AudioPackager(self.storage, self.stream_id) if has_audio else None
        if packager is not None:
            assert proc.stdout is not None
            audio_thread = threading.Thread(target=packager.consume, args=(proc.stdout,),
                                            daemon=True)
            audio_thread.start()
        state = _ChunkState(self, grid, started, packager, caught_up)
        seen = 0
        try:
            while True:
                lines = gop_list.read_text().splitlines()
                for line in lines[seen:]:
                    state.add_gop(work / line.split(",")[0])
                seen = len(lines)
                state.try_place()
                if proc.poll() is not None:
                    break
                self.lock.beat()
                if self.stop.wait(0.2) or self._front_gone():
                    self._finish(proc, publish_over)
            listed = [work / line.split(",")[0] for line in gop_list.read_text().splitlines()]
            for path in listed[seen:]:
                state.add_gop(path)
            # A stopped ffmpeg cannot list the GOP file it was writing, but the file holds
            # every frame it muxed: take what is there.
            for path in sorted(set(work.glob("gop*.ts")) - set(listed)):
                state.add_gop(path)
            if audio_thread:
                audio_thread.join(timeout=15)  # every audio frame is held or placed
            state.try_place(final=True)
            state.flush()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if audio_thread:
                audio_thread.join(timeout=15)
            shutil.rmtree(work, ignore_errors=True)
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        if proc.returncode not in (0, 255, -15) and not state.chunks:
            raise MediaError(_redact(self.url), err.strip().splitlines()[-1] if err.strip()
                             else f"ffmpeg exit code {proc.returncode}")
        return state.chunks

    def _front_gone(self) -> bool:
        """A recording's publish is over without a signal: the RTMP front that started us
        has died (we were reparented), or the recording has not grown for a while."""
        if not is_recording(self.url):
            return False  # a network input ends by ffmpeg's own read timeout
        if os.getppid() != self._front:
            log.warning("stream %s: the RTMP front is gone; closing the publish",
                        self.stream_id)
            return True
        try:
            idle = time.time() - recording_path(self.url).stat().st_mtime
        except FileNotFoundError:
            idle = float("inf")
        if idle > LIVE_TIMEOUT_S:
            log.warning("stream %s: the recording has not grown for %.0f s; closing the "
                        "publish", self.stream_id, idle)
            return True
        return False

    def _finish(self, proc: subprocess.Popen[bytes], publish_over: threading.Event) -> None:
        """The publish is over: a recording is fed to its end and ffmpeg finishes at its
        EOF (closing and listing its last GOP); a live connection is closed now."""
        if is_recording(self.url):
            publish_over.set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                self.lock.beat()
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.5)
                    return
            log.warning("stream %s: ffmpeg did not finish the recording; stopping it",
                        self.stream_id)
        # The first TERM ends ffmpeg's loop; a second interrupts a blocked read.
        for wait in (2.0, 10.0):
            if proc.poll() is not None:
                return
            proc.terminate()
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class _ChunkState:
    """GOP files waiting to become chunks, and where they sit on the stream's grid once
    the publish is placed (ingest/pipelines.py): continuing a live period whose anchors
    name one of its GOPs, or starting a new one."""

    def __init__(self, chunker: LiveChunker, grid: Grid, started: float,
                 audio: AudioPackager | None, caught_up: threading.Event):
        self.c, self.grid, self.started, self.audio = chunker, grid, started, audio
        self.caught_up = caught_up
        self.board = chunker.board
        self.claim: PeriodClaim | None = None
        self.offset = 0  # stream frame = local frame + offset, once placed
        self.seq = self.next_start = 0
        self.gops: list[Gop] = []
        self.local = 0  # local index of the next GOP's first frame
        self.chunks: list[ChunkRecord] = []
        self.unplaced_since: float | None = None

    # reading ------------------------------------------------------------------------------

    def add_gop(self, path: Path) -> None:
        try:
            doc = json.loads(run(packets_args(str(path), hashes=True), str(path)) or b"{}")
            times, _ = parse_packets(doc)
        except MediaError as exc:
            log.warning("stream %s: GOP file left out: %s", self.c.stream_id, exc)
            times, doc = (), {}
        if not times:
            path.unlink(missing_ok=True)
            return
        packets = doc.get("packets", [])
        gop = Gop(path, self.local, len(times),
                  gop_key(p.get("data_hash", "") for p in packets),
                  float(packets[0].get("pts_time", times[0])))
        self.local += gop.frames
        if not self.gops and "K" not in packets[0].get("flags", ""):
            # The publish reached this front mid-GOP: frames nothing can decode.
            path.unlink(missing_ok=True)
            return
        self.gops.append(gop)
        if self.claim is None:
            if self.unplaced_since is None:
                self.unplaced_since = time.monotonic()
            return
        self._anchor(gop)
        while self.local + self.offset >= self.next_start + self.grid.chunk_frames:
            self._emit(self.grid.chunk_frames)

    # placing ------------------------------------------------------------------------------

    def try_place(self, final: bool = False) -> None:
        """Place the publish on the grid if it can be: on a live period's anchors, else
        (alone, after waiting for the other pipeline, or at the end) in a new period."""
        if self.claim is not None or not self.gops:
            return
        if not final and not self.caught_up.is_set():
            return
        now = time.time()
        latest = self.board.latest_claim()
        if latest is not None:
            # A GOP read (N frames) before our newest can have been placed that much earlier.
            ages = [ANCHOR_SLACK_S + (self.local - g.local) / float(self.grid.frame_rate)
                    for g in self.gops]
            found = place([g.key for g in self.gops], ages, self.board.anchors(latest.period),
                          now)
            if found is not None:
                i, anchor = found
                self._placed(latest, anchor.frame - self.gops[i].local, i, claimed=False)
                return
        assert self.unplaced_since is not None
        waited = time.monotonic() - self.unplaced_since
        if (self.c.pipeline and not final and latest is not None
                and waited < JOIN_WAIT_S + self.grid.chunk_frames / self.grid.frame_rate
                and self.board.live(latest.period, now)):
            return  # the other pipeline runs that period: its anchors are on their way
        claim = next_period(self.c.storage, self.c.stream_id, self.grid, self.c.pipeline,
                            self.started)
        if self.board.claim(claim):
            self._placed(claim, claim.start_frame - self.gops[0].local, 0, claimed=True)
        # else another pipeline claimed that period this moment: place on its anchors next

    def _placed(self, claim: PeriodClaim, offset: int, index: int, claimed: bool) -> None:
        """GOP `index` (and so every later one) is placed; earlier ones are left out."""
        self.claim, self.offset = claim, offset
        first = self.gops[index].local + offset
        self.seq, self.next_start = claim.chunk_at_or_after(max(first, claim.start_frame),
                                                            self.grid)
        log.info("stream %s%s: publish placed in period %d (%s), chunks from seq %d, "
                 "frame %d", self.c.stream_id,
                 f" (pipeline {self.c.pipeline})" if self.c.pipeline else "", claim.period,
                 "claimed" if claimed else "joined", self.seq, self.next_start)
        for gop in self.gops[:index]:
            gop.path.unlink(missing_ok=True)
        del self.gops[:index]
        for gop in self.gops:
            self._anchor(gop)
        self._drop_before(self.next_start)
        if self.audio is not None:
            # The same ffmpeg output times audio and video: the placed GOP's keyframe is at
            # its stream frame's media time.
            gop = self.gops[0]
            self.audio.place(claim, self.grid,
                             self.grid.frame_time(gop.local + offset) - gop.pts)
        while self.local + self.offset >= self.next_start + self.grid.chunk_frames:
            self._emit(self.grid.chunk_frames)

    def _anchor(self, gop: Gop) -> None:
        assert self.claim is not None
        frame = gop.local + self.offset
        if frame >= self.claim.start_frame:
            self.board.anchor(self.claim.period, frame, gop.key)

    def _drop_before(self, frame: int) -> None:
        for g in [g for g in self.gops if g.local + self.offset + g.frames <= frame]:
            g.path.unlink(missing_ok=True)
            self.gops.remove(g)

    # writing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """The publish ended: the rest becomes a (shorter) last chunk, flagged as the last.
        With two pipelines, only once it is clear the stream ended rather than this front:
        if the other pipeline goes on past our end, or finished this chunk, it is left."""
        if self.claim is None:
            return
        end = self.local + self.offset
        if end <= self.next_start:
            return
        if self.c.pipeline:
            deadline = time.monotonic() + FLUSH_GRACE_S + self.grid.segment_frames / float(
                self.grid.frame_rate)
            while time.monotonic() < deadline:
                if (self.c.storage.exists(self.c.layout.index_record(self.seq))
                        or self.board.continues_after(self.claim.period, end)):
                    log.info("stream %s (pipeline %s): the other pipeline goes on; no last "
                             "chunk from this one", self.c.stream_id, self.c.pipeline)
                    return
                self.c.lock.beat()
                time.sleep(0.25)
        self._emit(end - self.next_start, last=True)
        if self.audio is not None:
            self.audio.flush()

    def _emit(self, frames: int, last: bool = False) -> None:
        assert self.claim is not None
        start, end = self.next_start, self.next_start + frames
        record_path = self.c.layout.index_record(self.seq)
        if not self.c.storage.exists(record_path):
            self._write(start, frames, last)
        self.seq += 1
        self.next_start = end
        self._drop_before(end)
        if self.seq % 8 == 0:
            self.board.prune(time.time())

    def _write(self, start: int, frames: int, last: bool) -> None:
        assert self.claim is not None
        end = start + frames
        used = [g for g in self.gops
                if g.local + self.offset < end and g.local + self.offset + g.frames > start]
        first = used[0].local + self.offset if used else end
        if first > start:
            log.warning("stream %s: chunk %d lacks frames %d..%d; left to the other "
                        "pipeline", self.c.stream_id, self.seq, start, first - 1)
            return
        with tempfile.NamedTemporaryFile(suffix=".ts", delete=False) as out:
            for g in used:
                with open(g.path, "rb") as f:
                    shutil.copyfileobj(f, out)
            local = out.name
        raw = self.c.layout.raw_chunk(self.seq, "ts", self.c.pipeline)
        try:
            self.c.storage.put_file(local, raw)
            record = ChunkRecord(
                stream_id=self.c.stream_id, seq=self.seq, raw=raw, start_frame=start,
                frames=frames, skip=start - first,
                start=self.grid.frame_time(start), duration=frames / float(self.grid.frame_rate),
                bytes=os.path.getsize(local), wallclock=time.time(),
                discontinuity=self.claim.discontinuity and self.seq == self.claim.seq,
                period=self.claim.period, last=last)
        finally:
            os.unlink(local)
        # The record last (created once): the live job sees a chunk only once its bytes
        # are in storage, and only one pipeline's copy of it.
        if not self.c.storage.create(self.c.layout.index_record(self.seq),
                                     record.to_json().encode()):
            self.c.storage.delete(raw)
            return
        self.chunks.append(record)
        log.info("stream %s: chunk %d (frames %d..%d) written", self.c.stream_id, self.seq,
                 start, end - 1)
