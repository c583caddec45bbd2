"""The front's access log read back (edge/access_log.py): what each line says, and lines
that are not whole lines."""

from __future__ import annotations

import pytest

from edge.access_log import parse_line


def test_a_manifest_a_segment_and_anything_else() -> None:
    mpd = parse_line('1765140000.123 200 1234 - disk "/streams/s1/manifest.mpd" '
                     '"10.0.0.7|Mozilla/5.0 (X11)"\n')
    assert mpd is not None
    assert (mpd.at, mpd.status, mpd.sent, mpd.tier) == (1765140000.123, 200, 1234, "disk")
    assert (mpd.kind, mpd.stream_id, mpd.client) == ("manifest", "s1", "10.0.0.7|Mozilla/5.0 (X11)")
    seg = parse_line('1.5 206 99 HIT cache "/streams/s-2/out/720p/00000042.m4s?x=1" "a|b"')
    assert seg is not None and (seg.kind, seg.stream_id, seg.status) == ("segment", "s-2", 206)
    api = parse_line('1.5 404 0 - origin "/api/streams/s1/comments" "a|curl"')
    assert api is not None and (api.kind, api.stream_id) == ("other", None)


def test_quotes_a_client_sent_are_escaped_by_nginx_and_stay_in_their_field() -> None:
    rec = parse_line(r'2.0 200 5 - disk "/streams/s1/a.m3u8" "1.2.3.4|x\x22 \x22y"')
    assert rec is not None and rec.client == r"1.2.3.4|x\x22 \x22y" and rec.kind == "manifest"


@pytest.mark.parametrize("line", [
    "", "1765140000.123 200 12", '1765140000.123 200 1234 - disk "/streams/s1/manifest.mpd',
    'x 200 1 - disk "/a" "b"', '1.0 2000 1 - disk "/a" "b"', '1.0 200 -1x - disk "/a" "b"',
    '1.0 200 1 - disk /a b', '1.0 200 1 - disk "/a"',
])
def test_what_is_not_a_whole_line_is_none(line: str) -> None:
    assert parse_line(line) is None
