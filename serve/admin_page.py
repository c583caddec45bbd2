"""The /admin page: a small single page over the admin API.

The page itself holds no secret and needs no token; the admin types a token, which the
page keeps in sessionStorage (gone with the tab) and sends as `Authorization: Bearer` on
every API call. Its script and styles are served from player/src like the player's.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template

from hdfs_layout import urls
from serve.player import _static

bp = Blueprint("admin_page", __name__, template_folder="templates")

ASSETS = {"admin.js": "src/admin.js", "admin.css": "src/admin.css"}
# The page renders API data with textContent only; the policy forbids any other script.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


@bp.get(urls.ADMIN_PAGE)
def page() -> Response:
    html = render_template("admin.html", api_url=urls.Urls().admin_api())
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get(urls.ADMIN_PAGE + "/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404, "no such file")
    return _static(ASSETS[name])
