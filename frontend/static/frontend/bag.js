// Show page: the buy sheet's bag mode (docs/checkout.md), split from
// checkout.js so that a viewer who never uses the bag never downloads it.
// checkout.js imports this module the first time the bag is needed (an Add to
// bag, the bag button, a `bag.updated`, a reload in a browser that may hold a
// bag, a return from the bank for a bag's order) and hands `bagSheet` the
// sheet's shared parts; the one-tap Buy never loads it. The sheet's state,
// its server calls, rendering, delivery and payment stay in checkout.js, as
// does the bag button's count (`showBadge`).
//
// The bag's lines each hold stock on the server; the sheet shows them as the
// server last sent them (an answer or `bag.updated`) and sends the quantity
// the buyer asks for. Closing the sheet keeps a checked-out bag: GET /bag
// hands it back to pay.

import { el, fill, formatPrice } from "./room.js";

/**
 * The bag's functions, built once over the sheet's shared `parts` (checkout.js
 * lists them where it imports this module). Its own bookkeeping (which lines
 * are changing, their refusals, the bag's version) stays in here.
 */
export function bagSheet(parts) {
  const { sheet, state, $, t, config, call, render, status, now, clock, syncClock, showBadge } = parts;
  const { needsAddress, productOf, applyOrder, toPay, showHold, show, reset, keeps, showQuote } = parts;
  const room = document.getElementById("room");
  let known = false; // this page has read the bag (or knows there is none)
  let version = 0; // counts the bag's changes: a late quote for an older bag is dropped
  const lineErrors = new Map(); // variant id → the server's refusal of that line's change
  const linesBusy = new Set(); // variant ids with a change on its way
  const adding = new Set(); // variant ids with an Add on its way
  let linesKey = ""; // what the line list was last drawn from

  function hasSession() {
    return Boolean(config.signed_in) || room?.dataset.session === "1";
  }

  function written(bag) {
    // `bag.updated` carries amounts in minor units: written out the way the
    // page writes prices (the server's own formats, #money-format).
    if (!bag || bag.subtotal !== undefined) return bag;
    for (const line of bag.lines) {
      line.unit_price = formatPrice(line.unit_price_minor, bag.currency);
      line.total = formatPrice(line.unit_price_minor * line.quantity, bag.currency);
    }
    bag.subtotal = formatPrice(bag.subtotal_minor, bag.currency);
    return bag;
  }

  function setBag(bag, pending) {
    syncClock(bag?.server_now);
    state.bag = written(bag);
    known = true;
    if (pending !== undefined) state.pending = pending;
    version += 1;
    showBadge();
    if (state.mode === "bag" && sheet.open && !state.order) {
      render();
      requote();
    }
  }

  async function loadBag() {
    const answer = await call(`/api/shows/${config.show}/bag`, null, { method: "GET" });
    if (answer.ok) setBag(answer.data.bag, answer.data.checkout || null);
    return answer.ok;
  }

  async function putLine(variantId, quantity) {
    const answer = await call(`/api/shows/${config.show}/bag/lines/${variantId}`, { quantity }, { method: "PUT" });
    if (answer.ok && !hasSession()) {
      // The first Add started this guest's session: a socket that connected
      // without one hears `bag.updated` only once it connects again.
      if (room) room.dataset.session = "1"; // the replay has no room
      window.showfloorRoom?.reconnect();
    }
    return answer;
  }

  async function addOne({ variantId, report }) {
    // One more of the option: the request is absolute, so the page needs the
    // bag's current line first; a double tap adds one.
    variantId = Number(variantId);
    if (adding.has(variantId)) return;
    adding.add(variantId);
    try {
      if (!known && hasSession()) await loadBag();
      const held = state.bag?.lines.find((line) => line.variant_id === variantId)?.quantity || 0;
      const answer = await putLine(variantId, held + 1);
      if (answer.ok) {
        setBag(answer.data.bag);
        report?.(t.added, "ok");
      } else {
        report?.(answer.data.message || t.network, "error");
      }
    } catch {
      report?.(t.network, "error");
    } finally {
      adding.delete(variantId);
    }
  }

  async function setLine(line, quantity) {
    const id = line.variant_id;
    if (linesBusy.has(id) || state.order || state.busy) return;
    linesBusy.add(id);
    try {
      const answer = await putLine(id, quantity);
      if (answer.ok) {
        lineErrors.delete(id);
        status(quantity ? `${t.quantity} ${line.product_name}: ${quantity}` : "");
        setBag(answer.data.bag);
      } else {
        lineErrors.set(id, answer.data.message || t.network);
        render();
      }
    } catch {
      lineErrors.set(id, t.network);
      render();
    } finally {
      linesBusy.delete(id);
    }
  }

  async function requote() {
    // The bag delivered to the chosen country; only the answer for the bag
    // and country shown now is kept.
    if (state.order || !state.bag?.lines.length) {
      state.quote = null;
      return;
    }
    const asked = version;
    const country = needsAddress() ? $("buy-addr-country").value : "";
    let answer;
    try {
      answer = await call(`/api/shows/${config.show}/bag/quote`, { country });
    } catch {
      return;
    }
    const shown = needsAddress() ? $("buy-addr-country").value : "";
    if (state.mode !== "bag" || state.order || asked !== version || shown !== country) return;
    showQuote(answer);
  }

  function holdText(expires) {
    const left = expires - now();
    return left > 0 ? fill(t.heldFor, { time: clock(left) }) : t.holdRanOut;
  }

  function lineItem(line, editable, currency) {
    const id = line.variant_id;
    const name = line.product_name;
    const item = el("li", { className: "buy-line", dataset: { variant: id } });
    const head = el("p", { className: "buy-line-head" });
    const title = el("span", { className: "buy-line-name" }, name);
    if (line.variant_name && (productOf(id)?.variants.length ?? 2) > 1) title.append(el("span", { className: "buy-line-option" }, ` · ${line.variant_name}`));
    const unit = line.unit_price_minor;
    head.append(title, el("strong", { className: "buy-line-total" }, line.total || formatPrice(unit * line.quantity, currency)));
    const meta = el("p", { className: "buy-line-meta" }, `${line.quantity} × ${editable ? line.unit_price : formatPrice(unit, currency)}`);
    item.append(head, meta);
    if (!editable) return item;
    if (line.expires_at) {
      const expires = Date.parse(line.expires_at);
      meta.append(" · ", el("span", { className: "buy-line-hold", dataset: { expires } }, holdText(expires)));
    }
    const errorId = `buy-line-${id}-error`;
    const row = el("div", { className: "buy-line-row" });
    const stepper = el("div", { className: "buy-stepper", role: "group", "aria-label": `${t.quantity}: ${name}` });
    const less = el("button", { type: "button", "aria-label": `${t.less}: ${name}`, dataset: { key: `less-${id}` } }, "−");
    // Not `disabled`: the focus stays on the button the buyer just used.
    if (line.quantity <= 1) less.setAttribute("aria-disabled", "true");
    const more = el("button", { type: "button", "aria-label": `${t.more}: ${name}`, "aria-describedby": errorId, dataset: { key: `more-${id}` } }, "+");
    stepper.append(less, el("span", { className: "buy-line-qty" }, line.quantity), more);
    const remove = el("button", { type: "button", className: "link buy-line-remove", "aria-label": `${t.remove}: ${name}`, dataset: { key: `remove-${id}` } }, t.remove);
    less.addEventListener("click", () => line.quantity > 1 && setLine(line, line.quantity - 1));
    more.addEventListener("click", () => setLine(line, line.quantity + 1));
    remove.addEventListener("click", () => setLine(line, 0));
    row.append(stepper, remove);
    item.append(row, el("p", { className: "buy-error", id: errorId }, lineErrors.get(id) || ""));
    return item;
  }

  function posted() {
    // Delivery is asked for when one of the lines is posted.
    const lines = state.order?.lines || state.bag?.lines || [];
    return lines.some((line) => productOf(line.variant_id)?.requires_shipping !== false);
  }

  async function checkout(body) {
    // Idempotent by itself: a repeat answers the same order.
    const answer = await call(`/api/shows/${config.show}/bag/checkout`, body);
    if (answer.data.code === "bag_changed" || answer.data.code === "bag_empty") {
      // Changed in another tab, or holds ran out: show the bag as it is now.
      await loadBag();
    }
    return answer;
  }

  /** The sheet's bag mode: the lines, no one-tap stock or sale. True when there is nothing to place. */
  function renderBag() {
    $("buy-stock").textContent = "";
    $("buy-sale").hidden = true;
    renderLines();
    return !state.order && !state.bag?.lines.length;
  }

  function renderLines() {
    const editable = !state.order && state.step === "choose";
    const source = state.order || state.bag;
    const lines = source?.lines || [];
    const key = JSON.stringify([editable, lines, [...lineErrors]]);
    $("buy-bag-empty").hidden = lines.length > 0;
    if (key === linesKey) return;
    linesKey = key;
    const list = $("buy-lines");
    // The list is rebuilt: the focus goes back to the same control, or to the
    // next line's when its own line went (removed, or its hold ran out).
    const focused = list.contains(document.activeElement) ? document.activeElement : null;
    const index = focused ? [...list.children].indexOf(focused.closest("li")) : -1;
    list.replaceChildren(...lines.map((line) => lineItem(line, editable, source.currency)));
    if (!focused) return;
    const again = list.querySelector(`[data-key="${focused.dataset.key}"]`);
    const next = list.children[Math.min(index, list.children.length - 1)]?.querySelector("button");
    (again || next || $("buy-sheet-title")).focus();
  }

  function tickLines() {
    for (const node of sheet.querySelectorAll(".buy-line-hold")) {
      node.textContent = holdText(Number(node.dataset.expires));
    }
  }

  function resumeBagOrder(order) {
    // A checked-out bag still waiting for its payment: pay it, as after Continue.
    applyOrder(order);
    if (state.step === "done") return;
    sheet.dataset.orderId = order.id;
    sheet.dataset.resumed = "1";
    const oneTap = config.signed_in && config.saved_card;
    // Stripe's elements need the order's client secret, which a repeat of the
    // checkout hands back (the bag's GET does not).
    state.needsRepeat = !config.test_mode && !oneTap && !order.client_secret;
    if (!oneTap && !state.needsRepeat) toPay().catch(() => status(t.network, "error"));
    showHold();
    render();
  }

  async function openBag() {
    if (!keeps("bag")) {
      reset("bag");
      state.product = null;
      state.variant = null;
    }
    render();
    show();
    const primary = $("buy-primary");
    (primary.disabled ? $("buy-sheet-title") : primary).focus();
    if (state.order) return;
    try {
      await loadBag();
    } catch {
      status(t.network, "error");
      return;
    }
    if (state.mode !== "bag" || state.order || !sheet.open) return;
    if (state.pending) resumeBagOrder(state.pending);
    else requote();
    render();
    // The bag was read: its action, unless the buyer has moved on meanwhile.
    if (document.activeElement === $("buy-sheet-title") && !primary.disabled) primary.focus();
  }

  function forget() {
    // A fresh sheet: the lines are drawn anew, without the last refusals.
    linesKey = "";
    lineErrors.clear();
  }

  // checkout.js calls these in bag mode; `open`, `addOne`, `set` and `load` are its triggers.
  return { addOne, checkout, forget, load: loadBag, open: openBag, posted, render: renderBag, requote, set: setBag, tickLines };
}
