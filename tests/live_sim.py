"""Publishes a transcoded VOD as if it were live, in real time, for serve's live tests.

Stands in for the live job until it exists: segment i of every track is copied into
a new stream at availabilityStartTime + (its end), and the dynamic MPD is rewritten
to list it, the way the live job's reduce does after each micro-batch (segment files
first, the manifest last, both atomically).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from hdfs_layout import StreamLayout

NS = "urn:mpeg:dash:schema:mpd:2011"


@dataclass(frozen=True)
class _Track:
    template: etree._Element  # the SegmentTemplate element (in the parsed MPD)
    renditions: tuple[str, ...]
    timescale: int
    start_number: int
    spans: tuple[tuple[int, int], ...]  # (t, d) per segment


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class LiveSimulator(threading.Thread):
    def __init__(self, src_root: Path, src_id: str, dst_root: Path, live_id: str,
                 preroll_segments: int = 2, segment_seconds: float = 2.0,
                 presentation_delay: float = 4.0) -> None:
        super().__init__(name="live-sim", daemon=True)
        self.src, self.dst = src_root, dst_root
        self.src_layout, self.dst_layout = StreamLayout(src_id), StreamLayout(live_id)
        self.seg = segment_seconds
        self.delay = presentation_delay
        self.root = etree.fromstring((src_root / self.src_layout.manifest).read_bytes())
        self.tracks = [self._track(a) for a in self.root.iter(f"{{{NS}}}AdaptationSet")]
        # Media time 0 is availabilityStartTime: start with a few segments already out.
        self.ast = time.time() - preroll_segments * segment_seconds
        self._stop = threading.Event()
        self.published = 0.0  # media seconds listed in the MPD

    @staticmethod
    def _track(aset: etree._Element) -> _Track:
        tpl = aset.find(f"{{{NS}}}SegmentTemplate")
        spans, t = [], 0
        for s in tpl.iterfind(f"{{{NS}}}SegmentTimeline/{{{NS}}}S"):
            t = int(s.get("t", t))
            for _ in range(int(s.get("r", "0")) + 1):
                spans.append((t, int(s.get("d"))))
                t += int(s.get("d"))
        reps = tuple(r.get("id") for r in aset.iterfind(f"{{{NS}}}Representation"))
        return _Track(tpl, reps, int(tpl.get("timescale")), int(tpl.get("startNumber", "1")),
                      tuple(spans))

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        for track in self.tracks:
            for rid in track.renditions:
                dst = self.dst / self.dst_layout.init_segment(rid)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.src / self.src_layout.init_segment(rid), dst)
        copied: set[tuple[str, int]] = set()
        while not self._stop.is_set():
            now_media = time.time() - self.ast
            if not self._publish(now_media, copied):
                return  # the source is used up
            self._stop.wait(self.seg / 4)

    def _publish(self, now_media: float, copied: set[tuple[str, int]]) -> bool:
        more = False
        for track in self.tracks:
            timeline = track.template.find(f"{{{NS}}}SegmentTimeline")
            for s in list(timeline):
                timeline.remove(s)
            for i, (t, d) in enumerate(track.spans):
                if (t + d) / track.timescale > now_media:
                    more = True
                    break
                number = track.start_number + i
                for rid in track.renditions:
                    if (rid, number) not in copied:
                        shutil.copyfile(self.src / self.src_layout.media_segment(rid, number),
                                        self.dst / self.dst_layout.media_segment(rid, number))
                        copied.add((rid, number))
                etree.SubElement(timeline, f"{{{NS}}}S", t=str(t), d=str(d))
        r = self.root
        r.attrib.pop("mediaPresentationDuration", None)
        r.set("type", "dynamic")
        r.set("availabilityStartTime", _iso(self.ast))
        r.set("publishTime", _iso(time.time()))
        r.set("minimumUpdatePeriod", f"PT{self.seg / 2:g}S")  # as jobs/live_reduce.py
        r.set("timeShiftBufferDepth", "PT60S")
        r.set("suggestedPresentationDelay", f"PT{self.delay:g}S")
        _atomic_write(self.dst / self.dst_layout.manifest,
                      etree.tostring(r, xml_declaration=True, encoding="UTF-8"))
        self.published = now_media
        return more
