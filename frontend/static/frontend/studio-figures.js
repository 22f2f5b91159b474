// Studio: the show's live figures, polled every few seconds. The server
// counts, computes and formats every figure; this module only shows them.

import { el, readStrings } from "./room.js";

const root = document.getElementById("studio-figures");
if (root) initFigures(root);

function initFigures(panel) {
  const t = readStrings("studio-figures-i18n");
  const slug = panel.dataset.show;
  const every = Math.max(2, Number(panel.dataset.interval) || 5) * 1000;
  const status = document.getElementById("studio-figures-status");
  let timer = null;

  function money(list) {
    return list?.length ? list.map((m) => m.formatted).join(" + ") : "–";
  }

  function show(name, value) {
    const node = panel.querySelector(`[data-figure="${name}"]`);
    if (node) node.textContent = value == null ? "–" : String(value);
  }

  function render(data) {
    for (const name of ["viewers_now", "peak_viewers", "unique_viewers", "average_watch", "chat_per_minute", "reactions_per_minute", "conversion_formatted"]) {
      show(name, data[name]);
    }
    show("net_revenue", money(data.net_revenue));
    const rows = document.getElementById("studio-figures-rows");
    if (!data.products?.length) {
      const row = el("tr");
      row.append(el("td", { colspan: 6 }, t.none));
      rows.replaceChildren(row);
      return;
    }
    rows.replaceChildren(
      ...data.products.map((p) => {
        const name = el("th", { scope: "row" }, p.name);
        if (p.pinned) name.append(el("span", { className: "studio-figures-pinned" }, t.pinned));
        const row = el("tr");
        row.append(name, el("td", {}, p.impressions), el("td", {}, p.buy_taps), el("td", {}, p.holds), el("td", {}, p.units), el("td", {}, money(p.revenue)));
        return row;
      }),
    );
  }

  async function refresh() {
    timer = null;
    try {
      const response = await fetch(`/api/shows/${slug}/figures`, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      render(await response.json());
      status.textContent = "";
    } catch {
      status.textContent = t.failed;
    }
    if (!document.hidden) timer = setTimeout(refresh, every);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !timer) refresh();
  });
  refresh();
}
