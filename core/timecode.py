"""A wall-clock timecode burnt into the picture as a strip of black and white cells, so a
viewer's screen can be read back by a machine: glass-to-glass latency (issue 16).

The strip sits on the bottom-left corner of the frame: BITS square cells, least
significant bit first, each white for 1 and black for 0, holding the publisher's wall
clock in milliseconds modulo 2**BITS (about 4.7 hours, far longer than any latency).
A publisher that starts at `epoch_ms` and sends in real time (`ffmpeg -re`) shows at its
frame time T the clock `epoch_ms + T * 1000`.

    strip_filter(epoch_ms, height)  the ffmpeg filter graph that burns it in (pure)
    read_strip(pixel, width, height) the clock a picture shows, from a pixel reader (pure)
    latency_ms(shown, now_ms)        how far behind `now_ms` a shown clock is (pure)
    FRAME_JS, frame_latency_ms       reading it in a browser: the bottom rows of the frame
                                     a <video id="video"> shows, and their latency (pure)
"""

from __future__ import annotations

from collections.abc import Callable

BITS = 24
MODULUS = 1 << BITS


def cell_size(height: int) -> int:
    """Cell edge in pixels for a frame `height` pixels high (16 at 720p, 8 at 360p)."""
    return max(4, height // 45)


def strip_filter(epoch_ms: int, width: int, height: int, rate: str) -> str:
    """A filter graph from the labelled video `[v]` to `[vt]` with the strip overlaid.
    `rate` is the video's frame rate (as ffmpeg takes it). Pure."""
    cell = cell_size(height)
    base = epoch_ms % MODULUS
    # geq: per pixel, the bit of the clock that its cell holds (T: the frame's time in s)
    lum = (f"255*mod(floor(mod({base}+floor(T*1000)\\,{MODULUS})"
           f"/pow(2\\,floor(X/{cell})))\\,2)")
    return (f"color=c=black:s={BITS * cell}x{cell}:r={rate},format=gray,"
            f"geq=lum='{lum}',format=yuv420p[tc];"
            f"[v][tc]overlay=x=0:y={height - cell}:shortest=1[vt]")


def read_strip(pixel: Callable[[int, int], float], width: int, height: int,
               source_height: int | None = None) -> int:
    """The clock a picture of `width` x `height` shows; `pixel(x, y)` gives a grey level
    0-255. The strip was drawn for the source's height (the picture may be scaled: a
    lower rung, a player's window); cells are sampled at their centres. Pure."""
    scale = height / (source_height or height)
    cell = cell_size(source_height or height) * scale
    y = height - cell / 2
    value = 0
    for bit in range(BITS):
        if pixel(int((bit + 0.5) * cell), int(y)) >= 128:
            value |= 1 << bit
    return value


def latency_ms(shown: int, now_ms: int) -> int:
    """Milliseconds from the clock shown (modulo 2**BITS) to `now_ms`. Pure."""
    return (now_ms - shown) % MODULUS


# Evaluated in a page (Playwright's page.evaluate(FRAME_JS, rows)): the bottom `rows` rows
# of the frame the video element shows now, as grey levels, and the clock at that moment.
FRAME_JS = """(rows) => {
    const v = document.getElementById('video');
    const w = v.videoWidth, h = v.videoHeight;
    if (!w || !h) return null;
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0, w, h);
    const now = Date.now();
    const data = g.getImageData(0, h - rows, w, rows).data;
    const grey = [];
    for (let i = 0; i < data.length; i += 4) grey.push(data[i]);
    return {w, h, now, grey};
}"""


def frame_latency_ms(frame: dict | None, rows: int, source_height: int) -> int | None:
    """Glass-to-glass latency from what FRAME_JS returned, or None when the frame cannot
    be a clock (no picture yet, a frame mid-switch, a blurred cell: more than a minute
    off). Pure."""
    if frame is None:
        return None
    w, h, grey = frame["w"], frame["h"], frame["grey"]

    def pixel(x: int, y: int) -> float:
        return grey[(y - (h - rows)) * w + min(x, w - 1)]

    lat = latency_ms(read_strip(pixel, w, h, source_height), frame["now"])
    return lat if 0 < lat < 60_000 else None
