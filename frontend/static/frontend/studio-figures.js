// Studio: the show's live figures, polled every few seconds, and a chart of
// viewers and orders per minute (uPlot, vendored) with pins marked; a table
// beside it carries the same numbers for screen readers. The server counts,
// computes and formats every figure; this module only shows them.

import { colour, drawChart as drawMinuteChart, loadChart } from "./minute-chart.js";
import { el, fill, readStrings } from "./room.js";

const root = document.getElementById("studio-figures");
if (root) initFigures(root);

function initFigures(panel) {
  const t = readStrings("studio-figures-i18n");
  const slug = panel.dataset.show;
  const every = Math.max(2, Number(panel.dataset.interval) || 5) * 1000;
  const status = document.getElementById("studio-figures-status");
  let timer = null;
  let chart = null;
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
    renderMinutes(data.minutes || [], [
      ...(data.pins || []).map((p) => ({ ...p, kind: "pin" })),
      ...(data.sales || []).map((s) => ({ ...s, kind: "sale" })),
    ]);
    const rows = document.getElementById("studio-figures-rows");
    if (!data.products?.length) {
      const row = el("tr");
      row.append(el("td", { colspan: 7 }, t.none));
      rows.replaceChildren(row);
      return;
    }
    rows.replaceChildren(
      ...data.products.map((p) => {
        const name = el("th", { scope: "row" }, p.name);
        if (p.pinned) name.append(el("span", { className: "studio-figures-pinned" }, t.pinned));
        const row = el("tr");
        row.append(name, el("td", {}, p.impressions), el("td", {}, p.buy_taps), el("td", {}, p.holds), el("td", {}, p.units), el("td", {}, money(p.revenue)), el("td", {}, money(p.refunded)));
        return row;
      }),
    );
  }

  function renderMinutes(minutes, marks) {
    // The table says in words what the chart's lines mark in each minute.
    const said = (m) =>
      marks
        .filter((mark) => mark.at >= m.at && mark.at < m.at + 60)
        .map((mark) => fill(mark.kind === "sale" ? t.saleMark : t.pinMark, { product: mark.name }))
        .join("; ");
    document.getElementById("studio-figures-minutes").replaceChildren(
      ...minutes.map((m) => {
        const row = el("tr");
        row.append(el("th", { scope: "row" }, m.label), el("td", {}, m.viewers), el("td", {}, m.orders_paid), el("td", {}, said(m)));
        return row;
      }),
    );
    last = { minutes, marks };
    drawChart().catch(() => {});
  }

  async function drawChart() {
    const box = document.getElementById("studio-figures-chart");
    if (!last || !last.minutes.length || !box.parentElement.clientWidth) return;
    const data = [last.minutes.map((m) => m.at), last.minutes.map((m) => m.viewers), last.minutes.map((m) => m.orders_paid)];
    if (chart) {
      chart.setData(data);
      return;
    }
    const Lib = await loadChart(panel.dataset.chartLib);
    if (chart) {
      chart.setData(data); // a poll that came meanwhile drew it
      return;
    }
    chart = drawMinuteChart(
      Lib,
      box,
      data,
      [
        { label: t.viewers, stroke: colour("--accent", "#5b2bd9"), scale: "y" },
        { label: t.orders, stroke: colour("--ok", "#17663a"), scale: "orders" },
      ],
      // At least ten minutes wide, so the first minutes do not stretch.
      { minSpan: 600, marks: () => last?.marks || [] },
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
