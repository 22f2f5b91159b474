// A line chart over time (uPlot, vendored), shared by the studio's live
// figures and the show and brand reports: times and numbers written by Intl in
// the page's language, lines in the page's own palette (each colour passes
// 4.5:1 on the page's background), optional dashed markers (pins). The chart
// only draws what the server sent; the page keeps the same numbers in a table
// beside it for screen readers (the chart's box is aria-hidden).

const libraries = new Map();

/** uPlot, imported once per page from its vendored URL. */
export async function loadChart(url) {
  if (!libraries.has(url)) libraries.set(url, import(url).then((m) => m.default));
  return libraries.get(url);
}

export function colour(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

// Languages the browser's Intl may not know, and the one whose numbers and
// dates they write alike (Chromium formats Frisian as US English otherwise).
const INTL_FALLBACK = { fy: "nl" };

function language() {
  const lang = document.documentElement.lang || undefined;
  if (!lang || Intl.NumberFormat.supportedLocalesOf([lang]).length) return lang;
  return INTL_FALLBACK[lang.split("-")[0]] || lang;
}

/** Formats a value of a series: "count" (whole numbers), "percent" (0–1). */
export function numberFormat(kind) {
  const lang = language();
  return kind === "percent"
    ? new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 })
    : new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
}

/**
 * Draw a chart into `box` and return it (a uPlot). `data` is
 * `[xs, ...ys]`, x in epoch seconds; `series` one `{label, stroke, scale,
 * kind}` per y; the first scale is on the left axis, a second one on the
 * right. `options.timeLabel` names the time in the legend,
 * `options.timeZone` the zone of the time axis (default: the
 * browser's), `options.dates` writes days rather than clock times,
 * `options.minSpan` the least seconds the x axis spans, `options.marks()` the
 * moments to mark with a vertical line: epoch seconds (a pin), or
 * `{at, kind}` with kind "pin" (dashed) or "sale" (dotted, thicker).
 */
export function drawChart(Lib, box, data, series, options = {}) {
  const text = colour("--text", "#1b1b1f");
  const line = colour("--line", "#d6d6de");
  const lang = language();
  const when = new Intl.DateTimeFormat(
    lang,
    options.dates
      ? { day: "numeric", month: "short", timeZone: options.timeZone }
      : { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: options.timeZone },
  );
  const axis = { stroke: text, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
  const scales = { x: { time: true } };
  if (options.minSpan) {
    scales.x.range = (_u, min, max) => [min, Math.max(max, min + options.minSpan)];
  }
  const axes = [{ ...axis, space: 60, values: (_u, splits) => splits.map((s) => when.format(new Date(s * 1000))) }];
  for (const spec of series) {
    if (scales[spec.scale]) continue;
    const percent = spec.kind === "percent";
    scales[spec.scale] = { range: (_u, _min, max) => [0, percent ? 1 : Math.max(1, max)] };
    const format = numberFormat(spec.kind);
    axes.push({
      ...axis,
      scale: spec.scale,
      side: axes.length === 1 ? 3 : 1,
      grid: axes.length === 1 ? axis.grid : { show: false },
      // Whole numbers only on count axes, tenths of the whole on a share.
      incrs: percent ? [0.1, 0.2, 0.25, 0.5] : [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000],
      values: (_u, splits) => splits.map((s) => format.format(s)),
    });
  }
  const width = () => box.parentElement.clientWidth;
  const height = options.height || 220;
  const chart = new Lib(
    {
      width: width(),
      height,
      scales,
      legend: { show: options.legend !== false },
      // The legend's values too, in the page's language.
      series: [
        { ...(options.timeLabel ? { label: options.timeLabel } : {}), value: (_u, v) => (v == null ? "" : when.format(new Date(v * 1000))) },
        ...series.map((s, index) => {
          const format = numberFormat(s.kind);
          // Every line after the first is dashed: told apart without colour.
          const dash = index ? [8, 4] : undefined;
          return { label: s.label, stroke: s.stroke, width: 2, dash, scale: s.scale, value: (_u, v) => (v == null ? "" : format.format(v)) };
        }),
      ],
      axes,
      hooks: { draw: [(u) => markMoments(u, options.marks ? options.marks() : [])] },
    },
    data,
    box,
  );
  window.addEventListener("resize", () => {
    if (width()) chart.setSize({ width: width(), height });
  });
  return chart;
}

// How each kind of moment is drawn: told apart by the dash, not only colour.
const MARKS = {
  pin: { colour: ["--warn", "#8a4b00"], dash: [4, 4], width: 1 },
  sale: { colour: ["--live", "#c41230"], dash: [1, 3], width: 2 },
};

function markMoments(u, moments) {
  if (!moments.length) return;
  const ctx = u.ctx;
  ctx.save();
  for (const moment of moments) {
    const { at, kind } = typeof moment === "number" ? { at: moment, kind: "pin" } : moment;
    const style = MARKS[kind] || MARKS.pin;
    ctx.strokeStyle = colour(...style.colour);
    ctx.setLineDash(style.dash);
    ctx.lineWidth = style.width;
    const x = Math.round(u.valToPos(at, "x", true));
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
  }
  ctx.restore();
}
