"""Which videos a library job transcodes: INPUT arguments -> a checked list of videos.

An INPUT is a file, a directory (searched recursively for video files), a glob,
or a list of paths (`.txt`/`.lst`: one path per line, optionally followed by
whitespace and a stream id; `.csv`: columns `path` and optional `stream_id`;
`.parquet`: the same columns). Each may be local (a path or `file://`) or
`hdfs://`. HDFS is listed and list files are read through Spark's own Hadoop
client (the `binaryFile` source lists without reading contents), so whatever
Spark can reach, the job can list.

Stream ids come from the file names unless a list gives them; two videos with
one id are an error before anything runs (`assign_stream_ids`, pure).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from hdfs_layout import LayoutError, validate_stream_id
from hdfs_layout.layout import stream_id_from_name

VIDEO_EXTENSIONS = frozenset({
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "flv", "ts", "m2ts", "mts", "mpg", "mpeg",
    "mxf", "wmv", "3gp", "ogv", "y4m",
})
LIST_EXTENSIONS = frozenset({"txt", "lst", "csv", "parquet"})
_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """An INPUT cannot be listed, or the inputs do not make a job; names the path."""


@dataclass(frozen=True)
class FoundFile:
    url: str  # file:///... or hdfs://...
    bytes: int
    mtime: float  # seconds since the epoch
    stream_id: str | None = None  # given by a list file


@dataclass(frozen=True)
class VideoInput:
    stream_id: str
    url: str
    bytes: int
    mtime: float

    @property
    def is_hdfs(self) -> bool:
        return urlparse(self.url).scheme == "hdfs"

    @property
    def local_path(self) -> str | None:
        parsed = urlparse(self.url)
        return unquote(parsed.path) if parsed.scheme == "file" else None


# pure -----------------------------------------------------------------------------------------

def extension(path: str) -> str:
    return os.path.splitext(path.rstrip("/"))[1].lower().lstrip(".")


def is_video_name(path: str) -> bool:
    name = os.path.basename(path.rstrip("/"))
    return not name.startswith((".", "_")) and extension(name) in VIDEO_EXTENSIONS


def assign_stream_ids(found: Sequence[FoundFile]) -> list[VideoInput]:
    """One VideoInput per distinct file, ids from list files or file names. Raises
    InputError naming both paths when two videos would share a stream id."""
    videos: dict[str, VideoInput] = {}
    seen_urls: set[str] = set()
    for f in found:
        if f.url in seen_urls:
            continue  # named twice (a file and its directory): one video
        seen_urls.add(f.url)
        sid = f.stream_id or stream_id_from_name(urlparse(f.url).path)
        try:
            validate_stream_id(sid)
        except LayoutError as exc:
            raise InputError(f"{f.url}: {exc}") from exc
        if sid in videos:
            raise InputError(f"{f.url} and {videos[sid].url} both map to stream id {sid!r} "
                             "(rename one, or give ids in a list file)")
        videos[sid] = VideoInput(sid, f.url, f.bytes, f.mtime)
    return list(videos.values())


def parse_text_list(text: str, source: str) -> list[tuple[str, str | None]]:
    """(path, stream id or None) per non-blank, non-# line of a text list."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) > 2:
            raise InputError(f"{source}:{n}: expected 'PATH [STREAM_ID]', got {line!r}")
        rows.append((parts[0], parts[1] if len(parts) == 2 else None))
    return rows


def to_url(path: str, base_dir: str | None = None) -> str:
    """A path or URL as a URL (file:// for local paths, made absolute)."""
    scheme = urlparse(path).scheme
    if scheme in ("hdfs", "file"):
        return path
    if scheme:
        raise InputError(f"{path}: unsupported scheme {scheme!r} (use a local path, "
                         "file:// or hdfs://)")
    if base_dir and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return "file://" + os.path.abspath(path)


# I/O --------------------------------------------------------------------------------------

def _local_file(path: str) -> FoundFile:
    st = os.stat(path)
    return FoundFile("file://" + os.path.abspath(path), st.st_size, st.st_mtime)


def _list_local(path: str, explicit: bool) -> list[FoundFile]:
    if any(c in path for c in _GLOB_CHARS):
        matches = sorted(glob.glob(path, recursive=True))
        return [f for m in matches for f in _list_local(m, explicit=False)] if matches else []
    if os.path.isdir(path):
        out = []
        for d, dirs, files in os.walk(path):
            dirs[:] = sorted(x for x in dirs if not x.startswith((".", "_")))
            out += [_local_file(os.path.join(d, f)) for f in sorted(files) if is_video_name(f)]
        return out
    if os.path.isfile(path) and (explicit or is_video_name(path)):
        return [_local_file(path)]
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory")
    return []


def _list_hdfs(spark, url: str) -> list[FoundFile]:
    from pyspark.errors import AnalysisException

    explicit = not any(c in url for c in _GLOB_CHARS)
    try:
        df = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(url)
        rows = df.select("path", "length", "modificationTime").collect()
        # The scan leaves out zero-length files; the listing has them (they fail as videos).
        listed = {r["path"] for r in rows}
        rows += [{"path": p, "length": 0, "modificationTime": None}
                 for p in df.inputFiles() if p not in listed]
    except AnalysisException as exc:
        message = str(exc).split("\n", 1)[0]
        if "PATH_NOT_FOUND" in message or "does not exist" in message:
            raise InputError(f"{url}: no such file or directory") from exc
        raise InputError(f"{url}: {message}") from exc
    except Exception as exc:  # noqa: BLE001 - a JVM failure (permissions, NameNode down)
        raise InputError(f"{url}: {_first_line(exc)}") from exc
    single = len(rows) == 1 and rows[0]["path"].rstrip("/") == url.rstrip("/")
    return sorted(
        (FoundFile(r["path"], int(r["length"]),
                   r["modificationTime"].timestamp() if r["modificationTime"] else 0.0)
         for r in rows if (single and explicit) or is_video_name(r["path"])),
        key=lambda f: f.url)


def _first_line(exc: BaseException) -> str:
    java = getattr(exc, "java_exception", None)
    text = (java.getMessage() if java is not None else str(exc)) or type(exc).__name__
    return text.strip().split("\n", 1)[0].split("; For more details see")[0]


def _read_list(spark, url: str) -> list[tuple[str, str | None]]:
    """(path, stream id) rows of a list file, read through Spark (local or HDFS)."""
    ext = extension(url)
    try:
        if ext == "parquet":
            df = spark.read.parquet(url)
        elif ext == "csv":
            df = spark.read.option("header", "true").csv(url)
        else:
            text = "\n".join(r.value for r in spark.read.text(url).collect())
            return parse_text_list(text, url)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - missing file, bad format: named by Spark
        raise InputError(f"{url}: {_first_line(exc)}") from exc
    if "path" not in df.columns:
        raise InputError(f"{url}: a {ext} list needs a 'path' column (has {df.columns})")
    has_id = "stream_id" in df.columns
    return [(r["path"], r["stream_id"] if has_id else None)
            for r in df.select("path", *(["stream_id"] if has_id else [])).collect()]


def find_inputs(spark, inputs: Iterable[str]) -> list[FoundFile]:
    """Every file the INPUTs name, in order. Raises InputError naming the INPUT at fault."""
    found: list[FoundFile] = []
    for raw in inputs:
        url = to_url(raw)
        if extension(url) in LIST_EXTENSIONS:
            base = os.path.dirname(unquote(urlparse(url).path)) if url.startswith("file:") \
                else None
            for path, sid in _read_list(spark, url):
                files = list_one(spark, to_url(path, base), explicit=True)
                if sid is not None and len(files) != 1:
                    raise InputError(f"{url}: {path} is not one file but has stream id {sid}")
                found += [FoundFile(f.url, f.bytes, f.mtime, sid) for f in files]
            continue
        files = list_one(spark, url, explicit=True)
        if not files:
            raise InputError(f"{raw}: no video files there (looked for "
                             f"{', '.join(sorted(VIDEO_EXTENSIONS)[:6])}, ...)")
        found += files
    return found


def list_one(spark, url: str, explicit: bool) -> list[FoundFile]:
    if url.startswith("hdfs:"):
        return _list_hdfs(spark, url)
    return _list_local(unquote(urlparse(url).path), explicit)


def resolve_inputs(spark, inputs: Sequence[str], stream_id: str | None = None
                   ) -> list[VideoInput]:
    """The job's videos. `stream_id` names the only video of a single-file INPUT."""
    if not inputs:
        raise InputError("no INPUT given")
    found = find_inputs(spark, inputs)
    if stream_id is not None:
        if len(found) != 1:
            raise InputError(f"--stream-id {stream_id} needs exactly one input video, "
                             f"the INPUTs name {len(found)}")
        found = [FoundFile(found[0].url, found[0].bytes, found[0].mtime, stream_id)]
    return assign_stream_ids(found)
