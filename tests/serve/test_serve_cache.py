"""SegmentCache: bounded by age and bytes, counted, safe under concurrent use."""

from __future__ import annotations

import threading

import pytest

from hdfs_layout import StreamLayout
from serve.cache import SegmentCache


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_announce_then_get_is_a_hit_under_the_layout_path():
    cache = SegmentCache(max_age=30, max_bytes=1000, clock=Clock())
    assert cache.announce("live1", "360p", 7, b"x" * 10)
    entry = cache.get(StreamLayout("live1").media_segment("360p", 7), "live1")
    assert entry is not None and entry.data == b"x" * 10
    assert cache.get("streams/live1/out/360p/00000008.m4s") is None
    s = cache.stats()
    assert (s.hits, s.misses, s.entries, s.bytes) == (1, 1, 1, 10)
    assert s.by_stream == {"live1": 1}


def test_entries_expire_by_age():
    clock = Clock()
    cache = SegmentCache(max_age=10, max_bytes=1000, clock=clock)
    cache.put("a", b"1")
    clock.t += 5
    cache.put("b", b"2")
    clock.t += 6  # a is 11 s old, b 6 s
    assert cache.get("a") is None
    assert cache.get("b") is not None
    clock.t += 5
    assert cache.stats().entries == 0


def test_total_bytes_stay_within_bound_oldest_evicted_first():
    cache = SegmentCache(max_age=60, max_bytes=100, clock=Clock())
    for i in range(10):
        cache.put(f"k{i}", bytes(30))
        assert cache.stats().bytes <= 100
    assert [k for k in ("k6", "k7", "k8", "k9") if cache.peek(k)] == ["k7", "k8", "k9"]
    assert cache.stats().peak_bytes <= 100


def test_replacing_a_key_does_not_count_twice_and_refreshes_age():
    clock = Clock()
    cache = SegmentCache(max_age=10, max_bytes=100, clock=clock)
    cache.put("m", bytes(40))
    clock.t += 8
    cache.put("m", bytes(50))
    clock.t += 8
    assert cache.get("m") is not None
    assert cache.stats().bytes == 50


def test_too_big_or_disabled_is_refused():
    assert not SegmentCache(max_age=10, max_bytes=10).put("a", bytes(11))
    assert not SegmentCache(max_age=0, max_bytes=10).put("a", b"1")
    with pytest.raises(ValueError):
        SegmentCache(max_age=-1, max_bytes=1)


def test_narrower_max_age_for_one_lookup():
    clock = Clock()
    cache = SegmentCache(max_age=30, max_bytes=100, clock=clock)
    cache.put("manifest", b"<MPD/>")
    clock.t += 2
    assert cache.get("manifest", max_age=1.0) is None
    assert cache.get("manifest") is not None


def test_concurrent_writers_and_readers_keep_the_bound_and_the_counts():
    cache = SegmentCache(max_age=60, max_bytes=10_000)
    lookups = 4 * 2000

    def writer(n: int) -> None:
        for i in range(2000):
            cache.put(f"w{n}-{i % 50}", bytes(100 + i % 400))
            assert cache.stats().bytes <= 10_000

    def reader(n: int) -> None:
        for i in range(2000):
            cache.get(f"w{n}-{i % 50}")

    threads = [threading.Thread(target=f, args=(n,)) for n in range(4) for f in (writer, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = cache.stats()
    assert s.hits + s.misses == lookups
    assert s.bytes == sum(len(e.data) for e in cache._entries.values()) <= 10_000
