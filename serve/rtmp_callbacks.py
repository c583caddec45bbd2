"""nginx-rtmp's HTTP callbacks: accept or refuse a publisher's stream key.

nginx POSTs form fields (`name` = the stream key, `app`, `addr`, `tcurl`, `clientid`, and
the publish URL's query parameters). Any 2xx accepts and a 4xx/5xx refuses, but a 3xx with
`Location` would accept and *rename* the stream, so these views answer 200 or 403 only.
The key itself is never logged: refusals name the key id (known key) or a fingerprint.

Only the RTMP front is served: a caller at an address of `rtmp_callback_from` (loopback
by default: nginx-rtmp runs on the same host). The endpoint must not become a remote key
oracle or let anyone mark streams as stopped. Through the HTTP front door (nginx on the
same host, a trusted proxy) the caller is the address nginx saw, which it writes into
X-Forwarded-For in place of anything the client sent; a caller that is not a trusted
proxy and carries X-Forwarded-For or Forwarded is refused outright.
"""

from __future__ import annotations

import ipaddress
import logging

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from core.config import networks
from hdfs_layout import urls
from serve import context, metrics
from serve.client_addr import Network, client_address
from serve.db import get_session
from store.keys import fingerprint, publish_done
from store.publish_gate import admit

log = logging.getLogger("sparkcast.rtmp")

bp = Blueprint("rtmp_callbacks", __name__, url_prefix=urls.RTMP_CALLBACKS)

RTMP_APP = "live"  # the one nginx application publishers use (ingest.rtmp)


def _text(status: int, body: str) -> Response:
    return Response(body + "\n", status=status, mimetype="text/plain")


def _from_rtmp_front() -> bool:
    """Is the caller the RTMP front? Through the front door (a trusted proxy) the caller is
    the address nginx saw; a direct caller must not claim to be relayed."""
    trusted = context.get().trusted_proxies
    peer = request.remote_addr or ""
    relayed = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
    if relayed and not any(_in(peer, net) for net in trusted):
        return False
    caller = client_address(peer, request.headers.get("X-Forwarded-For"), trusted)
    return any(_in(caller, net) for net in networks(context.get().settings.rtmp_callback_from))


def _in(address: str, net: Network) -> bool:
    try:
        return ipaddress.ip_address(address) in net
    except ValueError:
        return False


@bp.before_request
def _rtmp_front_only() -> Response | None:
    if _from_rtmp_front():
        return None
    log.warning("RTMP callback refused: %s is not the RTMP front", request.remote_addr)
    return _text(403, "forbidden")


@bp.post("/on_publish")
def on_publish() -> Response:
    key = request.form.get("name", "")
    addr = request.form.get("addr", "")
    if request.form.get("app") != RTMP_APP:
        log.warning("publish refused: app %r is not %r (addr %s)",
                    request.form.get("app"), RTMP_APP, addr)
        return _text(403, "refused")
    admission = admit(get_session(), key, addr, context.get().settings.publish_keys_file)
    decision = admission.decision
    if admission.database_error:
        metrics.PUBLISH_DB_DOWN.labels("accepted" if decision.allowed else "refused").inc()
        if not decision.allowed:
            log.error("publish refused: database unavailable (%s) and key fingerprint %s not "
                      "among the last known keys, addr %s", admission.database_error,
                      fingerprint(key), addr)
            return _text(403, "refused")
        log.warning("publish accepted: database unavailable (%s); key id %s (stream %s) is "
                    "among the last known keys, addr %s", admission.database_error,
                    decision.key_id, decision.stream_id, addr)
        return _text(200, "ok")
    if not decision.allowed:
        who = (f"key id {decision.key_id}" if decision.key_id is not None
               else f"key fingerprint {fingerprint(key)}")
        log.warning("publish refused: %s (%s, stream %s, addr %s)",
                    decision.reason, who, decision.stream_id, addr)
        return _text(403, "refused")
    log.info("publish accepted: key id %s, stream %s, addr %s",
             decision.key_id, decision.stream_id, addr)
    return _text(200, "ok")


@bp.post("/on_publish_done")
def on_publish_done() -> Response:
    session = get_session()
    try:
        row = publish_done(session, request.form.get("name", ""))
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.error("publish_done not recorded: database unavailable (%s)", type(exc).__name__)
        return _text(200, "ok")  # nginx ignores the answer; nothing to refuse
    if row is not None:
        log.info("publish done: key id %s, stream %s, addr %s",
                 row.id, row.stream_id, request.form.get("addr", ""))
    return _text(200, "ok")
