"""SQL tables (SQLAlchemy 2 declarative). Schema changes go through a migration in
store/migrations/versions (`sparkcast db revision -m ...`), never `create_all`.

Secrets (stream keys, admin tokens) are stored only as their SHA-256: both are random
values of 190+ bits, so a salted or slow hash would add nothing against guessing, and an
exact-match index on the hash keeps the lookup a single indexed read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.sqltypes import UtcDateTime, utcnow

# Deterministic constraint names, so later migrations can drop/alter them on every backend
# (SQLite batch mode needs a name to find a constraint).
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# InnoDB for transactions and foreign keys; utf8mb4 because a throwaway or default MariaDB
# may be latin1 and comments carry emoji.
MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
               "mysql_collate": "utf8mb4_unicode_ci"}

STREAM_ID_LEN = 64  # hdfs_layout.validate_stream_id: 1-64 characters
HASH_LEN = 64  # hex SHA-256


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Stream(Base):
    """A live stream or a submitted video; its id is the storage layout's stream id."""

    __tablename__ = "streams"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[str] = mapped_column(String(STREAM_ID_LEN), primary_key=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16), default="idle")  # idle | live | ended
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    live_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_publish_end: Mapped[datetime | None] = mapped_column(UtcDateTime)

    keys: Mapped[list[StreamKey]] = relationship(back_populates="stream",
                                                 cascade="all, delete-orphan")


class StreamKey(Base):
    """A publisher's RTMP stream key (the key itself is never stored)."""

    __tablename__ = "stream_keys"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream_id: Mapped[str] = mapped_column(
        ForeignKey("streams.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(HASH_LEN), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_addr: Mapped[str | None] = mapped_column(String(64))
    # Set while a publisher is connected with this key (on_publish .. on_publish_done).
    publishing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)

    stream: Mapped[Stream] = relationship(back_populates="keys")


class AdminToken(Base):
    __tablename__ = "admin_tokens"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(HASH_LEN), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Comment(Base):
    """A viewer's comment; `text` is stored exactly as written (escaped when rendered)."""

    __tablename__ = "comments"
    __table_args__ = (
        # Cursor pagination and "since" polling walk (stream_id, id).
        Index("ix_comments_stream_id_id", "stream_id", "id"),
        # A client's retry of the same POST (same client_ref) must not double the comment.
        UniqueConstraint("stream_id", "client_ref"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    stream_id: Mapped[str] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    viewer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    client_ref: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="visible")  # visible|hidden|deleted
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ViewerBlock(Base):
    """A viewer barred from commenting, on one stream or (stream_id NULL) everywhere."""

    __tablename__ = "viewer_blocks"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    viewer_id: Mapped[str] = mapped_column(String(64), index=True)
    stream_id: Mapped[str | None] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ReactionCount(Base):
    """Reactions of one kind on one stream during one wall-clock second (flushed in batches)."""

    __tablename__ = "reaction_counts"
    __table_args__ = (MYSQL_TABLE,)

    stream_id: Mapped[str] = mapped_column(
        ForeignKey("streams.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    second: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix time, whole s
    count: Mapped[int] = mapped_column(Integer, default=0)


class Notice(Base):
    """A disclaimer (shown on joining) or a timed news flash."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_stream_id_starts_at", "stream_id", "starts_at"),
                      MYSQL_TABLE)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream_id: Mapped[str] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # disclaimer | flash
    text: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_s: Mapped[float | None] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AdCreative(Base):
    """An uploaded ad video, transcoded by the pipeline as its own stream (`media_stream_id`)."""

    __tablename__ = "ad_creatives"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source_uri: Mapped[str] = mapped_column(String(1024))
    media_stream_id: Mapped[str | None] = mapped_column(String(STREAM_ID_LEN), unique=True)
    duration_s: Mapped[float | None] = mapped_column(Double)
    # uploaded | transcoding | ready | failed
    state: Mapped[str] = mapped_column(String(16), default="uploaded")
    error: Mapped[str | None] = mapped_column(String(500))  # why a transcode failed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AdBreak(Base):
    """A scheduled ad: VOD pre/mid-roll at a media offset, or live at a wall-clock time."""

    __tablename__ = "ad_breaks"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream_id: Mapped[str] = mapped_column(
        ForeignKey("streams.id", ondelete="CASCADE"), index=True)
    creative_id: Mapped[int] = mapped_column(ForeignKey("ad_creatives.id", ondelete="CASCADE"))
    position: Mapped[str] = mapped_column(String(16))  # preroll | midroll | live
    offset_s: Mapped[float | None] = mapped_column(Double)  # VOD media time
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # live wall clock
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    impressions_started: Mapped[int] = mapped_column(Integer, default=0)
    impressions_completed: Mapped[int] = mapped_column(Integer, default=0)


class AdImpression(Base):
    """One viewer's `start` or `complete` of one break, so each is counted once: a beacon
    sent again (a retry, a replay, someone inflating the counts) finds its row."""

    __tablename__ = "ad_impressions"
    __table_args__ = (MYSQL_TABLE,)

    break_id: Mapped[int] = mapped_column(ForeignKey("ad_breaks.id", ondelete="CASCADE"),
                                          primary_key=True)
    event: Mapped[str] = mapped_column(String(8), primary_key=True)
    viewer: Mapped[str] = mapped_column(String(40), primary_key=True)  # sha1 of the viewer
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
