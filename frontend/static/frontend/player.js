// Show page: the player. WebRTC (WHEP) first, HLS when the WebRTC tier is full
// or WebRTC fails (hls.js; Safari natively), the recording once the show ended.
// Dispatches `showfloor:playback` {mode, programTime} (docs/video.md) so room.js
// can hold pins back until an HLS viewer's video reaches them.
import { waitForIce } from "./webrtc.js";

const root = document.querySelector("[data-player]");
const config = root ? JSON.parse(document.getElementById("player-config").textContent) : null;
const T = root ? JSON.parse(document.getElementById("player-i18n").textContent) : {};

const WEBRTC_TIMEOUT_MS = 8000;
const RETRY_MS = 2000;
const PLAYBACK_TICK_MS = 250;
// A live picture that stands still this long while playing starts over.
const STALL_MS = 8000;
// Nothing at all arriving on the session's transport this long (no RTP, and no
// RTCP, which the node's aiortc sends every 0.5-1.5 s per track even when no
// media flows), ICE "disconnected" this long, ICE "failed", or the device's
// network changed: a new WHEP session replaces the old one (docs/video.md,
// "Real networks", "ICE restart").
const SILENCE_MS = 2000;
const SILENCE_POLL_MS = 250;
const ICE_DISCONNECTED_MS = 1500;

const state = {
  status: config ? config.status : "none",
  mode: "none", // "webrtc" | "hls" | "replay" | "none"
  pc: null,
  location: null,
  hls: null,
  retryTimer: null,
  attempt: 0,
  forceHls: false,
  replacing: false,
  // WHEP sessions this page opened (shown as data-whep-sessions).
  sessions: 0,
};

const video = root && root.querySelector("video");
const badge = root && root.querySelector("[data-badge]");
const unmute = root && root.querySelector("[data-unmute]");
const overlay = root && root.querySelector("[data-state]");

function showMessage(text) {
  overlay.textContent = text || "";
  overlay.hidden = !text;
}

function setMode(mode) {
  state.mode = mode;
  root.dataset.mode = mode;
  badge.hidden = !(mode === "webrtc" || mode === "hls");
  badge.dataset.mode = mode;
  emitPlayback();
}

function programTime() {
  if (state.mode === "webrtc") return Date.now(); // sub-second behind the host
  if (state.mode === "hls") {
    if (state.hls && state.hls.playingDate) return state.hls.playingDate.getTime();
    if (typeof video.getStartDate === "function") {
      const start = video.getStartDate().getTime();
      if (!Number.isNaN(start)) return start + video.currentTime * 1000;
    }
  }
  return null;
}

function emitPlayback() {
  const mode = state.mode === "webrtc" || state.mode === "hls" ? state.mode : "none";
  document.dispatchEvent(
    new CustomEvent("showfloor:playback", { detail: { mode, programTime: programTime() } }),
  );
}

function offerUnmute() {
  unmute.hidden = !video.muted;
}

async function startPlaying() {
  try {
    await video.play();
  } catch {
    // Autoplay refused even muted: one tap starts it.
    video.muted = true;
    try {
      await video.play();
    } catch {
      showMessage(T.tapToPlay);
      overlay.addEventListener("click", () => { video.play(); showMessage(""); }, { once: true });
    }
  }
  offerUnmute();
}

function teardown() {
  if (state.pc) {
    state.pc.close();
    state.pc = null;
  }
  if (state.location) {
    fetch(state.location, { method: "DELETE", keepalive: true }).catch(() => {});
    state.location = null;
  }
  if (state.hls) {
    state.hls.destroy();
    state.hls = null;
  }
  clearTimeout(state.retryTimer);
  video.removeAttribute("src");
  video.srcObject = null;
}

function retry(fn) {
  clearTimeout(state.retryTimer);
  state.attempt += 1;
  const delay = Math.min(RETRY_MS * state.attempt, 10000);
  state.retryTimer = setTimeout(fn, delay);
}

/** A new WHEP session: {ok, pc, location, stream, video (its video track)}
 * or {ok: false, status, code}. */
async function openSession() {
  const pc = new RTCPeerConnection({
    iceServers: config.iceServers,
    iceTransportPolicy: config.iceTransportPolicy || "all",
  });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  const session = { ok: true, pc, location: null, stream, video: null };
  pc.addEventListener("track", (event) => {
    stream.addTrack(event.track);
    if (event.track.kind === "video") session.video = event.track;
  });
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIce(pc);
  const response = await fetch(whepUrl(), {
    method: "POST",
    headers: { "Content-Type": "application/sdp" },
    body: pc.localDescription.sdp,
    credentials: "same-origin",
  });
  if (response.status !== 201) {
    pc.close();
    const problem = await response.json().catch(() => ({}));
    return { ok: false, status: response.status, code: problem.code };
  }
  session.location = response.headers.get("Location");
  state.sessions += 1;
  root.dataset.whepSessions = String(state.sessions);
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
  return session;
}

// The browser's own word that the link is weak (Chromium's Network
// Information API: its effective type, from measured round trips and
// throughput, or the user's data saver): start on the lower rendition rather
// than freeze on the highest until the receiver's reports move the viewer.
// Not `downlink` alone: Chromium reports 1.6 Mbit/s before it has measured
// anything, and a viewer started low climbs only after its estimate shows
// room (docs/video.md, "Rendition ladder").
const WEAK_LINKS = new Set(["slow-2g", "2g", "3g"]);

function whepUrl() {
  const link = navigator.connection;
  if (!link || !(link.saveData || WEAK_LINKS.has(link.effectiveType))) return config.whepUrl;
  const url = new URL(config.whepUrl, window.location.href);
  url.searchParams.set("start", "low");
  return url.href;
}

function closeSession(pc, location) {
  pc.close();
  if (location) fetch(location, { method: "DELETE", keepalive: true }).catch(() => {});
}

async function playWebRTC() {
  const session = await openSession();
  if (!session.ok) return session;
  const { pc } = session;
  state.pc = pc;
  state.location = session.location;
  video.srcObject = session.stream;
  const playing = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), WEBRTC_TIMEOUT_MS);
    video.addEventListener("playing", () => { clearTimeout(timer); resolve(true); }, { once: true });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") { clearTimeout(timer); resolve(false); }
    });
    startPlaying();
  });
  if (!playing) return { ok: false, status: 0, code: "webrtc_failed" };
  followIce(pc);
  return { ok: true };
}

// Peer connections whose transport has received nothing for SILENCE_MS.
const silent = new WeakSet();

/** A session's path is dead: ICE says so, or nothing arrives on it. */
function pathBroken(pc) {
  return silent.has(pc) || ["disconnected", "failed"].includes(pc.iceConnectionState);
}

/** Everything received on the session so far, as one number that grows with
 * every datagram: the transport's and the candidate pairs' bytes (RTP, RTCP,
 * DTLS) and the tracks' RTP packets, whichever the browser reports. */
function receivedSoFar(report) {
  let total = 0;
  report.forEach((stats) => {
    if (stats.type === "transport" || stats.type === "candidate-pair") total += stats.bytesReceived || 0;
    else if (stats.type === "inbound-rtp") total += stats.packetsReceived || 0;
  });
  return total;
}

/** Replace the session when its path breaks: when nothing arrived on it for
 * SILENCE_MS (a browser's ICE says "disconnected" only seconds later; a
 * moment's loss is shorter and recovers by itself), when ICE is "failed", or
 * "disconnected" for ICE_DISCONNECTED_MS. */
function followIce(pc) {
  let timer = null;
  pc.addEventListener("iceconnectionstatechange", () => {
    clearTimeout(timer);
    if (state.pc !== pc) return;
    if (pc.iceConnectionState === "failed") replaceSession();
    else if (pc.iceConnectionState === "disconnected") {
      timer = setTimeout(() => {
        if (state.pc === pc && pc.iceConnectionState === "disconnected") replaceSession();
      }, ICE_DISCONNECTED_MS);
    }
  });
  let received = -1;
  let changedAt = performance.now();
  const poll = setInterval(async () => {
    if (state.pc !== pc) { clearInterval(poll); return; }
    const report = await pc.getStats().catch(() => null);
    if (!report || state.pc !== pc) return;
    const now = performance.now();
    const total = receivedSoFar(report);
    // A browser that reports none of these counters never looks silent.
    if (!total) return;
    if (total !== received) {
      received = total;
      changedAt = now;
      silent.delete(pc);
    } else if (now - changedAt >= SILENCE_MS && !silent.has(pc)) {
      // Once per silence: a replacement that fails tries again on RETRY_MS.
      silent.add(pc);
      replaceSession();
    }
  }, SILENCE_POLL_MS);
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState === "closed" && state.pc === pc && state.status === "live") {
      teardown();
      setMode("none");
      showMessage(T.connecting);
      retry(play);
    }
  });
}

/** The server's aiortc cannot restart ICE, so a new WHEP session (new ICE,
 * new DTLS) replaces the old one without a reload: the old picture stays on
 * screen until the new video track has media, then the old session is closed
 * and DELETEd. If no new session plays within WEBRTC_TIMEOUT_MS, try again
 * (the old one may have come back meanwhile); a session that failed for good
 * starts over as a fresh page would. */
async function replaceSession() {
  if (state.replacing || state.mode !== "webrtc" || state.status !== "live") return;
  state.replacing = true;
  let session = null;
  try {
    session = await openSession();
    if (!session.ok) throw new Error(session.code || String(session.status));
    const { pc, video: track } = session;
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timeout")), WEBRTC_TIMEOUT_MS);
      const live = () => { clearTimeout(timer); resolve(); };
      if (track && !track.muted) live();
      else if (track) track.addEventListener("unmute", live, { once: true });
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "failed") { clearTimeout(timer); reject(new Error("failed")); }
      });
    });
    const old = { pc: state.pc, location: state.location };
    state.pc = pc;
    state.location = session.location;
    video.srcObject = session.stream;
    video.play().catch(() => {});
    followIce(pc);
    if (old.pc) closeSession(old.pc, old.location);
  } catch {
    if (session && session.ok) closeSession(session.pc, session.location);
    const current = state.pc;
    if (current && pathBroken(current)) {
      clearTimeout(state.retryTimer);
      state.retryTimer = setTimeout(replaceSession, RETRY_MS);
    }
  } finally {
    state.replacing = false;
  }
}

function networkChanged() {
  if (state.mode === "webrtc") replaceSession();
}

// navigator.connection's "change" also fires when its bandwidth and round-trip
// estimates move; only a new kind of network (Wi-Fi to cellular) is a change
// of addresses. Where `type` is not exposed, ICE's own state tells.
let connectionType = navigator.connection ? navigator.connection.type : undefined;
function connectionChanged() {
  const type = navigator.connection.type;
  if (type !== undefined && type !== connectionType) {
    connectionType = type;
    networkChanged();
  }
}

async function loadHlsLib() {
  const module = await import(root.dataset.hlsLib);
  return module.default;
}

async function playHls() {
  if (!(await hlsPlaylistReady())) return false;
  const Hls = await loadHlsLib().catch(() => null);
  if (Hls && Hls.isSupported()) {
    const hls = new Hls({ liveSyncDurationCount: 2, backBufferLength: 30 });
    state.hls = hls;
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal && state.hls === hls) {
        teardown();
        setMode("none");
        showMessage(T.failed);
        retry(play);
      }
    });
    hls.loadSource(config.hlsUrl);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = config.hlsUrl; // Safari plays HLS itself
  } else {
    return false;
  }
  await startPlaying();
  return true;
}

// The master playlist is written once every rendition has a segment. A
// rendition's playlist that is closed (#EXT-X-ENDLIST) while the show is live
// is a stopped server's: playing it would replay its last seconds and end
// again, so wait until the stream that follows has replaced it.
async function hlsPlaylistReady() {
  // A request that never ends would leave the player waiting for good.
  const options = { credentials: "same-origin", signal: AbortSignal.timeout(8000) };
  const response = await fetch(config.hlsUrl, options).catch(() => null);
  const master = response && response.ok ? await response.text() : "";
  if (!master.includes("#EXT-X-STREAM-INF")) return false;
  const first = master.split("\n").find((line) => line.trim() && !line.startsWith("#"));
  if (!first) return false;
  const level = await fetch(new URL(first.trim(), response.url), options).catch(() => null);
  return Boolean(level && level.ok && !(await level.text()).includes("#EXT-X-ENDLIST"));
}

async function play() {
  if (state.status !== "live") return;
  showMessage(T.connecting);
  if (!state.forceHls) {
    const result = await playWebRTC().catch(() => ({ ok: false, status: 0 }));
    if (result.ok) {
      state.attempt = 0;
      showMessage("");
      setMode("webrtc");
      return;
    }
    teardown();
    if (result.code === "not_live") {
      showMessage(T.waiting);
      retry(play);
      return;
    }
    // The WebRTC tier is full (503) or WebRTC does not get through: HLS.
    state.forceHls = result.status === 503 || result.code === "webrtc_failed" || result.status === 0;
  }
  if (await playHls().catch(() => false)) {
    state.attempt = 0;
    showMessage("");
    setMode("hls");
  } else {
    showMessage(T.waiting);
    retry(play);
  }
}

// A live picture can stop without an error: after a server restart hls.js
// keeps asking for a playlist that never grows again, and a WebRTC track may
// go quiet. When the video has not moved for STALL_MS though it is not paused,
// start over as a fresh page would (the room may say "Connected" meanwhile).
let lastTime = -1;
let stillSince = 0;
function watchStall() {
  const live = state.mode === "webrtc" || state.mode === "hls";
  // A session being replaced (replaceSession) is not a stall. A video that
  // reached its end has paused itself: that is one (see liveStreamEnded).
  const paused = video.paused && !video.ended;
  if (!live || paused || state.replacing || video.currentTime !== lastTime) {
    lastTime = video.currentTime;
    stillSince = Date.now();
  } else if (Date.now() - stillSince > STALL_MS) {
    stillSince = Date.now();
    teardown();
    setMode("none");
    state.attempt = 0;
    play();
  }
}

// The stream came to its end while the show is live: a server stopping
// closes its playlists (#EXT-X-ENDLIST) before the studio publishes again to
// the next one, and hls.js then plays to that end and stops, the video paused
// by itself. Start over, as after a failure; when the show really ended, the
// room says so and the replay follows (play() does nothing then).
function liveStreamEnded() {
  if (state.mode !== "hls" && state.mode !== "webrtc") return;
  if (state.status !== "live") return;
  teardown();
  setMode("none");
  showMessage(T.reconnecting);
  retry(play);
}

function showReplay() {
  teardown();
  setMode("replay");
  if (config.recordingUrl) {
    showMessage("");
    video.muted = false;
    video.controls = true;
    video.addEventListener("error", () => showMessage(T.ended), { once: true });
    video.src = config.recordingUrl;
    badge.hidden = true;
    unmute.hidden = true;
    root.dataset.replay = "1";
  } else {
    showMessage(T.ended);
  }
}

function onStatus(status) {
  if (status === state.status) return;
  state.status = status;
  if (status === "live") {
    state.attempt = 0;
    play();
  } else if (status === "ended") {
    // The recording is ready once the page knows the show ended; reload config.
    config.recordingUrl = config.recordingUrl || `/live/${config.slug}/recording.mp4`;
    showReplay();
    showMessage(T.replay);
    setTimeout(() => showMessage(""), 4000);
  }
}

function init() {
  if (!root) return;
  unmute.addEventListener("click", () => {
    video.muted = false;
    video.play().catch(() => {});
    unmute.hidden = true;
  });
  video.addEventListener("volumechange", offerUnmute);
  video.addEventListener("ended", liveStreamEnded);
  document.addEventListener("showfloor:event", (event) => {
    const message = event.detail || {};
    if (message.type === "show.status") onStatus(message.status);
    if (message.type === "snapshot" && message.show && message.show.status) onStatus(message.show.status);
    if (message.type === "stream.status" && state.status === "live") {
      if (message.publisher === "reconnecting" || message.publisher === "lost") showMessage(T.reconnecting);
      else if (message.publisher === "stopped") showMessage(T.paused);
      else if (message.publisher === "connected" && state.mode !== "none") showMessage("");
    }
  });
  window.addEventListener("pagehide", teardown);
  // A phone moving between Wi-Fi and mobile data: new addresses, new session.
  window.addEventListener("online", networkChanged);
  if (navigator.connection) navigator.connection.addEventListener("change", connectionChanged);
  setInterval(emitPlayback, PLAYBACK_TICK_MS);
  setInterval(watchStall, 1000);
  setMode("none");
  if (state.status === "live") play();
  else if (state.status === "ended") showReplay();
  else showMessage(T.scheduled);
}

init();
