"""All settings in one typed object: defaults < config file < SPARKCAST_* environment.

The config file is TOML, found at $SPARKCAST_CONFIG or
<user config dir>/sparkcast/sparkcast.toml; keys are the field names below.
Every default runs with no setup (local storage under the user's data dir,
Spark local[*], SQLite).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from platformdirs import user_config_dir, user_data_dir
from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.ladder import parse_ladder

DEFAULT_LADDER = "1080:5000k,720:2800k,480:1400k,360:800k,240:400k"


def default_root() -> str:
    return Path(user_data_dir("sparkcast")).as_uri()


def config_file() -> Path:
    return Path(os.environ.get("SPARKCAST_CONFIG")
                or Path(user_config_dir("sparkcast")) / "sparkcast.toml")


LOW_LATENCY_CHUNK_SECONDS = 4.0
# The demo is watched as it starts: short chunks put its first picture on screen sooner.
DEMO_CHUNK_SECONDS = LOW_LATENCY_CHUNK_SECONDS


def networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or CIDR networks. Raises ValueError naming a bad entry."""
    out = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            out.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(out)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPARKCAST_", extra="forbid")

    # storage
    root: str = Field(default_factory=default_root,
                      description="storage root URL: file:///path or hdfs://namenode:8020/path")
    webhdfs_url: str | None = Field(None, description="WebHDFS address for an hdfs:// root")
    hdfs_user: str | None = None

    # chunking and encoding
    chunk_seconds: float = Field(10.0, gt=0, le=600)
    segment_seconds: float = Field(2.0, gt=0, le=60)
    ladder: str = Field(DEFAULT_LADDER, description="HEIGHT:BITRATE[:PROFILE],...")
    audio_bitrate: str = "128k"
    x264_preset: str = "veryfast"
    live_x264_preset: str = Field(
        "auto", description="x264 preset of the live job; auto: ultrafast for chunks of "
        f"at most {LOW_LATENCY_CHUNK_SECONDS:g} s (low latency: a chunk must be encoded in "
        "about its own duration), else x264_preset")
    rate_control: str = Field("capped-crf", pattern="^(capped-crf|abr)$",
                              description="capped-crf: CRF under a VBV cap at the rung's "
                                          "bitrate; abr: the rung's bitrate as a target")
    crf: int = Field(23, ge=0, le=51)
    encoder_threads: int = Field(1, ge=0, description="x264 threads per rendition (0 = auto)")
    task_grouping: str = Field("chunk", pattern="^(chunk|rendition)$",
                               description="one Spark task per chunk (one decode, all rungs) "
                                           "or per chunk x rendition")

    # compute
    spark_master: str = "local[*]"

    # serving and audience
    database_url: str = Field(default_factory=lambda: "sqlite:///" + str(
        Path(user_data_dir("sparkcast")) / "sparkcast.db"),
        description="SQLAlchemy URL: sqlite:///path or mysql+mysqldb://user:pw@host/db")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    cache_seconds: int = Field(30, ge=0, le=300, description="live edge kept in memory")
    origins: str = Field("", description="comma-separated origin base URLs listed in manifests")
    clock_url: str = Field("", description="URL of the clock live MPDs name (UTCTiming); "
                           "default: the first origin's /clock, else this server's")
    trusted_proxies: str = Field("", description="comma-separated addresses or networks of "
                                 "the HTTP proxies in front of serve (nginx): only their "
                                 "X-Forwarded-For names the client; default none")
    publish_keys_file: str = Field(
        default_factory=lambda: str(Path(user_data_dir("sparkcast")) / "publish-keys.json"),
        description="the last known active stream keys (hashes), so known keys publish "
                    "through a database outage (store/key_cache.py)")
    rtmp_callback_from: str = Field("127.0.0.1,::1", description="comma-separated addresses "
                                    "the RTMP front calls on_publish from")
    comments_per_minute: float = Field(20, ge=0, description="comment posts per client per "
                                        "minute and serve worker (0 = no limit)")
    reactions_per_second: float = Field(20, ge=0, description="reactions per client per second "
                                        "and serve worker (0 = no limit)")
    ad_beacons_per_minute: float = Field(12, ge=0, description="ad impression beacons per "
                                         "client per minute and serve worker (0 = no limit)")
    sse_clients_per_worker: int = Field(2, ge=0, description="live-event (SSE) connections "
                                        "a serve worker holds at once; each holds a thread, "
                                        "so keep it at most half of --threads (beyond it "
                                        "players poll)")

    # live
    rtmp_port: int = Field(1935, ge=0, le=65535)
    rtmp_host: str = Field("127.0.0.1", description="address the RTMP front listens on "
                                                    "(0.0.0.0 for remote publishers)")
    srt_port: int = Field(9000, ge=0, le=65535, description="port the SRT front listens on")
    srt_host: str = Field("127.0.0.1", description="address the SRT front listens on "
                                                   "(0.0.0.0 for remote encoders)")
    srt_latency_ms: int = Field(500, ge=20, le=8000, description="SRT receive latency: room "
                                "for retransmissions on a lossy link (the caller's own "
                                "setting wins when larger)")
    live_ingest_command: str = Field(
        "{sparkcast} live-ingest --stream-id {stream_id} {url}",
        description="per-stream chunker run for each accepted RTMP publish (see "
                    "docs/LIVE_INGEST.md); placeholders: {sparkcast} {python} {stream_id} "
                    "{url} {addr} {chunk_seconds}")
    ingest_pipeline: str = Field(
        "", pattern=r"^[a-z0-9]{0,8}$",
        description="this front's name when each stream is published to two fronts at "
                    "once (e.g. 'a' on one host, 'b' on the other; docs/LIVE.md, 'Two "
                    "ingest pipelines'); empty: the only front")
    live_end_timeout: float = Field(30.0, gt=0, description="seconds without a publisher "
                                                             "before a live stream ends")
    dvr_seconds: float = Field(300.0, gt=0)
    live_delay_seconds: float | None = Field(
        None, gt=0, description="how far behind the live edge players are told to play "
        "(the MPD's suggestedPresentationDelay); default one chunk plus two segments. Less "
        "is lower latency and less room for a slow chunk (docs/LIVE.md, glass-to-glass)")

    # edges (sparkcast edge, docs/SERVING.md)
    edge_origins: str = Field("", description="comma-separated base URLs of the origins an "
                              "edge proxies to (round-robin; a failed one is skipped)")
    tls_certificate: str = Field("", description="PEM certificate (chain) an edge serves "
                                 "HTTPS and HTTP/2 with; with tls_key")
    tls_key: str = Field("", description="PEM private key of tls_certificate")

    # ads
    ad_upload_max_bytes: int = Field(512 * 1024 * 1024, ge=1,
                                     description="largest ad creative an admin may upload")

    def live_preset(self) -> str:
        """The x264 preset the live job encodes with (see `live_x264_preset`)."""
        if self.live_x264_preset != "auto":
            return self.live_x264_preset
        low_latency = self.chunk_seconds <= LOW_LATENCY_CHUNK_SECONDS
        return "ultrafast" if low_latency else self.x264_preset

    @field_validator("ladder")
    @classmethod
    def _check_ladder(cls, v: str) -> str:
        parse_ladder(v)  # raises LadderError (a ValueError) naming the rung
        return v

    @field_validator("trusted_proxies", "rtmp_callback_from")
    @classmethod
    def _check_networks(cls, v: str) -> str:
        networks(v)  # raises ValueError naming the entry
        return v

    @field_validator("root")
    @classmethod
    def _strip_root(cls, v: str) -> str:
        return v.rstrip("/") or v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings,
                TomlConfigSettingsSource(settings_cls, toml_file=config_file()))


def load_settings(**overrides: object) -> Settings:
    """Settings from file and environment, with explicit overrides (CLI options) on top.

    Raises pydantic.ValidationError naming the field at fault.
    """
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def demo_settings(settings: Settings) -> Settings:
    """`settings` for `sparkcast demo`: its own chunk length unless one was chosen (option,
    SPARKCAST_CHUNK_SECONDS or the config file). Pure."""
    if "chunk_seconds" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"chunk_seconds": DEMO_CHUNK_SECONDS})


def settings_env(settings: Settings) -> dict[str, str]:
    """SPARKCAST_* variables that reproduce `settings` in a child process. Pure."""
    return {f"SPARKCAST_{name.upper()}": str(value)
            for name, value in settings.model_dump().items() if value is not None}
