"""The map step: one task transcodes one raw chunk (or the stream's audio) to segments.

Runs on Spark executors. A task takes a plain, picklable task value, yields
its segment files and returns the Segment values it made (jobs/task_output.py
writes the files). Re-running a task rewrites the same bytes to the same
names, so retries and speculative copies are harmless.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from core.codecs import AudioCodec, VideoCodec
from core.grid import Grid
from core.ladder import Rendition
from core.media.ffmpeg_run import MediaError, run
from core.records import ChunkRecord
from core.segments import Packaged, PackagingError, Segment, package, sha1
from hdfs_layout import Storage, StreamLayout, open_storage
from hdfs_layout.layout import AUDIO
from jobs.encode import audio_args, video_args
from jobs.task_input import Blocks, save_blocks
from jobs.task_output import OutFile, TaskRun


@dataclass(frozen=True)
class StorageConfig:
    root_url: str
    webhdfs_url: str | None = None
    user: str | None = None

    def open(self) -> Storage:
        return open_storage(self.root_url, self.webhdfs_url, self.user)


@dataclass(frozen=True)
class VideoTask:
    storage: StorageConfig
    chunk: ChunkRecord
    grid: Grid
    renditions: tuple[Rendition, ...]
    codec: VideoCodec

    @property
    def raw(self) -> str:
        """Storage path of the task's raw input."""
        return self.chunk.raw


@dataclass(frozen=True)
class AudioTask:
    storage: StorageConfig
    stream_id: str
    raw: str
    offset: float
    duration: float
    segment_seconds: float
    codec: AudioCodec


def _files(layout: StreamLayout, name: str, packaged: Packaged, first_number: int
           ) -> Iterator[OutFile]:
    yield OutFile(layout.init_segment(name), packaged.init)
    for i, fragment in enumerate(packaged.fragments):
        yield OutFile(layout.media_segment(name, first_number + i), fragment)


def _input_file(storage: Storage, path: str, workdir: str, data: Blocks | None) -> str:
    """A local file holding the raw input: the blocks Spark read for the task, or fetched."""
    if data is None:
        return storage.fetch(path, workdir)
    return save_blocks(data, os.path.join(workdir, posixpath.basename(path)))


def transcode_video(task: VideoTask, data: Blocks | None = None) -> TaskRun[list[Segment]]:
    """Encode one chunk to every rendition of the task (`data`: the raw chunk's bytes when
    Spark read them, else fetched from storage). Raises MediaError naming the chunk."""
    chunk, grid = task.chunk, task.grid
    storage = task.storage.open()
    layout = StreamLayout(chunk.stream_id)
    first, expected = chunk.segment_span(grid)
    segments: list[Segment] = []
    with tempfile.TemporaryDirectory(prefix="sparkcast-map-") as workdir:
        raw = _input_file(storage, chunk.raw, workdir, data)
        outputs = tuple((r, os.path.join(workdir, f"{r.name}.mp4")) for r in task.renditions)
        run(video_args(raw, chunk.skip, chunk.frames, grid, outputs, task.codec, expected),
            source=storage.url(chunk.raw))
        for rendition, path in outputs:
            with open(path, "rb") as f:
                data = f.read()
            where = f"{storage.url(chunk.raw)} -> {rendition.name}"
            try:
                packaged = package(data, first, grid.ticks(chunk.start_frame))
            except PackagingError as exc:
                raise MediaError(where, str(exc)) from exc
            if len(packaged.fragments) != expected:
                raise MediaError(where, f"{len(packaged.fragments)} segments, expected {expected}"
                                 " (the chunk did not decode to all its frames)")
            yield from _files(layout, rendition.name, packaged, first)
            init_hash = sha1(packaged.init)
            segments += [
                Segment(chunk.stream_id, rendition.name, first + i, t.decode_time, t.duration,
                        packaged.track.timescale, len(frag), chunk.seq, chunk.period, init_hash,
                        packaged.track.codec, rendition.width, rendition.height)
                for i, (t, frag) in enumerate(zip(packaged.timings, packaged.fragments,
                                                  strict=True))
            ]
    return segments


def transcode_audio(task: AudioTask, data: Blocks | None = None) -> TaskRun[list[Segment]]:
    """Encode the stream's whole audio once (`data` as for transcode_video); raises
    MediaError naming the audio file."""
    storage = task.storage.open()
    layout = StreamLayout(task.stream_id)
    with tempfile.TemporaryDirectory(prefix="sparkcast-audio-") as workdir:
        raw = _input_file(storage, task.raw, workdir, data)
        out = os.path.join(workdir, "audio.mp4")
        run(audio_args(raw, out, task.offset, task.duration, task.segment_seconds, task.codec),
            source=storage.url(task.raw))
        with open(out, "rb") as f:
            data = f.read()
    try:
        packaged = package(data, 0, 0)
    except PackagingError as exc:
        raise MediaError(storage.url(task.raw), str(exc)) from exc
    yield from _files(layout, AUDIO, packaged, 0)
    init_hash = sha1(packaged.init)
    return [
        Segment(task.stream_id, AUDIO, i, t.decode_time, t.duration, packaged.track.timescale,
                len(frag), -1, 0, init_hash, packaged.track.codec)
        for i, (t, frag) in enumerate(zip(packaged.timings, packaged.fragments, strict=True))
    ]


Task = VideoTask | AudioTask
