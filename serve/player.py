"""The /watch/<stream_id> page and its static files (dash.js, hls.js, the page's own JS/CSS).

Front-end libraries come from npm (player/package.json, pinned by its lockfile;
`npm ci --prefix player`) and are served from here: viewers behind firewalls
cannot reach a CDN. Only the files named below are served.
"""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    send_file,
)

from hdfs_layout import LayoutError, StreamLayout, urls
from serve import context
from serve.errors import json_error

bp = Blueprint("player", __name__, template_folder="templates")

DEFAULT_PLAYER_DIR = Path(__file__).resolve().parent.parent / "player"
VENDOR = {
    "dash.all.min.js": "node_modules/dashjs/dist/modern/umd/dash.all.min.js",
    "hls.min.js": "node_modules/hls.js/dist/hls.min.js",
}
ASSETS = {"watch.js": "src/watch.js", "watch.css": "src/watch.css",
          # audience panel (comments, reactions, notices): docs/AUDIENCE.md
          "audience.js": "src/audience.js", "audience.css": "src/audience.css"}
ENGINES = ("auto", "dash", "hls")


def _player_dir() -> Path:
    return Path(current_app.config.get("PLAYER_DIR", DEFAULT_PLAYER_DIR))


def _static(relative: str) -> Response:
    path = _player_dir() / relative
    if not path.is_file():
        return json_error(503, "player_assets_missing",
                          f"{relative} is missing: run `npm ci --prefix player`")
    resp = send_file(path, conditional=True, etag=True, max_age=3600)
    resp.headers["Cache-Control"] = "public, max-age=3600"
    return resp


URLS = urls.Urls()  # paths: the page is served by the origin it names


@bp.get("/player/vendor/<name>")
def vendor(name: str) -> Response:
    if name not in VENDOR:
        abort(404, "no such file")
    return _static(VENDOR[name])


@bp.get("/player/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404, "no such file")
    return _static(ASSETS[name])


@bp.get(urls.WATCH)
def watch(stream_id: str) -> str:
    try:
        layout = StreamLayout(stream_id)
    except LayoutError:
        abort(404, "no such stream")
    storage = context.get().storage
    if not (storage.exists(layout.manifest) or storage.exists(layout.master_playlist)):
        abort(404, "no such stream")
    engine = request.args.get("engine", "auto")
    return render_template(
        "watch.html", stream_id=stream_id,
        engine=engine if engine in ENGINES else "auto",
        mpd_url=URLS.manifest(stream_id), hls_url=URLS.playlist(stream_id),
        api_url=URLS.stream_api(stream_id))
