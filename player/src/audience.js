/* sparkcast /watch audience panel: comments, reactions, notices. Loaded after watch.js and
 * independent of it: nothing here may disturb playback, so every failure stays in the panel.
 *
 * - Comments: GET .../comments (newest page), then polled with ?since=<last id>; posted with
 *   a client_ref so a retry never doubles a comment. A 503 (database down) shows
 *   "Comments unavailable" and keeps the draft, retried after Retry-After.
 *   Text is rendered with textContent only: a comment is never HTML.
 * - Reactions and notices: Server-Sent Events (.../events); if the feed is refused or
 *   lost for good, polled instead (.../reactions, .../notices).
 *
 * window.sparkcastAudience exposes state for tests: comments (ids shown), unavailable,
 * feed ("sse" | "poll"), totals, shownNotices (ids), floated (count).
 */
(function () {
  "use strict";
  const root = document.getElementById("watch");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const base = root.dataset.api;  // the stream's API, from the URL builder (hdfs_layout/urls.py)
  const EMOJI = { like: "\u{1F44D}", love: "\u2764\uFE0F", laugh: "\u{1F602}", wow: "\u{1F62E}",
                  sad: "\u{1F622}", clap: "\u{1F44F}" };
  const MAX_SHOWN = 200;
  const state = { comments: [], unavailable: false, feed: null, totals: {}, shownNotices: [],
                  floated: 0, errors: [] };
  window.sparkcastAudience = state;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);  // never innerHTML: viewer text
    return e;
  }

  function retryAfter(resp, fallback) {
    const s = Number(resp && resp.headers.get("Retry-After"));
    return (Number.isFinite(s) && s > 0 ? s : fallback) * 1000;
  }

  // ---- comments -------------------------------------------------------------------------
  const panel = $("comments");
  const status = el("p", "comments-status");
  status.setAttribute("role", "status");
  status.id = "comments-status";
  const list = el("ol", "comment-list");
  list.id = "comment-list";
  const form = el("form", "comment-form");
  form.id = "comment-form";
  const author = el("input", "comment-author");
  Object.assign(author, { name: "author", maxLength: 40, placeholder: "Your name",
                          required: true, value: localStorage.getItem("sparkcast.author") || "" });
  author.setAttribute("aria-label", "Your name");
  const text = el("textarea", "comment-text");
  Object.assign(text, { name: "text", maxLength: 500, placeholder: "Say something", rows: 2,
                        required: true });
  text.setAttribute("aria-label", "Comment");
  const send = el("button", "btn comment-send", "Send");
  send.type = "submit";
  form.append(author, text, send);
  panel.append(el("h2", "panel-title", "Comments"), status, list, form);

  let since = null;
  let pending = null;  // {author, text, client_ref} until the server has stored it
  let pollTimer = null;

  function setUnavailable(on, message) {
    state.unavailable = on;
    panel.classList.toggle("unavailable", on);
    status.textContent = on ? (message || "Comments unavailable right now — retrying") : "";
  }

  function show(c) {
    if (state.comments.includes(c.id)) return;
    const li = el("li", "comment");
    li.dataset.id = c.id;
    li.append(el("b", "comment-author-name", c.author), el("span", "comment-body", c.text));
    list.append(li);
    state.comments.push(c.id);
    while (state.comments.length > MAX_SHOWN) {
      state.comments.shift();
      list.firstElementChild.remove();
    }
    list.scrollTop = list.scrollHeight;
  }

  function takeDown(ids) {
    ids.forEach((id) => {
      const li = list.querySelector('li[data-id="' + Number(id) + '"]');
      if (li) li.remove();
      state.comments = state.comments.filter((x) => x !== id);
    });
  }

  async function poll() {
    clearTimeout(pollTimer);
    let wait = 2000;
    try {
      const resp = await fetch(base + "/comments" + (since === null ? "" : "?since=" + since),
                               { cache: "no-store" });
      if (resp.ok) {
        const page = await resp.json();
        page.comments.forEach(show);
        since = Math.max(since || 0, page.since);
        if (!pending) setUnavailable(false);
      } else if (resp.status === 503) {
        setUnavailable(true);
        wait = retryAfter(resp, 5);
      } else {
        wait = 10000;
      }
    } catch (e) {
      setUnavailable(true);
      wait = 5000;
    }
    pollTimer = setTimeout(poll, wait);
  }

  async function submit() {
    if (!pending) return;
    send.disabled = true;
    try {
      const resp = await fetch(base + "/comments", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(pending), credentials: "same-origin" });
      const data = await resp.json().catch(() => ({}));
      if (resp.status === 201 || resp.status === 200) {
        pending = null;
        text.value = "";
        setUnavailable(false);
        show(data);
      } else if (resp.status === 503) {
        setUnavailable(true, "Comments unavailable right now — yours will be sent when " +
                             "they are back");
        setTimeout(submit, retryAfter(resp, 5));  // same client_ref: never doubled
        return;
      } else {
        pending = null;
        const msg = (data.error && data.error.message) || "could not send";
        status.textContent = resp.status === 429 ? "Slow down a little — " + msg : msg;
      }
    } catch (e) {
      setUnavailable(true);
      setTimeout(submit, 5000);
      return;
    } finally {
      send.disabled = false;
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (pending || !text.value.trim() || !author.value.trim()) return;
    localStorage.setItem("sparkcast.author", author.value);
    const ref = (crypto.randomUUID ? crypto.randomUUID()
                 : String(Date.now()) + Math.random().toString(16).slice(2)).replace(/[^\w-]/g, "");
    pending = { author: author.value.trim(), text: text.value, client_ref: ref.slice(0, 64) };
    submit();
  });

  // ---- reactions ------------------------------------------------------------------------
  const bar = $("reactions");
  const counts = {};
  Object.entries(EMOJI).forEach(([kind, emoji]) => {
    const b = el("button", "btn reaction");
    b.type = "button";
    b.dataset.kind = kind;
    b.setAttribute("aria-label", kind);
    b.append(el("span", "reaction-emoji", emoji), (counts[kind] = el("span", "reaction-count", 0)));
    b.addEventListener("click", () => {
      fetch(base + "/reactions", { method: "POST", headers: { "Content-Type": "application/json" },
                                   body: JSON.stringify({ kind }) }).catch(() => {});
    });
    bar.append(b);
  });
  const floats = el("div", "reaction-floats");
  floats.setAttribute("aria-hidden", "true");
  $("video-box").append(floats);

  function float(kind, n) {
    for (let i = 0; i < Math.min(n, 12); i++) {
      const f = el("span", "reaction-float", EMOJI[kind] || "");
      f.style.left = 70 + Math.random() * 25 + "%";
      f.style.animationDelay = (Math.random() * 0.8).toFixed(2) + "s";
      f.addEventListener("animationend", () => f.remove());
      floats.append(f);
      state.floated++;
    }
  }

  function onReactions(data) {
    state.totals = data.totals;
    Object.entries(data.totals).forEach(([k, n]) => { if (counts[k]) counts[k].textContent = n; });
    Object.entries(data.delta || {}).forEach(([k, n]) => float(k, n));
  }

  // ---- notices --------------------------------------------------------------------------
  const box = $("notices");
  let clockOffset = 0;  // server time - local time, seconds
  let noticeList = [];
  const dismissed = new Set();
  const joinedAt = Date.now() / 1000;

  function onNotices(data) {
    clockOffset = data.now - Date.now() / 1000;
    noticeList = data.notices;
    renderNotices();
  }

  function renderNotices() {
    const now = Date.now() / 1000 + clockOffset;
    const active = noticeList.filter((n) => !dismissed.has(n.id) && n.start <= now + 0.5 &&
      (n.duration === null || now < n.start + n.duration) &&
      // a disclaimer is shown when the viewer starts watching (or when it is issued),
      // for 15 s unless it carries its own duration
      (n.kind !== "disclaimer" || n.duration !== null ||
       Date.now() / 1000 - Math.max(joinedAt, n.start - clockOffset) < 15));
    const ids = active.map((n) => n.id).join(",");
    if (box.dataset.ids === ids) return;
    box.dataset.ids = ids;
    box.replaceChildren(...active.map((n) => {
      const d = el("div", "notice notice-" + n.kind);
      d.dataset.id = n.id;
      d.append(el("span", "notice-label", n.kind === "flash" ? "News" : "Notice"),
               el("span", "notice-text", n.text));
      const x = el("button", "notice-close", "\u00D7");
      x.type = "button";
      x.setAttribute("aria-label", "Dismiss");
      x.addEventListener("click", () => { dismissed.add(n.id); renderNotices(); });
      d.append(x);
      if (!state.shownNotices.includes(n.id)) state.shownNotices.push(n.id);
      return d;
    }));
  }
  setInterval(renderNotices, 500);

  // ---- live feed: SSE, else polling -----------------------------------------------------
  let pollFeedTimer = null;

  function pollFeed() {
    state.feed = "poll";
    Promise.all([fetch(base + "/reactions", { cache: "no-store" }),
                 fetch(base + "/notices", { cache: "no-store" })])
      .then(async ([r, n]) => {
        if (r.ok) {
          const data = await r.json();
          const delta = {};
          Object.entries(data.totals).forEach(([k, v]) => {
            if (state.totals[k] !== undefined && v > state.totals[k]) delta[k] = v - state.totals[k];
          });
          onReactions({ totals: data.totals, delta });
        }
        if (n.ok) onNotices(await n.json());
      })
      .catch(() => {})
      .finally(() => { pollFeedTimer = setTimeout(pollFeed, 3000); });
  }

  function connect() {
    if (!window.EventSource) { pollFeed(); return; }
    const es = new EventSource(base + "/events");
    es.addEventListener("open", () => { state.feed = "sse"; clearTimeout(pollFeedTimer); });
    es.addEventListener("reactions", (e) => onReactions(JSON.parse(e.data)));
    es.addEventListener("notices", (e) => onNotices(JSON.parse(e.data)));
    es.addEventListener("moderation", (e) => takeDown(JSON.parse(e.data).removed));
    es.addEventListener("error", () => {
      // EventSource reconnects by itself after a dropped feed; an HTTP error closes it.
      if (es.readyState === EventSource.CLOSED) {
        pollFeed();
        setTimeout(() => { clearTimeout(pollFeedTimer); connect(); }, 30000);
      }
    });
  }

  poll();
  connect();
})();
