// Comment to buy in the room (docs/comment-to-buy.md), loaded by
// games-loader.js once the room has a claim keyword or a claim event.
// Shows the hint under the pinned products that have a keyword ("Type SOLD
// in the chat to claim one"), the claimer's confirmation card (one tap pays
// with the saved card, or the buy sheet opens on the held order) with the
// hold's countdown on the server's clock, the room's "Ana claimed one" lines
// in the chat, and a refused claim's reason. The server decides everything:
// what a message claims, the hold, the amount, the card.
import { el, embedToken, fill, readStrings } from "./room.js";

const language = document.documentElement.lang || "en";
const root = document.getElementById("room-claim");
const t = readStrings("claim-i18n");
// A refusal's reason stays this long; a closed claim's card this long.
const NOTE_MS = 8000;
const CLOSED_KEPT_MS = 20000;

const state = {
  keywords: new Map(), // product id → keyword
  pinned: new Map(), // product id → name
  cards: new Map(), // order id → claim card (+ status, say)
  offset: 0, // server clock minus ours
  note: "",
  timer: null,
};

function loadStyles() {
  const href = new URL("game-claim.css", import.meta.url).href;
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href }));
}

const serverNow = () => Date.now() + state.offset;

function syncClock(event) {
  if (typeof event.server_now === "number") state.offset = event.server_now - Date.now();
}

function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function written(texts, fallback = "") {
  return texts?.[language] ?? texts?.en ?? fallback;
}

function csrf() {
  const field = document.querySelector("#buy-form input[name=csrfmiddlewaretoken], #room-claim input[name=csrfmiddlewaretoken]");
  return field?.value || "";
}

// --- Drawing ------------------------------------------------------------------
function productLabel(card) {
  return card.variant?.name ? `${card.product.name} (${card.variant.name})` : card.product.name;
}

function holding(productId) {
  return [...state.cards.values()].some((card) => card.product.id === productId && (card.status || "held") === "held");
}

function hints() {
  const list = el("ul", { className: "claim-hints" });
  for (const [productId, name] of state.pinned) {
    const keyword = state.keywords.get(productId);
    // Not while this viewer holds one of it: their card is what matters then.
    if (!keyword || holding(productId)) continue;
    const item = el("li", { className: "claim-hint", dataset: { product: productId } });
    // The keyword stands out; the sentence is one translated string.
    const [before, after = ""] = fill(t.hint, { keyword: "\u0000", product: name }).split("\u0000");
    item.append(before, el("kbd", { className: "claim-keyword" }, keyword), after);
    list.append(item);
  }
  return list.children.length ? list : null;
}

function cardNode(card) {
  const id = `claim-${card.order_id}`;
  const node = el("article", { className: "claim-card", id, dataset: { status: card.status || "held" }, "aria-labelledby": `${id}-title` });
  node.append(el("h3", { className: "claim-title", id: `${id}-title` }, fill(t.title, { product: productLabel(card) })));
  const open = (card.status || "held") === "held";
  if (open) {
    node.append(el("p", { className: "claim-left", dataset: { order: card.order_id } }, fill(t.heldFor, { time: clock(card.expires_at - serverNow()) })));
    const actions = el("div", { className: "claim-actions" });
    const amount = written(card.amount);
    if (card.saved_card?.label) {
      const pay = el("button", { type: "button", className: "claim-pay", dataset: { key: `${id}-pay` }, "aria-describedby": `${id}-say` }, fill(t.payWith, { amount, card: card.saved_card.label }));
      pay.disabled = Boolean(card.busy);
      pay.addEventListener("click", () => payOne(card));
      const other = el("button", { type: "button", className: "claim-open secondary small", dataset: { key: `${id}-open` } }, t.otherWays);
      other.addEventListener("click", () => openSheet(card));
      actions.append(pay, other);
    } else {
      const sheet = el("button", { type: "button", className: "claim-open", dataset: { key: `${id}-open` } }, `${t.openCheckout} · ${amount}`);
      sheet.addEventListener("click", () => openSheet(card));
      actions.append(sheet);
    }
    node.append(actions);
  } else {
    const close = el("button", { type: "button", className: "claim-dismiss secondary small", dataset: { key: `${id}-close` }, "aria-label": fill(t.dismissLabel, { product: card.product.name }) }, t.dismiss);
    close.addEventListener("click", () => {
      state.cards.delete(card.order_id);
      render();
      document.getElementById("room-chat-input")?.focus();
    });
    node.append(close);
  }
  node.append(el("p", { className: "claim-say", id: `${id}-say`, dataset: { kind: card.kind || "" } }, card.say || ""));
  return node;
}

function render() {
  if (!root) return;
  // Keep the keyboard's place across a redraw (the countdown only patches text).
  const focused = root.contains(document.activeElement) ? document.activeElement.dataset.key : null;
  const box = root.querySelector(".claim-box") || el("div", { className: "claim-box" });
  box.replaceChildren();
  const hint = hints();
  if (hint) box.append(hint);
  if (state.cards.size) {
    const cards = el("div", { className: "claim-cards", role: "group", "aria-label": t.cardsLabel });
    for (const card of state.cards.values()) cards.append(cardNode(card));
    box.append(cards);
  }
  if (state.note) box.append(el("p", { className: "claim-note" }, state.note));
  if (!box.isConnected) root.prepend(box);
  root.hidden = !box.children.length;
  if (focused) root.querySelector(`[data-key="${focused}"]`)?.focus();
  clearInterval(state.timer);
  state.timer = [...state.cards.values()].some((c) => (c.status || "held") === "held") ? setInterval(tick, 1000) : null;
}

function tick() {
  let ended = false;
  for (const card of state.cards.values()) {
    if ((card.status || "held") !== "held") continue;
    const left = card.expires_at - serverNow();
    if (left <= 0 && !card.busy) {
      close(card, "expired");
      ended = true;
      continue;
    }
    const node = root.querySelector(`.claim-left[data-order="${card.order_id}"]`);
    if (node) node.textContent = fill(t.heldFor, { time: clock(left) });
  }
  if (ended) render();
}

// One live region for everything said (the cards are redrawn, and a region
// drawn anew with its words is not read out).
// Set on the next turn: after the redraw that may have just shown #room-claim.
function announce(text) {
  let region = root.querySelector(".claim-live");
  if (!region) {
    region = el("p", { className: "claim-live sr-only", role: "status", "aria-atomic": "true" });
    root.append(region);
  }
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

function say(card, text, kind = "") {
  announce(text);
  card.say = text;
  card.kind = kind;
  const node = document.getElementById(`claim-${card.order_id}-say`);
  if (node) {
    node.textContent = text;
    node.dataset.kind = kind;
  }
}

function close(card, status, text) {
  card.status = status;
  card.say = text || (status === "paid" ? t.paid : status === "expired" ? t.expired : t.closed);
  card.kind = status === "paid" ? "ok" : "error";
  announce(card.say);
  setTimeout(() => {
    if (state.cards.get(card.order_id) === card && card.status === status && status !== "paid") {
      state.cards.delete(card.order_id);
      render();
    }
  }, CLOSED_KEPT_MS);
}

let noteTimer = null;
function showNote(text) {
  announce(text);
  state.note = text;
  clearTimeout(noteTimer);
  noteTimer = setTimeout(() => {
    state.note = "";
    render();
  }, NOTE_MS);
  render();
}

// --- Paying ---------------------------------------------------------------------
function openSheet(card) {
  // checkout.js opens its sheet on the held order (`orderId`) and leaves the
  // hold alone when the sheet is closed.
  document.dispatchEvent(
    new CustomEvent("showfloor:buy", { detail: { productId: card.product.id, variantId: card.variant.id, orderId: card.order_id } }),
  );
}

async function payOne(card) {
  if (card.busy) return;
  card.busy = true;
  render();
  say(card, t.paying);
  let answer;
  try {
    const response = await fetch(`/api/orders/${card.order_id}/pay`, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRFToken": csrf(),
        ...(embedToken() ? { "X-Showfloor-Embed": embedToken() } : {}),
      },
      body: JSON.stringify({ method: "saved" }),
    });
    answer = { ok: response.ok, data: await response.json().catch(() => ({})) };
  } catch {
    answer = null;
  }
  card.busy = false;
  if (!answer) {
    say(card, t.network, "error");
  } else if (!answer.ok) {
    if (answer.data.code === "payment_declined" || answer.data.code === "order_not_payable") close(card, "closed", answer.data.message);
    else say(card, answer.data.message || t.network, "error");
  } else if (answer.data.status === "paid" || answer.data.status === "fulfilled") {
    close(card, "paid", answer.data.reference ? fill(t.paidRef, { reference: answer.data.reference }) : t.paid);
  } else if (answer.data.outcome === "requires_action") {
    say(card, t.confirm);
    openSheet(card);
  } else {
    say(card, t.paying);
  }
  render();
  if (card.status === "paid") root.querySelector(`#claim-${card.order_id} .claim-dismiss`)?.focus();
}

// --- The room's chat line -------------------------------------------------------
function chatLine(event) {
  const chat = document.getElementById("room-chat");
  if (!chat) return;
  const follow = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
  const product = event.variant ? `${event.product} (${event.variant})` : event.product;
  const item = el("li", { className: "room-msg claim-line", dataset: { product: event.product_id } });
  item.append(el("span", { className: "room-text" }, fill(t.madeWhat, { name: event.name, product })));
  chat.append(item);
  while (chat.children.length > 200) chat.firstElementChild.remove();
  if (follow) chat.scrollTop = chat.scrollHeight;
}

// --- Events ---------------------------------------------------------------------
const handlers = {
  snapshot(s) {
    syncClock(s.claim || {});
    state.pinned = new Map((s.pinned || []).map((card) => [card.id, card.name]));
    state.keywords = new Map((s.claim?.keywords || []).map((k) => [k.product_id, k.keyword]));
    const held = new Map((s.claim?.mine || []).map((card) => [card.order_id, card]));
    for (const [id, card] of state.cards) if (card.status && card.status !== "held") held.set(id, card);
    state.cards = held;
  },
  "product.pinned": (e) => state.pinned.set(e.product.id, e.product.name),
  "product.unpinned": (e) => state.pinned.delete(e.product_id),
  "claim.keyword": (e) => {
    if (e.keyword) state.keywords.set(e.product_id, e.keyword);
    else state.keywords.delete(e.product_id);
  },
  "claim.held": (e) => {
    syncClock(e);
    state.cards.set(e.order_id, { ...e, status: "held" });
    state.note = "";
    announce(`${fill(t.title, { product: productLabel(e) })}. ${fill(t.heldFor, { time: clock(e.expires_at - serverNow()) })}`);
  },
  "claim.refused": (e) => showNote(e.message),
  "claim.made": chatLine,
  "order.updated": (e) => {
    const card = state.cards.get(e.order_id);
    if (!card || (card.status || "held") !== "held" || e.status === "reserved") return false;
    if (e.status === "paid" || e.status === "fulfilled") close(card, "paid", e.reference ? fill(t.paidRef, { reference: e.reference }) : t.paid);
    else close(card, e.status === "expired" ? "expired" : "closed");
  },
};

function apply(event) {
  const handler = event && handlers[event.type];
  if (!handler) return;
  if (handler(event) === false) return;
  if (event.type !== "claim.made") render();
}

export default function start(eventsSoFar) {
  if (!root) return;
  loadStyles();
  announce("");
  // Only the snapshot onward: a chat line is drawn once, after the chat
  // the snapshot filled in.
  const from = eventsSoFar.map((e) => e.type).lastIndexOf("snapshot");
  for (const event of eventsSoFar.slice(Math.max(0, from))) apply(event);
  document.addEventListener("showfloor:event", (e) => apply(e.detail));
}
