"""Every name the manifest formats spell, in one place: the DASH namespace and scheme URNs
(ISO/IEC 23009-1) and the HLS tags (RFC 8216bis). Writers, readers and the ad splice
import them from here."""

from __future__ import annotations

# --- DASH
NS = "urn:mpeg:dash:schema:mpd:2011"
PROFILE_LIVE = "urn:mpeg:dash:profile:isoff-live:2011"
PROFILE_CMAF = "urn:mpeg:dash:profile:cmaf:2019"
AUDIO_CHANNELS_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
UTC_HTTP_ISO = "urn:mpeg:dash:utc:http-iso:2014"


def qname(tag: str) -> str:
    """An MPD element's name in lxml's {namespace}tag form."""
    return f"{{{NS}}}{tag}"


# --- HLS
EXTM3U = "#EXTM3U"
VERSION = "#EXT-X-VERSION"
INDEPENDENT = "#EXT-X-INDEPENDENT-SEGMENTS"
MEDIA = "#EXT-X-MEDIA"
STREAM_INF = "#EXT-X-STREAM-INF"
TARGETDURATION = "#EXT-X-TARGETDURATION"
MEDIA_SEQUENCE = "#EXT-X-MEDIA-SEQUENCE"
PLAYLIST_TYPE = "#EXT-X-PLAYLIST-TYPE"
MAP = "#EXT-X-MAP"
EXTINF = "#EXTINF"
BYTERANGE = "#EXT-X-BYTERANGE"
DISCONTINUITY = "#EXT-X-DISCONTINUITY"
DISCONTINUITY_SEQUENCE = "#EXT-X-DISCONTINUITY-SEQUENCE"
PROGRAM_DATE_TIME = "#EXT-X-PROGRAM-DATE-TIME"
DATERANGE = "#EXT-X-DATERANGE"
ENDLIST = "#EXT-X-ENDLIST"


def quoted(text: str) -> str:
    """`text` as the inside of an HLS quoted-string, which may hold neither '"' nor line
    breaks."""
    return " ".join(text.replace('"', "'").split())
