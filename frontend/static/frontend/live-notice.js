// One "<Brand> is live now" notice, added to the page's polite live region
// (frontend/show/_live_notices.html). Loaded by live-notices.js when needed.
const shown = new Set();
let styled;

function stylesheet(href) {
  styled ??= new Promise((done) => {
    const link = Object.assign(document.createElement("link"), { rel: "stylesheet", href });
    link.addEventListener("load", done);
    link.addEventListener("error", done);
    document.head.append(link);
  });
  return styled;
}

export async function show(data, e) {
  if (shown.has(e.show_id) || typeof e.url !== "string" || !e.url.startsWith("/")) return;
  shown.add(e.show_id);
  await stylesheet(data.css);
  const item = document.createElement("li");
  item.className = "live-notice";
  const text = document.createElement("p");
  text.textContent = data.live.replace("%(brand)s", e.brand);
  const link = document.createElement("a");
  link.href = e.url;
  link.textContent = data.watch.replace("%(title)s", e.title);
  const close = document.createElement("button");
  close.type = "button";
  close.className = "small secondary";
  close.textContent = data.dismiss;
  close.addEventListener("click", () => item.remove());
  item.addEventListener("keydown", (event) => {
    if (event.key === "Escape") item.remove();
  });
  item.append(text, link, close);
  document.getElementById("live-notices-list").append(item);
}
