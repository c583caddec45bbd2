"""Resume for the library job: is a video complete and valid, or half done?

Both answers are checked against storage, not taken from a folder's existence:
- complete: the completion record (written after the MPD) names this very input (URL,
  size, modification time) and options fingerprint, and the catalog's segments and
  their init segments are all listed;
- half done: the source record (written by the driver once the video is ingested whole,
  removed first by a new ingest) names this input and options, the chunk records add up
  to its frames, and each done record (written by a map task after its segments) lists
  segments that exist.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence

from core.records import ChunkRecord, RecordError, SourceRecord
from core.segments import Segment, segment_from_json
from hdfs_layout import Storage, StorageError, StreamLayout
from jobs.catalog import read_catalog
from jobs.library_inputs import VideoInput


def completion_json(video: VideoInput, fingerprint: str, job_id: str, segments: int,
                    size: int, renditions: int, source: SourceRecord | None) -> str:
    return json.dumps({
        "job_id": job_id, "input": video.url, "input_bytes": video.bytes,
        "input_mtime": video.mtime, "options": fingerprint, "segments": segments,
        "bytes": size, "renditions": renditions, "frames": source.frames if source else 0,
        "duration": source.duration if source else 0.0,
    }, sort_keys=True)


def same_input(record: dict, video: VideoInput, fingerprint: str) -> bool:
    return (record.get("input"), record.get("input_bytes"), record.get("options")) == (
        video.url, video.bytes, fingerprint) and \
        abs(float(record.get("input_mtime", -1)) - video.mtime) < 1e-3


def present(storage: Storage, layout: StreamLayout, segments: Sequence[Segment]) -> bool:
    """Every segment (and its rendition's init segment) exists in storage."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for s in segments:
        wanted[s.rendition].add(f"{s.number:08d}.m4s")
    for track, names in wanted.items():
        listed = set(storage.list(layout.rendition_dir(track)))
        if "init.mp4" not in listed or not names <= listed:
            return False
    return True


def completed_record(storage: Storage, video: VideoInput, fingerprint: str) -> dict | None:
    """The video's completion record when its outputs are complete and valid for this
    input and these options, else None."""
    layout = StreamLayout(video.stream_id)
    try:
        if not storage.exists(layout.completion_record):
            return None
        record = json.loads(storage.read(layout.completion_record))
        if not same_input(record, video, fingerprint):
            return None
        if not storage.exists(layout.manifest) or not storage.exists(layout.master_playlist):
            return None
        segments = read_catalog(storage.read(layout.catalog_file))
        if len(segments) != record.get("segments") or not present(storage, layout, segments):
            return None
    except (StorageError, ValueError, OSError):
        return None
    return record


def resumable(storage: Storage, video: VideoInput, fingerprint: str
              ) -> tuple[SourceRecord, list[ChunkRecord], dict[str, list[Segment]]] | None:
    """An earlier run's ingest of this very input with these options (its source record,
    chunks) and the map tasks it finished (done records whose segments exist), or None."""
    layout = StreamLayout(video.stream_id)
    try:
        if not storage.exists(layout.source_record):
            return None
        source = SourceRecord.from_json(storage.read(layout.source_record))
        if not same_input({"input": source.input, "input_bytes": source.input_bytes,
                           "input_mtime": source.input_mtime, "options": source.options},
                          video, fingerprint):
            return None
        chunks = sorted((ChunkRecord.from_json(storage.read(f"{layout.index_dir}/{n}"))
                         for n in storage.list(layout.index_dir) if n.endswith(".json")),
                        key=lambda c: c.seq)
        if [c.seq for c in chunks] != list(range(len(chunks))) or not chunks or \
                sum(c.frames for c in chunks) != source.frames:
            return None
        done: dict[str, list[Segment]] = {}
        if storage.exists(layout.done_dir):
            for name in storage.list(layout.done_dir):
                rows = json.loads(storage.read(f"{layout.done_dir}/{name}"))
                done[name.removesuffix(".json")] = [segment_from_json(json.dumps(r))
                                                    for r in rows]
        every = [s for segs in done.values() for s in segs]
        if every and not present(storage, layout, every):
            done = {}
    except (StorageError, RecordError, ValueError, OSError, TypeError):
        return None
    return source, chunks, done
