/* sparkcast /admin: a thin page over /api/admin/*. The token lives in sessionStorage only
 * and goes out as "Authorization: Bearer"; every value from the API is shown with
 * textContent (comments hold whatever viewers typed). */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const KEY = "sparkcast.adminToken";
  let current = null; // the stream whose comments and notices are shown

  function say(text, bad) {
    $("message").textContent = text;
    $("message").className = "message" + (bad ? " bad" : "");
  }

  async function api(method, path, body) {
    const token = sessionStorage.getItem(KEY);
    if (!token) throw new Error("type an admin token first");
    const raw = body instanceof Blob;  // a file upload goes as it is
    const resp = await fetch(document.body.dataset.api + path, {
      method, headers: Object.assign({ Authorization: "Bearer " + token },
                                     body && !raw ? { "Content-Type": "application/json" } : {}),
      body: raw ? body : body ? JSON.stringify(body) : undefined,
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const msg = (data.error && data.error.message) || resp.statusText;
      throw new Error(resp.status + ": " + msg);
    }
    return data;
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function button(label, action) {
    const b = el("button", label);
    b.type = "button";
    b.addEventListener("click", () => action().then(refresh).catch((e) => say(e.message, true)));
    return b;
  }

  function fill(id, items, render) {
    const list = $(id);
    list.replaceChildren(...items.map((item) => { const li = el("li"); render(li, item); return li; }));
    if (!items.length) list.replaceChildren(el("li", "none", "empty"));
  }

  function select(streamId) {
    current = streamId;
    $("current-stream").textContent = streamId ? "· " + streamId : "";
    refresh();
  }

  async function refresh() {
    if (!sessionStorage.getItem(KEY)) return;
    try {
      const [{ streams }, { keys }, { blocks }, { creatives }] = await Promise.all([
        api("GET", "/streams"), api("GET", "/keys"), api("GET", "/blocks"),
        api("GET", "/ads/creatives")]);
      if (!current && streams.length) current = streams[streams.length - 1].id;
      fill("streams", streams, (li, s) => {
        li.append(el("b", s.id), el("span", " " + s.title + " (" + s.state + ") "),
                  button("show", async () => select(s.id)));
      });
      fill("keys", keys, (li, k) => {
        li.append(el("span", "#" + k.id + " " + k.stream_id + " " + k.label +
                              (k.revoked_at ? " revoked" : k.publishing ? " publishing" : "")));
        if (!k.revoked_at) li.append(button("revoke", () => api("DELETE", "/keys/" + k.id)));
      });
      fill("blocks", blocks, (li, b) => {
        li.append(el("span", b.viewer_id + " on " + (b.stream_id || "every stream") + " "),
                  button("unblock", () => api("DELETE", "/blocks/" + b.id)));
      });
      fill("creatives", creatives, (li, c) => {
        li.append(el("span", "#" + c.id + " " + c.name + " (" + c.state +
                             (c.error ? ": " + c.error : "") + ") "),
                  button("transcode", () => api("POST", "/ads/creatives/" + c.id + "/transcode")),
                  button("delete", () => api("DELETE", "/ads/creatives/" + c.id)));
      });
      $("current-stream").textContent = current ? "· " + current : "";
      if (current) await refreshStream(current);
      $("who").textContent = "token ok";
    } catch (e) {
      say(e.message, true);
    }
  }

  async function refreshStream(sid) {
    const q = "?stream_id=" + encodeURIComponent(sid);
    const [{ comments }, { notices }, { breaks }] = await Promise.all([
      api("GET", "/comments" + q + "&limit=100"), api("GET", "/notices" + q),
      api("GET", "/ads/breaks" + q)]);
    fill("comments", comments.slice().reverse(), (li, c) => {
      li.className = "comment " + c.status;
      li.append(el("b", c.author), el("span", " " + c.text + " "), el("small", c.status + " "));
      if (c.status !== "hidden") {
        li.append(button("hide", () => api("PATCH", "/comments/" + c.id, { status: "hidden" })));
      } else {
        li.append(button("show", () => api("PATCH", "/comments/" + c.id, { status: "visible" })));
      }
      li.append(button("delete", () => api("DELETE", "/comments/" + c.id)));
      if (c.viewer_id) {
        li.append(button("block viewer", () => api("POST", "/blocks",
                                                    { viewer_id: c.viewer_id, stream_id: sid })));
      }
    });
    fill("notices", notices, (li, n) => {
      li.append(el("b", n.kind), el("span", " " + n.text + " "),
                el("small", new Date(n.start * 1000).toLocaleTimeString() +
                             (n.duration ? " for " + n.duration + " s" : "") +
                             (n.withdrawn_at ? " withdrawn" : "") + " "));
      if (!n.withdrawn_at) li.append(button("withdraw", () => api("DELETE", "/notices/" + n.id)));
    });
    fill("breaks", breaks, (li, b) => {
      li.append(el("span", b.position + " creative #" + b.creative_id + " started " +
                           b.impressions_started + ", completed " + b.impressions_completed +
                           (b.cancelled_at ? " (cancelled)" : " ")));
      if (!b.cancelled_at) li.append(button("cancel", () => api("DELETE", "/ads/breaks/" + b.id)));
    });
  }

  function onSubmit(id, handler) {
    $(id).addEventListener("submit", (ev) => {
      ev.preventDefault();
      const form = new FormData(ev.target);
      handler(form).then((msg) => { say(msg || "done"); ev.target.reset(); refresh(); })
                   .catch((e) => say(e.message, true));
    });
  }

  onSubmit("stream-form", async (f) => {
    await api("POST", "/streams", { id: f.get("id"), title: f.get("title") });
    current = f.get("id");
    return "stream added";
  });
  onSubmit("key-form", async (f) => {
    const k = await api("POST", "/keys", { stream_id: f.get("stream_id"), label: f.get("label") });
    $("new-key").textContent = "New key (shown once): " + k.key;
    return "key created";
  });
  onSubmit("notice-form", async (f) => {
    if (!current) throw new Error("select a stream first");
    const kind = f.get("kind");
    const body = { stream_id: current, kind, text: f.get("text"),
                   start: Date.now() / 1000 + Number(f.get("delay") || 0) };
    if (kind === "flash") body.duration = Number(f.get("duration") || 10);
    await api("POST", "/notices", body);
    return "notice published";
  });
  onSubmit("creative-form", async (f) => {
    const file = f.get("file");
    const hasFile = file && file.size > 0;
    if (!hasFile && !f.get("source_uri")) throw new Error("choose a file or give a source URI");
    const c = await api("POST", "/ads/creatives",
                        { name: f.get("name"), source_uri: f.get("source_uri") || "upload" });
    if (hasFile) await api("PUT", "/ads/creatives/" + c.id + "/source", file);
    await api("POST", "/ads/creatives/" + c.id + "/transcode");
    return "creative #" + c.id + " transcoding";
  });
  onSubmit("break-form", async (f) => {
    if (!current) throw new Error("select a stream first");
    const position = f.get("position");
    const body = { stream_id: current, creative_id: Number(f.get("creative_id")), position };
    if (position === "midroll") body.offset_s = Number(f.get("offset_s") || 0);
    await api("POST", "/ads/breaks", body);
    return "break scheduled";
  });
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, $("token").value.trim());
    $("token").value = "";
    say("");
    refresh();
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("who").textContent = "";
    say("token forgotten");
  });
  refresh();
  setInterval(refresh, 5000);
})();
