// Studio: the show's live figures, polled every few seconds, and a chart of
// viewers and orders per minute (uPlot, vendored) with pins marked; a table
// beside it carries the same numbers for screen readers. The server counts,
// computes and formats every figure; this module only shows them.

import { el, readStrings } from "./room.js";

const root = document.getElementById("studio-figures");
if (root) initFigures(root);

function initFigures(panel) {
  const t = readStrings("studio-figures-i18n");
  const slug = panel.dataset.show;
  const every = Math.max(2, Number(panel.dataset.interval) || 5) * 1000;
  const status = document.getElementById("studio-figures-status");
  let timer = null;
  let chart = null;
  let chartLib = null;
  let last = null;

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
    renderMinutes(data.minutes || [], data.pins || []);
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

  function renderMinutes(minutes, pins) {
    document.getElementById("studio-figures-minutes").replaceChildren(
      ...minutes.map((m) => {
        const row = el("tr");
        row.append(el("th", { scope: "row" }, m.label), el("td", {}, m.viewers), el("td", {}, m.orders_paid));
        return row;
      }),
    );
    last = { minutes, pins };
    drawChart().catch(() => {});
  }

  function colour(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }

  async function drawChart() {
    const box = document.getElementById("studio-figures-chart");
    if (!last || !last.minutes.length || !box.parentElement.clientWidth) return;
    if (!chartLib) chartLib = (await import(panel.dataset.chartLib)).default;
    const data = [last.minutes.map((m) => m.at), last.minutes.map((m) => m.viewers), last.minutes.map((m) => m.orders_paid)];
    if (chart) {
      chart.setData(data);
      return;
    }
    const text = colour("--text", "#1b1b1f");
    const line = colour("--line", "#d6d6de");
    const axis = { stroke: text, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
    // Whole numbers only on the count axes; times as 24-hour clock readings.
    const counts = { ...axis, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000] };
    const times = { ...axis, values: "{HH}:{mm}", space: 60 };
    chart = new chartLib(
      {
        width: box.parentElement.clientWidth,
        height: 220,
        scales: {
          // At least ten minutes wide, so the first minutes do not stretch.
          x: { time: true, range: (_u, min, max) => [min, Math.max(max, min + 600)] },
          y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
          orders: { range: (_u, _min, max) => [0, Math.max(1, max)] },
        },
        series: [
          {},
          { label: t.viewers, stroke: colour("--accent", "#5b2bd9"), width: 2, scale: "y" },
          { label: t.orders, stroke: colour("--ok", "#17663a"), width: 2, scale: "orders" },
        ],
        axes: [times, { ...counts, scale: "y" }, { ...counts, scale: "orders", side: 1, grid: { show: false } }],
        hooks: { draw: [markPins] },
      },
      data,
      box,
    );
  }

  function markPins(u) {
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = colour("--warn", "#8a4b00");
    ctx.setLineDash([4, 4]);
    ctx.lineWidth = 1;
    for (const pin of last?.pins || []) {
      const x = Math.round(u.valToPos(pin.at, "x", true));
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  }

  window.addEventListener("resize", () => {
    const box = document.getElementById("studio-figures-chart");
    if (chart && box.parentElement.clientWidth) chart.setSize({ width: box.parentElement.clientWidth, height: 220 });
  });

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
