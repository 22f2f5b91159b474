// The countdown to a scheduled show's start. Display only: the server renders
// the start and its own clock; this corrects for the device's clock skew.
const STRINGS = JSON.parse(document.getElementById("countdown-i18n")?.textContent || "{}");

function format(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const parts = [];
  if (d) parts.push(`${d} ${STRINGS.d}`);
  if (d || h) parts.push(`${h} ${STRINGS.h}`);
  parts.push(`${String(m).padStart(d || h ? 2 : 1, "0")} ${STRINGS.m}`);
  if (!d) parts.push(`${String(s).padStart(2, "0")} ${STRINGS.s}`);
  return parts.join(" ");
}

for (const el of document.querySelectorAll("[data-countdown]")) {
  const startsAt = Number(el.dataset.startsAt) * 1000;
  const skew = Number(el.dataset.serverNow) * 1000 - Date.now();
  const out = el.querySelector(".countdown-left");
  if (!out || !Number.isFinite(startsAt) || !Number.isFinite(skew)) continue;
  out.hidden = false;
  const tick = () => {
    const left = Math.round((startsAt - (Date.now() + skew)) / 1000);
    out.textContent = left > 0 ? String(STRINGS.startsIn).replace("%(time)s", format(left)) : STRINGS.any;
    if (left <= 0) clearInterval(timer);
  };
  const timer = setInterval(tick, 1000);
  tick();
}

// The countdown goes once the show is live or over (room.js keeps the badge).
document.addEventListener("showfloor:event", (event) => {
  const message = event.detail || {};
  const status = message.type === "show.status" ? message.status : message.show?.status;
  if (status !== "live" && status !== "ended") return;
  for (const el of document.querySelectorAll("[data-countdown]")) el.hidden = true;
});
