// Studio: the auction's controls (docs/auctions-ui.md). Starts an auction on
// a line-up product (`auction.start`), shows the running one with its
// countdown on the server's clock and its bids, and cancels it
// (`auction.cancel`); everything stops once the show has ended. The server
// checks the role, the line-up and every number; amounts typed here are read
// into integer minor units without floating point.
import { el, fill, readStrings } from "./room.js";

const $ = (id) => document.getElementById(id);
const root = $("studio-auction");
const t = readStrings("studio-auction-i18n");
const formats = readStrings("studio-auction-money");
const language = document.documentElement.lang || "en";
// The server's default steps per currency ([from, step] in minor units,
// checkout/auction_cards.py). Shown to the host; sent only when edited, so
// the server's own table applies otherwise.
const DEFAULT_STEPS = readStrings("studio-auction-steps");

const state = {
  card: null,
  ended: root?.closest("[data-status]")?.dataset.status === "ended",
  pending: new Map(), // ref → "start" | "cancel"
  samples: [],
  eventOffset: null,
};

// --- Amounts ---------------------------------------------------------------------

function currency() {
  return $("sa-product").selectedOptions[0]?.dataset.currency || "EUR";
}

function format(code) {
  return formats[code] || { decimal: ".", group: ",", digits: 2, prefix: "", suffix: ` ${code}` };
}

/**
 * A typed amount as integer minor units, or null: "25", "25.5", "25,50",
 * "1.234,50", "1,234.50". Read as digit strings, never as a float. The last
 * "." or "," followed by at most the currency's decimals is the decimal mark.
 */
export function parseAmount(text, code) {
  const digits = format(code).digits;
  const s = String(text).trim().replace(/[\s\u00a0\u202f'’]/g, "");
  if (!s) return null;
  const match = /^(\d[\d.,]*?)(?:[.,](\d+))?$/.exec(s);
  if (!match) return null;
  let whole = match[1];
  let fraction = match[2] ?? "";
  if (fraction.length > digits) {
    // "1.000" in a two-decimal currency: the mark groups thousands.
    whole = `${whole}${fraction}`;
    fraction = "";
    if (s.at(-4) !== "." && s.at(-4) !== ",") return null;
  }
  whole = whole.replace(/[.,]/g, "");
  if (!/^\d+$/.test(whole) || !/^\d*$/.test(fraction)) return null;
  const minor = BigInt(whole) * 10n ** BigInt(digits) + BigInt((fraction || "0").padEnd(digits, "0") || "0");
  return minor > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(minor);
}

/** Minor units as a host types them ("25.50" in English, "25,50" in German), without the symbol. */
function plainAmount(minor, code) {
  const f = format(code);
  const digits = String(minor).padStart(f.digits + 1, "0");
  const whole = digits.slice(0, digits.length - f.digits);
  const fraction = f.digits ? digits.slice(-f.digits) : "";
  return fraction && Number(fraction) ? `${whole}${f.decimal}${fraction}` : whole;
}

function written(text, minor) {
  if (typeof text === "string" && text) return text;
  if (text && typeof text === "object" && text[language]) return text[language];
  return minor == null ? "" : `${plainAmount(minor, state.card?.currency || "EUR")} ${state.card?.currency || ""}`;
}

// --- The bid-step table ------------------------------------------------------------------

function fillSteps() {
  const code = currency();
  const body = $("sa-steps");
  body.dataset.edited = "";
  body.replaceChildren(
    ...(DEFAULT_STEPS[code] || []).map(([from, step], index) => {
      const row = el("tr");
      const n = index + 1;
      const fromInput = el("input", { inputmode: "decimal", autocomplete: "off", "aria-label": fill(t.fromLabel, { n }), dataset: { part: "from" }, value: plainAmount(from, code) });
      const stepInput = el("input", { inputmode: "decimal", autocomplete: "off", "aria-label": fill(t.stepLabel, { n }), dataset: { part: "step" }, value: plainAmount(step, code) });
      if (index === 0) fromInput.readOnly = true; // the table starts at zero
      const a = el("td");
      a.append(fromInput);
      const b = el("td");
      b.append(stepInput);
      row.append(a, b);
      return row;
    }),
  );
  $("sa-currency").textContent = fill(t.currency, { currency: code });
}

// --- The server's clock (as game-auction.js measures it) -------------------------------------

function clockOffset() {
  if (state.samples.length) return state.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a)).offset;
  return state.eventOffset ?? 0;
}

function ping() {
  window.showfloorRoom?.send({ type: "clock.ping", t: Date.now() });
}

function pong(e) {
  const t1 = Date.now();
  if (typeof e.t !== "number" || typeof e.server_now !== "number") return;
  const rtt = t1 - e.t;
  if (rtt < 0 || rtt > 30_000) return;
  state.samples.push({ rtt, offset: e.server_now - (e.t + t1) / 2 });
  if (state.samples.length > 8) state.samples.shift();
}

// --- Drawing ---------------------------------------------------------------------------------

function outcomeText(card) {
  const amount = written(card.amount, card.amount_minor);
  const text = { sold: fill(t.sold, { name: card.winner ?? "", amount }), no_bids: t.noBids, reserve_not_met: t.reserveNotMetClosed, cancelled: t.cancelled }[card.outcome] || t.closed;
  return [text, card.after].filter(Boolean).join(" ");
}

function render() {
  const card = state.card;
  const running = card?.status === "running";
  $("studio-auction-ended").hidden = !state.ended;
  // The form while no auction is on screen; the running or just closed one otherwise.
  $("studio-auction-form").hidden = Boolean(card);
  for (const control of $("studio-auction-form").elements) control.disabled = state.ended || state.pending.size > 0;
  extendFields();
  $("studio-auction-live").hidden = !card;
  if (!card) return;
  $("sa-live-product").textContent = [card.product?.name, card.variant?.name].filter(Boolean).join(" · ");
  $("sa-live-rule").textContent = card.close === "sudden_death" ? t.sudden : fill(t.extend, { within: card.extend_within_seconds, by: card.extend_by_seconds });
  $("sa-live-current").textContent = card.current_minor != null ? written(card.current, card.current_minor) : written(card.start, card.start_minor);
  $("sa-live-leader").textContent = card.leader || t.nobody;
  $("sa-live-bids").textContent = new Intl.NumberFormat(language).format(card.bids || 0);
  $("sa-live-reserve").textContent = card.has_reserve ? (card.reserve_met ? t.reserveMet : t.reserveNotMet) : t.none;
  $("sa-live-outcome").textContent = card.status === "closed" ? outcomeText(card) : "";
  const confirming = !$("sa-cancel-confirm").hidden;
  $("sa-cancel").hidden = !running || confirming;
  $("sa-cancel").disabled = state.ended;
  $("sa-cancel-confirm").disabled = state.ended;
  if (!running) {
    $("sa-cancel-confirm").hidden = true;
    $("sa-cancel-keep").hidden = true;
  }
  $("sa-new").hidden = running || state.ended;
  const list = $("sa-live-history");
  list.replaceChildren(
    ...(card.history || []).map((b) => {
      const item = el("li", { id: `sa-bid-${b.id}` });
      item.append(el("strong", {}, written(b.amount, b.amount_minor)), " ", el("span", {}, b.bidder ?? ""));
      if (b.proxy) item.append(" ", el("span", { className: "room-note" }, `(${t.proxy})`));
      return item;
    }),
  );
  tick();
}

function extendFields() {
  const extend = $("sa-close-extend").checked;
  for (const input of $("sa-extend").querySelectorAll("input")) input.disabled = !extend || state.ended || state.pending.size > 0;
}

function tick() {
  const card = state.card;
  if (!card) return;
  const left = $("sa-live-left");
  if (card.status !== "running") {
    left.textContent = t.closed;
    return;
  }
  const ms = card.ends_at - (Date.now() + clockOffset());
  const s = Math.max(0, Math.ceil(ms / 1000));
  left.textContent = ms > 0 ? fill(t.left, { time: `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` }) : t.closing;
}

// --- Events ----------------------------------------------------------------------------------

function heard(e) {
  if (typeof e.server_now === "number") state.eventOffset = e.server_now - Date.now();
}

const handlers = {
  snapshot(s) {
    state.ended = s.show?.status === "ended";
    state.card = s.auction ? { ...s.auction, history: [...(s.auction.history || [])] } : null;
    for (let i = 0; i < 4; i++) setTimeout(ping, i * 600);
    render();
  },
  "clock.pong": pong,
  "show.status"(e) {
    state.ended = e.status === "ended";
    render();
  },
  "auction.started"(e) {
    heard(e);
    state.card = { ...e.auction, history: [...(e.auction.history || [])] };
    render();
  },
  "auction.bid"(e) {
    heard(e);
    const card = state.card;
    if (!card || card.id !== e.auction_id) return;
    Object.assign(card, { current_minor: e.current_minor, current: e.current, next_minor: e.next_minor, next: e.next, leader: e.leader, bids: e.bids, ends_at: e.ends_at ?? card.ends_at, reserve_met: e.reserve_met ?? card.reserve_met });
    if (e.bid && !card.history.some((b) => b.id === e.bid.id)) {
      card.history.unshift(e.bid);
      card.history.length = Math.min(card.history.length, 50);
    }
    render();
  },
  "auction.closed"(e) {
    heard(e);
    const card = state.card;
    if (!card || card.id !== e.auction_id) return;
    Object.assign(card, { status: "closed", outcome: e.outcome, winner: e.winner, amount: e.amount, amount_minor: e.amount_minor, bids: e.bids ?? card.bids });
    render();
  },
  "auction.offered"(e) {
    if (state.card?.id !== e.auction_id) return;
    state.card.after = fill(t.offered, { name: e.to ?? "", amount: written(e.amount, e.amount_minor) });
    render();
  },
  "auction.settled"(e) {
    if (state.card?.id !== e.auction_id) return;
    state.card.after = e.outcome === "paid" ? t.settledPaid : t.settledUnpaid;
    render();
  },
  ack(e) {
    if (!state.pending.delete(e.ref)) return;
    render();
  },
  error(e) {
    const kind = state.pending.get(e.ref);
    if (!kind) return;
    state.pending.delete(e.ref);
    $(kind === "cancel" ? "sa-live-error" : "sa-error").textContent = e.message || "";
    render();
  },
};

function send(message, kind, errorId) {
  $(errorId).textContent = "";
  const ref = window.showfloorRoom?.send(message);
  if (!ref) {
    $(errorId).textContent = t.network;
    return;
  }
  state.pending.set(ref, kind);
  setTimeout(() => {
    if (state.pending.delete(ref)) render();
  }, 8000);
  render();
}

function amountField(id, code, { required = false } = {}) {
  const input = $(id);
  const text = input.value.trim();
  if (!text) {
    if (required) throw Object.assign(new Error(t.needStart), { input });
    return null;
  }
  const minor = parseAmount(text, code);
  if (minor == null) throw Object.assign(new Error(fill(t.badAmount, { value: text })), { input });
  return minor;
}

function startMessage() {
  const [productId, variantId] = $("sa-product").value.split(":").map(Number);
  const code = currency();
  const message = {
    type: "auction.start",
    product_id: productId,
    variant_id: variantId,
    start_minor: amountField("sa-start", code, { required: true }),
    duration_seconds: Number($("sa-duration").value),
    close: $("studio-auction-form").elements.close.value,
  };
  if (message.close === "extend") {
    message.extend_within_seconds = Number($("sa-within").value);
    message.extend_by_seconds = Number($("sa-by").value);
  }
  const reserve = amountField("sa-reserve", code);
  if (reserve != null) message.reserve_minor = reserve;
  const buyNow = amountField("sa-buy-now", code);
  if (buyNow != null) message.buy_now_minor = buyNow;
  const steps = [];
  for (const row of $("sa-steps").rows) {
    const [from, step] = [...row.querySelectorAll("input")].map((input) => {
      const text = input.value.trim();
      const minor = text ? parseAmount(text, code) : null;
      if (text && minor == null) throw Object.assign(new Error(fill(t.badAmount, { value: text })), { input });
      return minor;
    });
    if (from != null && step != null) steps.push([from, step]);
  }
  if (steps.length && $("sa-steps").dataset.edited) message.increments = steps;
  return message;
}

function wire() {
  fillSteps();
  $("sa-product").addEventListener("change", () => {
    if (!$("sa-steps").dataset.edited) fillSteps();
    $("sa-currency").textContent = fill(t.currency, { currency: currency() });
  });
  $("sa-steps").addEventListener("input", () => ($("sa-steps").dataset.edited = "1"));
  $("studio-auction-form").addEventListener("change", extendFields);
  $("studio-auction-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.ended) return;
    let message;
    try {
      message = startMessage();
    } catch (error) {
      $("sa-error").textContent = error.message;
      error.input?.focus();
      return;
    }
    send(message, "start", "sa-error");
  });
  $("sa-cancel").addEventListener("click", () => {
    $("sa-cancel").hidden = true;
    $("sa-cancel-confirm").hidden = false;
    $("sa-cancel-keep").hidden = false;
    $("sa-cancel-confirm").focus();
  });
  const unconfirm = () => {
    $("sa-cancel-confirm").hidden = true;
    $("sa-cancel-keep").hidden = true;
    render();
  };
  $("sa-cancel-keep").addEventListener("click", () => {
    unconfirm();
    $("sa-cancel").focus();
  });
  $("sa-cancel-confirm").addEventListener("click", () => {
    if (state.card) send({ type: "auction.cancel", auction_id: state.card.id }, "cancel", "sa-live-error");
    unconfirm();
  });
  $("sa-new").addEventListener("click", () => {
    state.card = null;
    render();
    $("sa-product").focus();
  });
  document.addEventListener("showfloor:event", (event) => {
    const message = event.detail || {};
    handlers[message.type]?.(message);
  });
  setInterval(tick, 250);
  setInterval(ping, 30_000);
  render();
}

if (root) wire();
