// Show page: the live auction (docs/auctions-ui.md), loaded by games-loader.js
// once the room has one. The server decides everything (amounts, who leads,
// when it closes, whether a bid counts); this module draws the card it sends,
// sends intents (`auction.bid`, `auction.buy_now`) and counts down to the
// server's `ends_at` on the server's clock, measured with `clock.ping`.
// User text (names, product names) only reaches the page through textContent.
import { el, fill, formatPrice, readStrings } from "./room.js";

const $ = (id) => document.getElementById(id);
const root = $("room-auction");
const t = readStrings("auction-i18n");
const language = document.documentElement.lang || "en";
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
// How many amounts the "Set a maximum" list offers above the next bid.
const MAX_CHOICES = 40;
// A closed auction stays on screen this long (the snapshot keeps it 60 s too).
const CLOSED_SHOWN_MS = 60_000;

const state = {
  card: null, // the server's CARD, kept up to date by the events
  me: null, // the snapshot's {id, name} or null
  cardSaved: false,
  myMax: null, // {minor, text}
  leading: false,
  won: null, // the auction.won event for this viewer
  pending: new Map(), // ref → what was sent (to put its refusal beside the button)
  samples: [], // clock samples {rtt, offset}, the freshest few
  eventOffset: null, // server_now - Date.now() from events, until a pong came
  closedTimer: null,
  tick: null,
  styled: false,
  bidIn: new Set(), // the auctions this viewer has bid in
};

// --- The server's clock ---------------------------------------------------------
// offset = server_now - (t0 + t1) / 2 from the ping with the shortest round
// trip: a viewer whose clock is wrong, or whose link is slow, still sees the
// true time left. Until a pong arrives, the events' server_now stands in.

function clockOffset() {
  if (state.samples.length) return state.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a)).offset;
  return state.eventOffset ?? 0;
}

const serverNow = () => Date.now() + clockOffset();

function ping() {
  window.showfloorRoom?.send({ type: "clock.ping", t: Date.now() });
}

let lastBurst = -Infinity;
function pingBurst() {
  // Five pings, spaced under the server's limit (two a second, bursts of five).
  if (performance.now() - lastBurst < 5000) return;
  lastBurst = performance.now();
  for (let i = 0; i < 5; i++) setTimeout(ping, i * 600);
}

function pong(e) {
  const t1 = Date.now();
  if (typeof e.t !== "number" || typeof e.server_now !== "number") return;
  const rtt = t1 - e.t;
  if (rtt < 0 || rtt > 30_000) return;
  state.samples.push({ rtt, offset: e.server_now - (e.t + t1) / 2 });
  if (state.samples.length > 8) state.samples.shift();
  root.dataset.clockOffset = String(Math.round(clockOffset()));
}

function heardServerNow(e) {
  if (typeof e.server_now === "number") state.eventOffset = e.server_now - Date.now();
}

// --- Amounts ---------------------------------------------------------------------

/** A server amount as this page's language writes it ({en, de, …} or a string). */
function written(text, minor) {
  if (typeof text === "string" && text) return text;
  if (text && typeof text === "object" && text[language]) return text[language];
  return minor == null ? "" : formatPrice(minor, state.card?.currency || "EUR");
}

/** The step after `amount` in the server's increment table ([[from, step], …]). */
function stepAt(increments, amount) {
  let step = 0;
  for (const [from, size] of [...(increments || [])].sort((a, b) => a[0] - b[0])) if (amount >= from) step = size;
  return step > 0 ? step : 1;
}

/** Amounts the server's table allows from `first` on: what the maximum list offers. */
function allowedAmounts(card, first) {
  const amounts = [first];
  while (amounts.length < MAX_CHOICES) {
    const last = amounts[amounts.length - 1];
    amounts.push(last + stepAt(card.increments, last));
  }
  return amounts;
}

function clockText(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

function timeOfDay(epochMs) {
  return new Intl.DateTimeFormat(language, { hour: "2-digit", minute: "2-digit" }).format(new Date(epochMs));
}

// --- Saying things ------------------------------------------------------------------

function say(text) {
  // Polite, and only for what matters to this viewer: leading, outbid, the end.
  const node = $("auction-say");
  node.textContent = "";
  setTimeout(() => (node.textContent = text), 50);
}

function showError(text) {
  $("auction-error").textContent = text || "";
}

/** The saved card as the page was served ("Visa •••• 4242"), or "". */
function savedCardLabel() {
  const saved = readStrings("checkout-data").saved_card;
  return (typeof saved === "string" ? saved : saved?.label) || "";
}

/** Whether the leader named by the server is this viewer: their display
 *  name, and only once they have bid in this auction (a namesake who never
 *  bid is not told they lead). */
function isMe(name, id) {
  if (!state.me) return false;
  if (id != null) return id === state.me.id;
  return name != null && name === state.me.name && state.bidIn.has(state.card?.id);
}

// --- Drawing ---------------------------------------------------------------------------

function render() {
  const card = state.card;
  // Drawn once its styles are in: never an unstyled card over the video.
  root.hidden = !card || !state.styled;
  if (!card) return;
  const running = card.status === "running";
  root.dataset.status = card.status;
  // A card made from a win alone has no figures to show.
  root.querySelector(".auction-main").hidden = Boolean(card.brief);
  root.querySelector(".auction-rules").hidden = !running;
  $("auction-product").textContent = [card.product?.name, card.variant?.name].filter(Boolean).join(" · ");
  $("auction-more").hidden = Boolean(card.brief);
  if (card.brief) {
    renderOutcome();
    tick();
    return;
  }

  const hasBids = card.current_minor != null;
  $("auction-current-label").textContent = hasBids ? t.currentBid : t.startingBid;
  $("auction-current").textContent = hasBids ? written(card.current, card.current_minor) : written(card.start, card.start_minor);
  $("auction-leader").textContent = card.leader ? (state.leading ? t.you : card.leader) : t.nobody;
  $("auction-bids").textContent = new Intl.NumberFormat(language).format(card.bids || 0);
  $("auction-rule").textContent =
    card.close === "sudden_death" ? t.sudden : fill(t.extend, { within: card.extend_within_seconds, by: card.extend_by_seconds });
  const reserve = $("auction-reserve");
  reserve.hidden = !card.has_reserve;
  reserve.textContent = card.has_reserve ? (card.reserve_met ? t.reserveMet : t.reserveNotMet) : "";
  reserve.dataset.met = card.reserve_met ? "1" : "0";

  const member = Boolean(state.me);
  const ready = member && state.cardSaved;
  const bid = $("auction-bid");
  bid.hidden = !running || !ready;
  const waiting = [...state.pending.values()].some((p) => p.kind === "bid");
  bid.disabled = !running || state.leading || waiting;
  bid.textContent = state.leading ? t.leading : fill(t.bid, { amount: written(card.next, card.next_minor) });
  bid.dataset.leading = state.leading ? "1" : "0";
  $("auction-login").hidden = !running || member;
  $("auction-save-card").hidden = !running || !member || state.cardSaved;
  $("auction-card-why").hidden = !running || !member || state.cardSaved;

  const buyNow = $("auction-buy-now");
  // The server says whether buy-now is still open; older cards: until a bid reached its price.
  const open = card.buy_now_open ?? (card.buy_now_minor != null && (card.current_minor == null || card.current_minor < card.buy_now_minor));
  const buyNowOpen = running && ready && open;
  buyNow.hidden = !buyNowOpen;
  if (buyNowOpen) buyNow.textContent = fill(t.buyNow, { amount: written(card.buy_now, card.buy_now_minor) });
  renderMax(running && ready);
  renderHistory();
  renderOutcome();
  tick();
}

function renderMax(open) {
  const form = $("auction-max-form");
  form.hidden = !open;
  const card = state.card;
  $("auction-my-max").textContent = state.myMax ? fill(t.myMax, { amount: state.myMax.text }) : "";
  if (!open || card.next_minor == null) return;
  const select = $("auction-max");
  const chosen = Number(select.value) || null;
  const first = Math.max(card.next_minor, state.myMax ? state.myMax.minor + stepAt(card.increments, state.myMax.minor) : 0);
  const amounts = allowedAmounts(card, first);
  const key = amounts.join(",");
  if (select.dataset.key === key) return; // unchanged: keep the viewer's pick and focus
  select.dataset.key = key;
  select.replaceChildren(...amounts.map((minor) => el("option", { value: minor }, formatPrice(minor, card.currency))));
  // Keep what the viewer picked if it is still allowed; otherwise a few steps up.
  select.value = String(chosen && amounts.includes(chosen) ? chosen : amounts[Math.min(4, amounts.length - 1)]);
}

function renderHistory() {
  const list = $("auction-history");
  const history = state.card.history || [];
  const items = history.map((b) => {
    const id = `auction-bid-${b.id}`;
    const existing = document.getElementById(id);
    if (existing) return existing;
    const item = el("li", { id, className: "auction-history-item" });
    item.append(el("span", { className: "auction-history-amount" }, written(b.amount, b.amount_minor)), " ", el("span", { className: "auction-history-who" }, b.bidder ?? ""));
    if (b.proxy) item.append(" ", el("span", { className: "auction-history-proxy" }, `(${t.proxy})`));
    if (b.at) item.append(" ", el("time", { className: "auction-history-at", datetime: new Date(b.at).toISOString() }, timeOfDay(b.at)));
    return item;
  });
  list.replaceChildren(...items);
}

function outcomeText(card) {
  const amount = written(card.amount, card.amount_minor);
  return {
    sold: fill(t.sold, { name: card.winner ?? "", amount }),
    no_bids: t.noBids,
    reserve_not_met: t.reserveNotMetClosed,
    cancelled: t.cancelled,
  }[card.outcome] || t.closed;
}

function renderOutcome() {
  const card = state.card;
  const outcome = $("auction-outcome");
  outcome.hidden = card.status !== "closed";
  if (card.status === "closed") outcome.textContent = [outcomeText(card), card.after].filter(Boolean).join(" ");
  const won = $("auction-won");
  const w = state.won && state.won.auction_id === card.id ? state.won : null;
  won.hidden = !w;
  if (!w) return;
  const amount = written(w.amount, w.amount_minor);
  const lines = [card.product?.name ? fill(t.won, { product: card.product.name, amount }) : fill(t.wonPlain, { amount })];
  if (w.status === "paid") {
    const label = w.card?.label || state.cardLabel || savedCardLabel();
    lines.push(label ? fill(t.paidWith, { card: label }) : t.paid);
  } else if (w.pay_by) {
    lines.push(fill(t.payBy, { time: timeOfDay(w.pay_by) }));
  }
  $("auction-won-text").textContent = lines.join(" ");
  $("auction-pay").hidden = w.status !== "pay_now";
}

function tick() {
  const card = state.card;
  const left = $("auction-left");
  if (!card) return;
  if (card.status !== "running") {
    left.textContent = t.closed;
    root.dataset.urgent = "0";
    return;
  }
  const ms = card.ends_at - serverNow();
  left.textContent = ms > 0 ? fill(t.left, { time: clockText(ms) }) : t.closing;
  left.dataset.msLeft = String(Math.max(0, Math.round(ms)));
  root.dataset.urgent = ms > 0 && ms <= 10_000 ? "1" : "0";
}

function setLeading(leading, amountText) {
  if (leading === state.leading) return;
  state.leading = leading;
  if (leading) say(fill(t.leadingAt, { amount: amountText }));
}

function flashExtended(by) {
  const note = el("span", { className: "auction-extended" }, fill(t.extended, { by }));
  $("auction-left").after(note);
  setTimeout(() => note.remove(), reducedMotion.matches ? 4000 : 2500);
}

// --- Events ------------------------------------------------------------------------------

function setCard(card, { fromSnapshot = false } = {}) {
  clearTimeout(state.closedTimer);
  state.card = card ? { ...card, history: [...(card.history || [])] } : null;
  if (!card) return;
  heardServerNow(card);
  if (fromSnapshot) {
    if (card.my_max_minor != null || (state.me && (card.history || []).some((b) => b.bidder === state.me.name))) state.bidIn.add(card.id);
    state.cardSaved = Boolean(card.card_saved);
    state.myMax = card.my_max_minor != null ? { minor: card.my_max_minor, text: written(card.my_max, card.my_max_minor) } : null;
  }
  state.leading = card.status === "running" && Boolean(card.leader) && isMe(card.leader, card.leader_id);
  if (card.status === "closed") hideLater();
}

function hideLater() {
  clearTimeout(state.closedTimer);
  state.closedTimer = setTimeout(() => {
    if (state.card?.status === "closed" && !(state.won && state.won.auction_id === state.card.id)) {
      state.card = null;
      render();
    }
  }, CLOSED_SHOWN_MS);
}

const handlers = {
  snapshot(s) {
    state.me = s.me || null;
    state.pending.clear();
    setCard(s.auction || null, { fromSnapshot: true });
    // Without an auction the snapshot does not say; the buy sheet's data does.
    if (!s.auction) state.cardSaved = Boolean(savedCardLabel());
    pingBurst();
    render();
  },
  "clock.pong": pong,
  "auction.started"(e) {
    heardServerNow(e);
    state.myMax = null;
    state.won = null;
    showError("");
    // A new auction: the viewer's card status carries over from the snapshot.
    setCard({ ...e.auction, card_saved: state.cardSaved });
    render();
  },
  "auction.bid"(e) {
    heardServerNow(e);
    const card = state.card;
    if (!card || card.id !== e.auction_id) return;
    Object.assign(card, {
      current_minor: e.current_minor,
      current: e.current,
      next_minor: e.next_minor,
      next: e.next,
      leader: e.leader,
      leader_id: e.leader_id,
      bids: e.bids,
      ends_at: e.ends_at ?? card.ends_at,
      reserve_met: e.reserve_met ?? card.reserve_met,
      buy_now_open: e.buy_now_open ?? card.buy_now_open,
    });
    if (e.bid && !card.history.some((b) => b.id === e.bid.id)) {
      card.history.unshift(e.bid);
      card.history.length = Math.min(card.history.length, 20);
    }
    const mine = isMe(e.leader, e.leader_id);
    setLeading(mine, written(e.current, e.current_minor));
    if (e.extended) flashExtended(card.extend_by_seconds);
    render();
  },
  "auction.closed"(e) {
    heardServerNow(e);
    const card = state.card;
    if (!card || card.id !== e.auction_id) return;
    Object.assign(card, { status: "closed", outcome: e.outcome, winner: e.winner, amount: e.amount, amount_minor: e.amount_minor, bids: e.bids ?? card.bids });
    state.leading = false;
    say(outcomeText(card));
    hideLater();
    render();
  },
  "auction.offered"(e) {
    const card = state.card;
    if (!card || card.id !== e.auction_id) return;
    card.after = fill(t.offered, { name: e.to ?? "", amount: written(e.amount, e.amount_minor) });
    render();
  },
  "auction.settled"(e) {
    const card = state.card;
    if (!card || card.id !== e.auction_id) return;
    card.after = e.outcome === "paid" ? t.settledPaid : t.settledUnpaid;
    if (state.won?.auction_id === e.auction_id && e.outcome === "paid") state.won = { ...state.won, status: "paid" };
    render();
  },
  "auction.outbid"(e) {
    if (!state.card || state.card.id !== e.auction_id) return;
    state.leading = false;
    say(fill(t.outbid, { amount: written(e.amount, e.amount_minor) }));
    render();
  },
  "auction.max"(e) {
    if (!state.card || state.card.id !== e.auction_id) return;
    state.myMax = e.max_minor != null ? { minor: e.max_minor, text: written(e.max, e.max_minor) } : null;
    render();
  },
  "auction.won"(e) {
    state.won = e;
    clearTimeout(state.closedTimer);
    if (state.card?.id !== e.auction_id) {
      // Offered to this viewer long after the close (the winner did not pay),
      // or after a reload: the card is gone, the win still needs saying.
      state.card = { id: e.auction_id, status: "closed", outcome: "sold", winner: state.me?.name ?? null, amount: e.amount, amount_minor: e.amount_minor, history: [], brief: true };
    }
    render();
    if (state.card?.id === e.auction_id) say($("auction-won-text").textContent);
  },
  ack(e) {
    const sent = state.pending.get(e.ref);
    if (!sent) return;
    state.pending.delete(e.ref);
    showError("");
    const card = state.card;
    if (card?.status === "running") setLeading(isMe(card.leader, card.leader_id), written(card.current, card.current_minor));
    render();
  },
  error(e) {
    const sent = state.pending.get(e.ref);
    if (!sent) return;
    state.pending.delete(e.ref);
    if (e.code === "card_required") {
      state.cardSaved = false;
      render();
      $("auction-save-card").focus();
    }
    if (e.code === "already_leading") state.leading = true;
    showError(e.message || "");
    render();
  },
};

function send(message, kind) {
  showError("");
  const ref = window.showfloorRoom?.send(message);
  if (!ref) {
    showError(t.network);
    return;
  }
  state.pending.set(ref, { kind });
  if (message.auction_id != null) state.bidIn.add(message.auction_id);
  // A lost answer must not leave the button off for good.
  setTimeout(() => {
    if (state.pending.delete(ref)) render();
  }, 8000);
  render();
}

// --- Saving a card before the first bid ---------------------------------------------------

async function postSetup(body) {
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
  const response = await fetch(root.dataset.cardSetup, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
    body: JSON.stringify(body),
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    // An empty or HTML answer: reported by the caller.
  }
  if (!response.ok) throw new Error(data.message || t.cardFailed);
  return data;
}

function cardSaved(data) {
  state.cardSaved = true;
  state.cardLabel = data.saved_card?.label || state.cardLabel;
  $("auction-card-entry").hidden = true;
  say(state.cardLabel ? fill(t.cardSaved, { card: state.cardLabel }) : t.cardSavedPlain);
  render();
  $("auction-bid").focus();
}

/** Production: the card is typed into Stripe's own element (never into this page). */
async function enterCard(clientSecret) {
  const config = readStrings("checkout-data");
  if (!window.Stripe) {
    await new Promise((resolve, reject) => {
      const script = el("script", { src: config.stripe_js, async: true });
      script.addEventListener("load", resolve);
      script.addEventListener("error", reject);
      document.head.append(script);
    });
  }
  const stripe = window.Stripe(config.publishable_key);
  const elements = stripe.elements({ clientSecret });
  elements.create("payment").mount("#auction-card-element");
  $("auction-card-entry").hidden = false;
  const confirm = $("auction-card-confirm");
  confirm.onclick = async () => {
    confirm.disabled = true;
    showError("");
    try {
      const result = await stripe.confirmSetup({ elements, redirect: "if_required", confirmParams: { return_url: window.location.href } });
      if (result.error) throw new Error(result.error.message || t.cardFailed);
      const data = await postSetup({ setup_intent_id: result.setupIntent.id });
      if (!data.saved_card) throw new Error(t.cardFailed);
      cardSaved(data);
    } catch (error) {
      showError(error.message || t.cardFailed);
    } finally {
      confirm.disabled = false;
    }
  };
}

async function saveCard() {
  const button = $("auction-save-card");
  const label = button.textContent;
  button.disabled = true;
  button.textContent = t.saving;
  showError("");
  try {
    const data = await postSetup({});
    if (data.saved_card) cardSaved(data);
    else if (data.client_secret) await enterCard(data.client_secret);
    else throw new Error(t.cardFailed);
  } catch (error) {
    showError(error instanceof TypeError ? t.network : error.message || t.cardFailed);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

// --- Paying a won auction --------------------------------------------------------------------

function payWon() {
  const w = state.won;
  if (!w) return;
  // The buy sheet (checkout.js, or its loader until it is here) opens on this
  // order and calls preventDefault. A page without the sheet's scripts
  // falls back on their resume path: `?order=<id>` opens and pays it.
  const event = new CustomEvent("showfloor:pay-order", { detail: { orderId: w.order_id }, cancelable: true });
  if (document.dispatchEvent(event)) {
    const url = new URL(window.location.href);
    url.searchParams.set("order", w.order_id);
    window.location.assign(url.toString());
  }
}

// --- Start ------------------------------------------------------------------------------------

function wire() {
  $("auction-bid").addEventListener("click", () => {
    const card = state.card;
    if (!card || card.next_minor == null) return;
    send({ type: "auction.bid", auction_id: card.id, amount_minor: card.next_minor }, "bid");
  });
  $("auction-buy-now").addEventListener("click", () => {
    if (state.card) send({ type: "auction.buy_now", auction_id: state.card.id }, "buy_now");
  });
  $("auction-max-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const max = Number($("auction-max").value);
    if (state.card && Number.isSafeInteger(max)) send({ type: "auction.bid", auction_id: state.card.id, max_minor: max }, "max");
  });
  $("auction-save-card").addEventListener("click", saveCard);
  $("auction-pay").addEventListener("click", payWon);
  document.addEventListener("showfloor:event", (event) => {
    const message = event.detail || {};
    handlers[message.type]?.(message);
  });
  state.tick = setInterval(tick, 250);
  // On a phone the purchase note sits under the card (game-auction.css).
  const room = root.closest(".room");
  if (room && window.ResizeObserver) {
    new ResizeObserver(() => room.style.setProperty("--auction-h", `${root.offsetHeight}px`)).observe(root);
  }
  setInterval(ping, 30_000);
}

function loadCss() {
  const ready = () => {
    state.styled = true;
    render();
  };
  if (!root.dataset.css || document.querySelector(`link[href="${root.dataset.css}"]`)) return ready();
  const link = el("link", { rel: "stylesheet", href: root.dataset.css });
  link.addEventListener("load", ready);
  link.addEventListener("error", ready);
  document.head.append(link);
}

export default function start(eventsSoFar) {
  if (!root) return;
  loadCss();
  wire();
  // The events from before this module was loaded; the snapshot among them
  // tells who this viewer is.
  for (const event of eventsSoFar || []) handlers[event.type]?.(event);
  if (!(eventsSoFar || []).some((e) => e.type === "snapshot")) pingBurst();
}
