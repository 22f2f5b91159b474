// The viewer's time zone (frontend/zone.py): remembered in a cookie so the
// server writes times in it; the first time, this page's times are rewritten
// here in the viewer's language.
const COOKIE = "showfloor_tz";

function zone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

const current = zone();
const stored = document.cookie.split("; ").find((c) => c.startsWith(`${COOKIE}=`))?.slice(COOKIE.length + 1);
if (current && decodeURIComponent(stored || "") !== current) {
  document.cookie = `${COOKIE}=${encodeURIComponent(current)}; path=/; max-age=31536000; SameSite=Lax`;
  const format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
    dateStyle: "full",
    timeStyle: "short",
    timeZone: current,
  });
  // Only times the server wrote in full (``{% datetime %}``); timelines and
  // countdowns keep their own formats.
  for (const el of document.querySelectorAll("time[data-zoned][datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) el.textContent = format.format(when);
  }
}
