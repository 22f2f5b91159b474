// Studio: publish. Camera and microphone pickers, preview, resolution, Go live
// over WHIP (the same endpoint OBS uses), End show, a live indicator with the
// elapsed time and the publisher's connection state, the stream key for OBS.
// Start rehearsal publishes for the brand's staff only; Go live then makes the
// same stream public without touching the peer connection (docs/video.md).
import { waitForIce } from "./webrtc.js";

const root = document.querySelector("[data-publish]");
const config = root ? JSON.parse(document.getElementById("publish-config").textContent) : null;
const T = root ? JSON.parse(document.getElementById("publish-i18n").textContent) : {};

const STATUS_POLL_MS = 2000;
const RECONNECT_MS = 3000;
const HEIGHTS = { 360: [640, 360], 480: [854, 480], 720: [1280, 720] };

const $ = (selector) => root.querySelector(selector);
const els = root && {
  preview: $("[data-preview]"),
  camera: $("[data-camera]"),
  microphone: $("[data-microphone]"),
  resolution: $("[data-resolution]"),
  rehearse: $("[data-rehearse]"),
  goLive: $("[data-go-live]"),
  end: $("[data-end]"),
  indicator: $("[data-indicator]"),
  indicatorText: $("[data-indicator-text]"),
  elapsed: $("[data-elapsed]"),
  connection: $("[data-connection]"),
  error: $("[data-error]"),
  key: $("[data-stream-key]"),
  showKey: $("[data-show-key]"),
  copyKey: $("[data-copy-key]"),
  rotateKey: $("[data-rotate-key]"),
};

const state = {
  stream: null,
  pc: null,
  location: null,
  publishing: false, // the host wants to be live from this browser
  // "scheduled", "rehearsal" (staff only), "live" or "ended".
  status: root && root.dataset.rehearsing === "true" ? "rehearsal" : config ? config.status : "scheduled",
  startedAt: config ? config.startedAt : null,
  reconnectTimer: null,
  publisher: "none", // the server's view: another tab or an encoder may publish
};

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_m, name) => String(values[name] ?? ""));
}

function csrfToken() {
  const input = root.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

function showError(text) {
  els.error.textContent = text || "";
  els.error.hidden = !text;
}

function setConnection(text) {
  els.connection.textContent = text || "";
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [select, kind, unnamed] of [[els.camera, "videoinput", T.cameraN], [els.microphone, "audioinput", T.microphoneN]]) {
    const current = select.value;
    select.replaceChildren();
    devices.filter((d) => d.kind === kind).forEach((device, index) => {
      const option = new Option(device.label || String(unnamed).replace("%(n)s", index + 1), device.deviceId);
      select.append(option);
    });
    if (current) select.value = current;
  }
}

async function openCamera() {
  const [width, height] = HEIGHTS[els.resolution.value] || HEIGHTS[480];
  const constraints = {
    video: {
      deviceId: els.camera.value ? { exact: els.camera.value } : undefined,
      width: { ideal: width },
      height: { ideal: height },
      frameRate: { ideal: 30, max: 30 },
    },
    audio: els.microphone.value ? { deviceId: { exact: els.microphone.value } } : true,
  };
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia(constraints);
  } catch {
    showError(T.noCamera);
    return;
  }
  const old = state.stream;
  state.stream = stream;
  els.preview.srcObject = stream;
  showError("");
  // Swap tracks in place while live, so viewers see the new camera at once.
  if (state.pc) {
    for (const sender of state.pc.getSenders()) {
      const track = stream.getTracks().find((t) => sender.track && t.kind === sender.track.kind);
      if (track) await sender.replaceTrack(track);
    }
  }
  if (old) old.getTracks().forEach((t) => t.stop());
}

function closePeer() {
  if (state.pc) {
    state.pc.close();
    state.pc = null;
  }
}

async function publish() {
  if (!state.stream) await openCamera();
  if (!state.stream) return;
  closePeer();
  const pc = new RTCPeerConnection({
    iceServers: config.iceServers,
    iceTransportPolicy: config.iceTransportPolicy || "all",
  });
  state.pc = pc;
  for (const track of state.stream.getTracks()) {
    const init = { direction: "sendonly", streams: [state.stream] };
    if (track.kind === "video") init.sendEncodings = [{ maxBitrate: config.maxBitrate }];
    pc.addTransceiver(track, init);
  }
  pc.addEventListener("connectionstatechange", () => {
    if (state.pc !== pc) return;
    const value = pc.connectionState;
    setConnection(T[value] || value);
    if ((value === "failed" || value === "disconnected") && state.publishing) scheduleReconnect();
  });
  setConnection(T.connecting);
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIce(pc);
  const response = await fetch(config.whipUrl, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${els.key.value}` },
    body: pc.localDescription.sdp,
  });
  if (response.status !== 201) {
    const problem = await response.json().catch(() => ({}));
    closePeer();
    throw new Error(problem.message || `HTTP ${response.status}`);
  }
  state.location = response.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
}

function scheduleReconnect() {
  clearTimeout(state.reconnectTimer);
  setConnection(T.reconnecting);
  state.reconnectTimer = setTimeout(async () => {
    if (!state.publishing) return;
    try {
      await publish();
    } catch {
      scheduleReconnect();
    }
  }, RECONNECT_MS);
}

async function post(url) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken() },
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || `HTTP ${response.status}`);
  applyStatus(data);
}

async function rehearse() {
  els.rehearse.disabled = true;
  showError("");
  try {
    await post(root.dataset.rehearseUrl);
  } catch (error) {
    render();
    showError(format(T.rehearsalFailed, { reason: error.message }));
    return;
  }
  state.publishing = true;
  try {
    await publish();
    render();
  } catch (error) {
    state.publishing = false;
    render();
    showError(format(T.rehearsalFailed, { reason: error.message }));
  }
}

async function goLive() {
  els.goLive.disabled = true;
  showError("");
  if (state.status === "rehearsal") {
    // The stream already runs (from here or an encoder): only make it public.
    try {
      await post(root.dataset.goLiveUrl);
    } catch (error) {
      render();
      showError(format(T.goLiveFailed, { reason: error.message }));
    }
    return;
  }
  state.publishing = true;
  try {
    await publish();
    render();
    refreshStatus();
  } catch (error) {
    state.publishing = false;
    els.goLive.disabled = false;
    showError(format(T.goLiveFailed, { reason: error.message }));
  }
}

async function endShow() {
  if (!window.confirm(state.status === "rehearsal" ? T.confirmEndRehearsal : T.confirmEnd)) return;
  state.publishing = false;
  clearTimeout(state.reconnectTimer);
  const response = await fetch(config.endUrl, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken() },
    credentials: "same-origin",
  });
  closePeer();
  state.location = null;
  if (response.ok) applyStatus(await response.json());
}

async function rotateKey() {
  if (!window.confirm(T.confirmRotate)) return;
  const response = await fetch(config.keyUrl, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken() },
    credentials: "same-origin",
  });
  if (response.ok) els.key.value = (await response.json()).stream_key;
}

function applyStatus(data) {
  state.status = data.status;
  state.startedAt = data.started_at || state.startedAt;
  if (data.publisher) state.publisher = data.publisher;
  if (data.publisher && !state.pc) setConnection(T[data.publisher] || data.publisher);
  if (data.publisher === "lost" || data.publisher === "reconnecting") setConnection(T[data.publisher]);
  if (data.auto_end_at && !state.pc) {
    const at = new Date(data.auto_end_at).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" });
    setConnection(`${T[state.publisher] || ""} ${format(T.autoEnd, { time: at })}`.trim());
  }
  if (data.reason === "abandoned") setConnection(format(T.endedAbandoned, { minutes: Math.round(data.abandoned_seconds / 60) }));
  render();
}

async function refreshStatus() {
  try {
    const response = await fetch(config.statusUrl, { credentials: "same-origin" });
    if (response.ok) applyStatus(await response.json());
  } catch {
    // The next poll tries again.
  }
}

function render() {
  const live = state.status === "live";
  const rehearsal = state.status === "rehearsal";
  els.indicator.dataset.state = state.status;
  root.dataset.status = state.status;
  els.indicatorText.textContent = live ? T.live : rehearsal ? T.rehearsal : state.status === "ended" ? T.ended : T.offline;
  // In a rehearsal (after a reload, say) it starts this browser's camera again.
  const elsewhere = !state.pc && ["connecting", "connected"].includes(state.publisher);
  els.rehearse.disabled = !["scheduled", "rehearsal"].includes(state.status) || state.publishing || elsewhere;
  els.goLive.disabled = state.status === "ended" || (state.publishing && !rehearsal);
  els.end.disabled = state.status === "ended";
  els.end.textContent = rehearsal ? T.endRehearsal : T.endShow;
  if (state.status === "ended" && state.stream) {
    state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
  }
  tick();
}

function tick() {
  if (state.status !== "live" || !state.startedAt) {
    els.elapsed.textContent = "";
    return;
  }
  const seconds = Math.max(0, Math.floor((Date.now() - state.startedAt) / 1000));
  const h = Math.floor(seconds / 3600);
  const m = String(Math.floor((seconds % 3600) / 60)).padStart(2, "0");
  const s = String(seconds % 60).padStart(2, "0");
  els.elapsed.textContent = h ? `${h}:${m}:${s}` : `${m}:${s}`;
}

async function init() {
  if (!root) return;
  els.rehearse.addEventListener("click", rehearse);
  els.goLive.addEventListener("click", goLive);
  els.end.addEventListener("click", endShow);
  els.rotateKey.addEventListener("click", rotateKey);
  els.showKey.addEventListener("click", () => {
    els.key.type = els.key.type === "password" ? "text" : "password";
  });
  els.copyKey.addEventListener("click", async () => {
    await navigator.clipboard.writeText(els.key.value).catch(() => {});
    els.copyKey.textContent = T.copied;
  });
  for (const select of [els.camera, els.microphone, els.resolution]) {
    select.addEventListener("change", openCamera);
  }
  document.addEventListener("showfloor:event", (event) => {
    const message = event.detail || {};
    if (message.type === "show.status") {
      applyStatus({
        status: message.status,
        started_at: message.started_at ? Date.parse(message.started_at) : null,
        reason: message.reason,
        abandoned_seconds: config.abandonedSeconds,
      });
    } else if (message.type === "stream.status") {
      setConnection(T[message.publisher] || message.publisher);
    }
  });
  window.addEventListener("pagehide", closePeer);
  setInterval(tick, 1000);
  setInterval(refreshStatus, STATUS_POLL_MS);
  render();
  refreshStatus();
  if (state.status !== "ended" && navigator.mediaDevices) {
    await openCamera();
    await listDevices().catch(() => {});
  }
}

init();
