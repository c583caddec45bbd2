/* sparkcast /watch page: dash.js first, hls.js as fallback, native HLS only without MSE.
 *
 * Engine choice never trusts canPlayType("application/vnd.apple.mpegurl"): Chromium
 * answers "maybe" without being able to play HLS (docs/SERVING.md). Native HLS is used
 * only where there is no MediaSource at all (older iPhones).
 *
 * window.sparkcastPlayer exposes state for tests and the audience scripts:
 * engine, errors[], stalls[] (ms), switches[] ({t, height} rendered), requests[] ({t, height}
 * chosen by ABR for the next downloads), height, live, waitingSince, startupMs, liveLatency()
 * (seconds behind the live edge, dash.js only), ads {current, started[], completed[]}.
 */
(function () {
  "use strict";
  const root = document.getElementById("watch");
  const video = document.getElementById("video");
  const $ = (id) => document.getElementById(id);
  const state = { engine: null, errors: [], stalls: [], switches: [], requests: [], height: 0,
                  live: false, waitingSince: null, player: null, hls: null };
  window.sparkcastPlayer = state;

  const hasMSE = !!(window.MediaSource || window.ManagedMediaSource);
  const wanted = new URLSearchParams(location.search).get("engine") || root.dataset.engine;

  function fail(where, detail) {
    state.errors.push({ where, detail: String(detail) });
    $("status").textContent = "Playback problem, retrying…";
  }

  function switched(height) {
    if (height && height !== state.height) {
      state.height = height;
      state.switches.push({ t: performance.now(), height });
    }
  }

  function requested(height) {
    state.requests.push({ t: performance.now(), height });
  }

  // ---- ad breaks spliced in by the origin (manifest/splice.py): a DASH Period whose id is
  // "ad-<break id>", or HLS segments under an EXT-X-DATERANGE of CLASS com.sparkcast.ad.
  // "start" is counted when an ad begins to play, "complete" when it played to its end
  // (seeking out of it counts no completion).
  state.ads = { current: null, started: [], completed: [] };
  const AD_ID = /^ad-(\d+)$/;

  function beacon(breakId, event) {
    (event === "start" ? state.ads.started : state.ads.completed).push(breakId);
    const url = root.dataset.api + "/ads/" +
      breakId + "/impressions";
    fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                 body: JSON.stringify({ event }), keepalive: true }).catch(() => {});
  }

  function inAd(breakId, completedPrevious) {
    const cur = state.ads.current;
    if (breakId === cur) return;
    if (cur !== null && completedPrevious) beacon(cur, "complete");
    state.ads.current = breakId;
    $("ad-badge").hidden = breakId === null;
    root.classList.toggle("in-ad", breakId !== null);
    if (breakId !== null) beacon(breakId, "start");
  }

  function adOfPeriod(info) {
    const m = info && AD_ID.exec(String(info.id));
    return m ? Number(m[1]) : null;
  }

  // ---- engines: each sets state.levels() / state.setLevel(id|"auto") / state.toLive()
  function startDash() {
    const player = dashjs.MediaPlayer().create();
    player.updateSettings({
      streaming: {
        // Live delay: the MPD's suggestedPresentationDelay (dash.js default); catch up
        // gently when behind it, but never by draining the last second of buffer: below
        // it play slower instead (dash.js's LoL+ rule; its default rule speeds up whatever
        // the buffer, and behind an edge, whose manifests may be a moment old, that
        // drained it into a stall every few seconds).
        liveCatchup: { enabled: true, maxDrift: 6, playbackRate: { min: -0.2, max: 0.2 },
                       mode: "liveCatchupModeLoLP", playbackBufferMin: 1.0 },
        // Segment failures move on to the next BaseURL (another origin) quickly.
        retryAttempts: { MediaSegment: 1, InitializationSegment: 1, MPD: 2 },
        retryIntervals: { MediaSegment: 300, InitializationSegment: 300, MPD: 500 },
        abr: {
          autoSwitchBitrate: { video: true },
          // Throughput-driven, not buffer-driven (BOLA): with a full buffer BOLA keeps a
          // rung the network can no longer carry for tens of seconds; live buffers are
          // short anyway. Abandoning a too-slow download switches down mid-segment.
          rules: { throughputRule: { active: true }, bolaRule: { active: false },
                   insufficientBufferRule: { active: true },
                   abandonRequestsRule: { active: true } },
        },
      },
    });
    player.initialize(video, root.dataset.mpd, true);
    const ev = dashjs.MediaPlayer.events;
    player.on(ev.ERROR, (e) => fail("dash", JSON.stringify(e.error || e)));
    player.on(ev.QUALITY_CHANGE_REQUESTED, (e) => {
      if (e.mediaType === "video" && e.newRepresentation) requested(e.newRepresentation.height);
    });
    player.on(ev.QUALITY_CHANGE_RENDERED, (e) => {
      if (e.mediaType === "video") switched(e.newRepresentation && e.newRepresentation.height);
    });
    player.on(ev.PERIOD_SWITCH_COMPLETED, (e) => {
      const from = e.fromStreamInfo;
      const played = !from || !Number.isFinite(from.duration) ||
        video.currentTime >= from.start + from.duration - 1.0;
      inAd(adOfPeriod(e.toStreamInfo), played);
    });
    player.on(ev.STREAM_INITIALIZED, () => {
      state.live = player.isDynamic();
      fillQualities(player.getRepresentationsByType("video")
        .map((r) => ({ id: r.id, height: r.height, bitrate: r.bandwidth })));
      const rep = player.getCurrentRepresentationForType("video");
      if (rep) requested(rep.height);
      switched(rep && rep.height);
      showLive();
    });
    state.player = player;
    state.setLevel = (id) => {
      const auto = id === "auto";
      player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: auto } } } });
      if (!auto) player.setRepresentationForTypeById("video", id, true);
    };
    state.toLive = () => player.seekToOriginalLive();
    state.seek = (t) => player.seekToPresentationTime(t);
    state.liveLatency = () => player.getCurrentLiveLatency();
    return "dash";
  }

  function startHls() {
    const hls = new Hls({ liveSyncDurationCount: 3, enableWorker: true });
    hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) fail("hls", d.details); });
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => {
      fillQualities(d.levels.map((l, i) => ({ id: String(i), height: l.height,
                                              bitrate: l.bitrate })));
    });
    hls.on(Hls.Events.LEVEL_LOADED, (_e, d) => { state.live = !!d.details.live; showLive(); });
    let adEnd = null;
    hls.on(Hls.Events.FRAG_CHANGED, (_e, d) => {
      const f = d.frag, details = hls.levels[f.level] && hls.levels[f.level].details;
      let id = null;
      for (const r of Object.values((details && details.dateRanges) || {})) {
        const start = r.startDate && r.startDate.getTime();
        if (r.class === "com.sparkcast.ad" && f.programDateTime >= start - 1 &&
            f.programDateTime < start + 1000 * (r.duration || 0) - 1) {
          id = adOfPeriod(r);
          adEnd = start + 1000 * (r.duration || 0);
        }
      }
      inAd(id, f.programDateTime >= (adEnd || 0) - 1500);
    });
    hls.on(Hls.Events.LEVEL_SWITCHING, (_e, d) => requested(hls.levels[d.level].height));
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => switched(hls.levels[d.level].height));
    hls.loadSource(root.dataset.hls);
    hls.attachMedia(video);
    state.hls = hls;
    state.setLevel = (id) => { hls.currentLevel = id === "auto" ? -1 : Number(id); };
    state.toLive = () => { if (hls.liveSyncPosition) video.currentTime = hls.liveSyncPosition; };
    return "hls.js";
  }

  function startNative() {
    video.src = root.dataset.hls;
    state.setLevel = () => {};
    state.toLive = () => { if (video.seekable.length) video.currentTime = video.seekable.end(0); };
    $("quality").disabled = true;
    return "native";
  }

  function choose() {
    const dashOk = hasMSE && window.dashjs;
    const hlsOk = window.Hls && Hls.isSupported();
    if (wanted === "hls" && hlsOk) return startHls();
    if (dashOk && wanted !== "hls") return startDash();
    if (hlsOk) return startHls();
    if (!hasMSE) return startNative();
    fail("setup", "no engine can play this stream here");
    return null;
  }

  // ---- controls, engine-agnostic (they read the <video> element)
  function fillQualities(levels) {
    const sel = $("quality");
    sel.querySelectorAll("option:not([value=auto])").forEach((o) => o.remove());
    levels.sort((a, b) => b.height - a.height).forEach((l) => {
      const o = document.createElement("option");
      o.value = l.id;
      o.textContent = `${l.height}p`;
      sel.appendChild(o);
    });
  }

  function showLive() { $("live").hidden = !state.live; }

  function range() {
    const s = video.seekable;
    if (s && s.length) return [s.start(0), s.end(s.length - 1)];
    return [0, Number.isFinite(video.duration) ? video.duration : 0];
  }

  function fmt(t) {
    t = Math.max(0, Math.floor(t));
    const h = Math.floor(t / 3600), m = Math.floor(t / 60) % 60, s = t % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(s).padStart(2, "0");
  }

  let dragging = false;
  function tick() {
    const [start, end] = range();
    const seek = $("seek");
    seek.min = start; seek.max = end;
    if (!dragging) seek.value = video.currentTime;
    $("time").textContent = state.live
      ? "-" + fmt(end - video.currentTime) : fmt(video.currentTime) + " / " + fmt(end);
    $("live").classList.toggle("at-edge", state.live && end - video.currentTime < 8);
    $("play").innerHTML = video.paused ? "&#9654;" : "&#10074;&#10074;";
    $("mute-x").style.display = video.muted ? "" : "none";
  }

  $("seek").addEventListener("input", () => { dragging = true; });
  $("seek").addEventListener("change", () => {
    dragging = false;
    video.currentTime = Number($("seek").value);  // DVR: anywhere in the seekable window
  });
  $("play").addEventListener("click", () => (video.paused ? video.play() : video.pause()));
  $("mute").addEventListener("click", () => { video.muted = !video.muted; });
  $("live").addEventListener("click", () => state.toLive && state.toLive());
  $("quality").addEventListener("change", (e) => state.setLevel && state.setLevel(e.target.value));
  $("fullscreen").addEventListener("click", () => {
    const box = $("stage");
    if (document.fullscreenElement) document.exitFullscreen();
    else if (box.requestFullscreen) box.requestFullscreen();
    else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
  });

  // stall accounting: time from "waiting" to the next "playing"
  video.addEventListener("waiting", () => {
    if (state.waitingSince === null) state.waitingSince = performance.now();
  });
  video.addEventListener("playing", () => {
    $("status").textContent = "";
    if (state.waitingSince !== null && state.everPlayed) {
      state.stalls.push(performance.now() - state.waitingSince);
    }
    state.waitingSince = null;
    if (!state.everPlayed) state.startupMs = performance.now();  // since navigation start
    state.everPlayed = true;
  });
  video.addEventListener("error", () => fail("video", video.error && video.error.message));

  // A publisher's reconnect leaves a gap in a live stream between two Periods (HLS: around
  // a discontinuity). dash.js waits out a gap in a live stream for as long as it lasts
  // (12 s measured), so a viewer stalled at one, with media already buffered beyond it,
  // moves on at once. Playing stays behind the live edge: the media ahead is listed.
  state.gapJumps = [];
  function jumpGap() {
    if (!state.live || video.paused || video.readyState >= 3) return;
    const t = video.currentTime, b = video.buffered;
    // Stalled at the end of what is buffered (or just past it: dash.js may have seeked to
    // its period's end, a seek that never completes), with media buffered further on.
    // A viewer's own seek into unbuffered media is not at a buffered range's end.
    let atEnd = false;
    for (let i = 0; i < b.length; i++) {
      if (atEnd && b.start(i) > t) {
        state.gapJumps.push({ from: t, to: b.start(i) });
        if (state.seek) state.seek(b.start(i) + 0.05); else video.currentTime = b.start(i) + 0.05;
        return;
      }
      atEnd = Math.abs(b.end(i) - t) < 0.5;
    }
  }
  setInterval(jumpGap, 250);
  video.addEventListener("timeupdate", tick);
  setInterval(tick, 500);

  state.engine = choose();
  root.dataset.engineInUse = state.engine || "none";
})();
