// Show page: the quick-checkout sheet (docs/checkout.md).
// Opens on `showfloor:buy` {productId, variantId} from a pinned card, over the
// video and chat; in its bag mode (the room's bag button) it lists the bag's
// lines and pays them once. `showfloor:bag-add` puts one more in the bag; the
// bag's own code is bag.js, loaded on first use (see "The bag" below). The
// server decides stock, prices and totals; this module
// sends intents and shows what the server answers. Card details only ever go
// to Stripe's own elements (production) or stay a server-side test method.
// The show page imports it on first need (checkout-loader.js), and hands it
// the room's events it missed through `replay`; the embed and replay load it.
// `showfloor:buy` with `orderId` opens on that held order (a chat claim,
// game-claim.js) and leaves it to its hold when the sheet is closed;
// `showfloor:pay-order` {orderId} opens on one of the buyer's orders as the
// server has it (a won auction, game-auction.js).

import { el, embedToken, fill, formatPrice, readStrings } from "./room.js";

const t = readStrings("checkout-i18n");
const config = readStrings("checkout-data");
const dialog = document.getElementById("buy-sheet");
const heard = dialog && config.show ? initSheet(dialog) : () => {};

/** The room's events from before this module was loaded (checkout-loader.js), in order. */
export function replay(events) {
  for (const event of events) heard(event);
}

function newKey() {
  if (window.crypto?.randomUUID) return window.crypto.randomUUID();
  return `${Date.now()}-${Math.random().toString(36).slice(2)}-${Math.random().toString(36).slice(2)}`;
}

function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function initSheet(sheet) {
  const $ = (id) => document.getElementById(id);
  const form = $("buy-form");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
  const products = new Map((config.products || []).map((p) => [p.id, p]));
  const sales = new Map((config.sales || []).map((s) => [s.product_id, s]));
  // Server clock minus ours: sale and hold countdowns follow the server.
  // `server_now` is when the page was served, which was when its response
  // arrived here, not now: this module loads on the first Buy, maybe minutes
  // later (checkout-loader.js).
  const served = performance.getEntriesByType?.("navigation")?.[0];
  const servedHere = served ? performance.timeOrigin + served.responseStart : Date.now();
  let offset = config.server_now ? config.server_now - servedHere : 0;
  const now = () => Date.now() + offset;
  function syncClock(serverNow) {
    // Each answer carries the server's clock; the freshest estimate wins.
    if (serverNow) offset = serverNow - Date.now();
  }
  const state = {
    product: null,
    variant: null,
    order: null,
    key: null,
    step: "choose", // choose → pay → done
    busy: false,
    stripe: null,
    elements: null,
    timer: null,
    opener: null, // gets the focus back when the sheet closes
    resuming: null, // the look-up of an open order, while it runs (→ found?)
    quote: null, // the server's price of the choice, delivered (before an order)
    editAddress: false, // the buyer asked to change their saved address
    mode: "one", // "one": a one-tap Buy of `product`; "bag": the bag's lines (bag.js is loaded)
    bag: null, // the open bag as the server last sent it
    pending: null, // the checked-out bag waiting for its payment
    needsRepeat: false, // a resumed bag checkout without its client secret
  };
  const delivery = config.delivery || { countries: [], saved_address: null };
  const ADDRESS_FIELDS = ["name", "line1", "line2", "postal_code", "city", "area", "country"];

  // --- Rendering -------------------------------------------------------------
  function status(text, kind = "") {
    const node = $("buy-status");
    node.textContent = text || "";
    node.dataset.kind = kind;
  }

  function sale() {
    const s = state.product && sales.get(state.product.id);
    if (!s || s.ends_at <= now()) return null;
    // The server says which options a sale applies to (sale.started, the
    // snapshot); the page's first data has only the currency to go by.
    const option = s.variants?.find((v) => v.id === state.variant?.id);
    const applies = option ? option.on_sale : s.currency === state.variant?.currency;
    return applies ? s : null;
  }

  function unitPrice() {
    const s = sale();
    return s ? s.price_minor : state.variant.price_minor;
  }

  function limit() {
    const s = sale();
    return s ? s.per_buyer_limit : config.max_per_buyer || 5;
  }

  function quantity() {
    const n = Number.parseInt($("buy-qty").value, 10);
    return Number.isFinite(n) ? n : 1;
  }

  function totalText() {
    if (state.order) return state.order.total;
    if (state.quote) return state.quote.total;
    if (state.mode === "bag") return state.bag?.subtotal || "";
    return formatPrice(unitPrice() * quantity(), state.variant.currency);
  }

  // --- Delivery --------------------------------------------------------------
  function needsAddress() {
    // The brand ships (it has countries) and this product (a line) is posted.
    if (!delivery.countries.length) return false;
    if (state.mode === "bag") return bagPart.posted();
    return state.product?.requires_shipping !== false;
  }

  function productOf(variantId) {
    return [...products.values()].find((p) => p.variants.some((v) => v.id === variantId));
  }

  function addressInput(field) {
    return sheet.querySelector(`[data-field="${field}"]`);
  }

  function fillCountries() {
    const select = $("buy-addr-country");
    if (select.options.length) return;
    select.replaceChildren(...delivery.countries.map((c) => el("option", { value: c.code }, c.name)));
    const saved = delivery.saved_address;
    // The page's language hints at the buyer's country; they can change it.
    const hint = { de: "DE", fr: "FR", fy: "NL", nl: "NL" }[document.documentElement.lang];
    const preferred = saved?.country || hint;
    if (preferred && delivery.countries.some((c) => c.code === preferred)) select.value = preferred;
    if (saved) for (const field of ADDRESS_FIELDS) addressInput(field).value = saved[field] || "";
  }

  function address() {
    return Object.fromEntries(ADDRESS_FIELDS.map((field) => [field, addressInput(field).value.trim()]));
  }

  function showAddressErrors(fields) {
    let first = null;
    for (const field of ADDRESS_FIELDS) {
      const input = addressInput(field);
      const id = `${input.id}-error`;
      document.getElementById(id)?.remove();
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
      const message = fields?.[field];
      if (!message) continue;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", id);
      input.closest("label").append(el("span", { class: "buy-error", id }, message));
      first = first || input;
    }
    if (first) {
      state.editAddress = true;
      render();
      first.focus();
    }
  }

  async function requote() {
    // The server prices the choice delivered to the chosen country.
    if (state.mode === "bag") return bagPart.requote();
    if (!state.variant || state.order) return;
    const asked = { variant_id: state.variant.id, quantity: quantity(), country: needsAddress() ? $("buy-addr-country").value : "" };
    let answer;
    try {
      answer = await call(`/api/shows/${config.show}/quote`, asked);
    } catch {
      return;
    }
    // Only the answer for what is chosen now: a slower answer for an earlier
    // country, option or quantity must not overwrite it.
    const country = needsAddress() ? $("buy-addr-country").value : "";
    const current = state.variant?.id === asked.variant_id && quantity() === asked.quantity && country === asked.country;
    if (!current || state.order) return;
    showQuote(answer);
  }

  function showQuote(answer) {
    state.quote = answer.ok ? answer.data : null;
    if (!answer.ok && answer.data.code === "not_shippable") status(answer.data.message, "error");
    else if (answer.ok && $("buy-status").dataset.kind === "error") status("");
    render();
  }

  function breakdownText() {
    const priced = state.order || state.quote;
    if (!priced || priced.subtotal === undefined) return "";
    const parts = [];
    if (needsAddress() || priced.shipping_minor > 0) {
      parts.push(priced.shipping_minor > 0 ? fill(t.shipping, { amount: priced.shipping }) : t.freeShipping);
    }
    if (priced.tax_minor > 0) {
      parts.push(fill(priced.tax_included ? t.taxIncluded : t.taxAdded, { amount: priced.tax, rate: priced.tax_rate || "" }));
    }
    return parts.join(" · ");
  }

  function primaryLabel() {
    const total = totalText();
    if (state.step === "choose" && config.signed_in && config.saved_card) {
      return fill(t.payWith, { total, card: config.saved_card });
    }
    if (state.step === "choose") return t.continue;
    if (state.step === "pay" && config.test_mode) return fill(t.payTest, { total });
    if (state.step === "pay") return fill(t.pay, { total });
    return t.close;
  }

  function render() {
    const { product, variant } = state;
    const bagMode = state.mode === "bag";
    if (!bagMode && (!product || !variant)) return;
    $("buy-title-prefix").hidden = bagMode;
    $("buy-product").textContent = bagMode ? t.bagTitle : product.name;
    $("buy-bag").hidden = !bagMode;
    $("buy-qty-field").hidden = bagMode;
    $("buy-variant-field").hidden = bagMode;
    const locked = state.step !== "choose" || state.busy;
    // Sold out, or an empty bag: nothing to place.
    const blocked = bagMode ? bagPart.render() : renderChoice(locked);
    renderDelivery(locked);
    $("buy-breakdown").textContent = breakdownText();
    $("buy-total").textContent = totalText();
    const primary = $("buy-primary");
    primary.textContent = primaryLabel();
    primary.disabled = state.busy || (blocked && state.step === "choose");
    $("buy-choice").hidden = state.step === "done";
    $("buy-city-field").hidden = !$("buy-share").checked;
  }

  /** The one-tap choice: option, quantity, stock, a running sale. Returns sold out. */
  function renderChoice(locked) {
    const { product, variant } = state;
    const select = $("buy-variant");
    if (select.dataset.product !== String(product.id)) {
      select.replaceChildren(
        ...product.variants.map((v) => el("option", { value: v.id }, v.name)),
      );
      select.dataset.product = String(product.id);
    }
    select.value = String(variant.id);
    $("buy-variant-field").hidden = product.variants.length < 2;
    select.disabled = locked;
    const qty = $("buy-qty");
    qty.max = String(Math.max(1, Math.min(limit(), variant.stock_available)));
    qty.disabled = locked;
    $("buy-less").disabled = locked || quantity() <= 1;
    $("buy-more").disabled = locked || quantity() >= Number(qty.max);
    const soldOut = variant.stock_available <= 0 && !state.order;
    const stock = $("buy-stock");
    stock.textContent = soldOut ? t.soldOut : variant.stock_available <= 10 ? fill(t.left, { n: variant.stock_available }) : "";
    stock.dataset.soldOut = soldOut ? "1" : "0";
    const s = sale();
    const saleNode = $("buy-sale");
    saleNode.hidden = !s;
    if (s) saleNode.textContent = `${fill(t.sale, { time: clock(s.ends_at - now()) })} · ${fill(t.saleLimit, { n: s.per_buyer_limit })}`;
    return soldOut;
  }

  function renderDelivery(locked) {
    const deliver = needsAddress() && state.step === "choose" && !state.order;
    $("buy-address").hidden = !deliver;
    if (deliver) {
      fillCountries();
      const saved = delivery.saved_address;
      const short = Boolean(saved) && !state.editAddress;
      $("buy-address-saved").hidden = !short;
      $("buy-address-form").hidden = short;
      if (saved) $("buy-address-label").textContent = `${saved.name}, ${saved.label}`;
      for (const node of $("buy-address-form").querySelectorAll("input, select")) node.disabled = locked;
      // A state or region only where the country's addresses name one.
      const country = delivery.countries.find((c) => c.code === $("buy-addr-country").value);
      $("buy-addr-area-field").hidden = !country?.area;
    }
  }

  function showHold() {
    const order = state.order;
    if (order && order.status === "reserved" && order.expires_at) {
      const left = Date.parse(order.expires_at) - now();
      if (left > 0) status(fill(t.reserved, { time: clock(left) }));
    }
  }

  function tick() {
    if (!state.busy) showHold();
    if (state.mode === "bag") bagPart.tickLines();
    else if (sale()) render();
  }

  // --- Server calls ----------------------------------------------------------
  async function call(url, body, { method = "POST", headers = {}, keepalive = false } = {}) {
    const response = await fetch(url, {
      method,
      keepalive,
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRFToken": csrf,
        ...(embedToken() ? { "X-Showfloor-Embed": embedToken() } : {}),
        ...headers,
      },
      body: method === "GET" ? undefined : JSON.stringify(body || {}),
    });
    let data = {};
    try {
      data = await response.json();
    } catch {
      data = {};
    }
    return { ok: response.ok, status: response.status, data };
  }

  function learnCard(card) {
    // The card the buyer just saved is offered on the next Buy, without a
    // reload; a buyer with a saved card is not asked to save one.
    if (!config.signed_in || !card?.label) return;
    config.saved_card = card.label;
    const save = $("buy-save");
    if (save) {
      save.checked = false;
      save.closest("label").hidden = true;
    }
  }

  function applyOrder(order) {
    syncClock(order.server_now);
    if (order.saved_card) learnCard(order.saved_card);
    if (order.status === "reserved" && state.order && state.order.status && state.order.status !== "reserved") {
      // Answers and events cross: no order goes back to "reserved", so a pay
      // answer read before the payment landed is older than what the sheet
      // knows (the event's "paid" and number) and changes nothing.
      render();
      return;
    }
    state.order = { ...(state.order || {}), ...order };
    const done = { paid: t.paid, fulfilled: t.paid, failed: t.failed, expired: t.expired, cancelled: t.cancelled, refunded: t.refunded };
    if (done[state.order.status]) {
      if (state.mode === "one") rememberHeld(null);
      else if (state.pending?.id === state.order.id) {
        state.pending = null;
        showBadge();
      }
      state.step = "done";
      state.busy = false;
      const paid = state.order.status === "paid" || state.order.status === "fulfilled";
      status(done[state.order.status], paid ? "ok" : "error");
      sheet.dataset.orderStatus = state.order.status;
      const link = $("buy-order-link");
      if (paid && state.order.page_url && state.order.reference) {
        // The order's number and its page: the timeline, tracking, a cancel.
        link.textContent = `${fill(t.orderRef, { reference: state.order.reference })} · ${t.seeOrder}`;
        link.href = state.order.page_url;
        $("buy-order").hidden = false;
      }
      if (paid) document.dispatchEvent(new CustomEvent("showfloor:purchased", { detail: { ...state.order } }));
    }
    render();
  }

  async function place() {
    const bagMode = state.mode === "bag";
    const body = {
      ...(bagMode ? {} : { variant_id: state.variant.id, quantity: quantity() }),
      save_card: Boolean($("buy-save")?.checked),
      share_city: $("buy-share").checked,
      city: $("buy-share").checked ? $("buy-city").value.trim() : "",
    };
    const email = $("buy-email");
    if (email) {
      if (!email.checkValidity()) {
        email.reportValidity();
        return false;
      }
      body.email = email.value.trim();
    }
    if (needsAddress()) {
      body.address = address();
      body.save_address = Boolean($("buy-addr-save")?.checked);
    }
    status(t.reserving);
    const answer = bagMode
      ? await bagPart.checkout(body)
      : await call(`/api/shows/${config.show}/orders`, body, { headers: { "Idempotency-Key": state.key } });
    if (!answer.ok) {
      status(answer.data.message || t.network, "error");
      if (answer.data.code === "sold_out" && !bagMode) {
        state.variant.stock_available = 0;
      }
      if (answer.data.code === "address_invalid" || answer.data.code === "address_required") {
        showAddressErrors(answer.data.fields || { line1: answer.data.message });
      }
      return false;
    }
    showAddressErrors(null);
    state.needsRepeat = false;
    applyOrder(answer.data);
    if (bagMode) {
      state.pending = state.order;
      state.bag = null;
      showBadge();
    } else {
      rememberHeld(state.order);
    }
    sheet.dataset.orderId = answer.data.id;
    showHold();
    return true;
  }

  async function pay(method) {
    status(t.paying);
    const answer = await call(`/api/orders/${state.order.id}/pay`, { method });
    if (!answer.ok) {
      status(answer.data.message || t.network, "error");
      if (answer.data.code === "payment_declined") {
        // The order failed and its stock is back; another tap starts afresh.
        state.order = null;
        state.step = "choose";
        state.key = newKey();
        if (state.mode === "bag") {
          state.pending = null;
          await bagPart.load();
        }
      }
      return;
    }
    applyOrder(answer.data);
    if (answer.data.outcome === "requires_action" && answer.data.client_secret) {
      await authenticate(answer.data.client_secret);
    }
  }

  // Stripe.js's part (stripe-pay.js), imported the first time a card is
  // needed in production or a bank asks for 3-D Secure.
  let stripeLoading = null;
  function withStripe() {
    stripeLoading ||= import("./stripe-pay.js").then(
      ({ stripePay }) =>
        stripePay({ sheet, state, $, t, config, call, status, follow, restartTimer }),
      (error) => {
        stripeLoading = null; // the next use tries again
        throw error;
      },
    );
    return stripeLoading;
  }

  function restartTimer() {
    clearInterval(state.timer);
    state.timer = setInterval(tick, 1000);
  }

  async function authenticate(clientSecret) {
    let part;
    try {
      part = await withStripe();
    } catch {
      status(t.network, "error");
      return;
    }
    await part.authenticate(clientSecret);
  }

  async function follow() {
    // The webhook decides; `order.updated` usually arrives first, this is the fallback.
    for (let i = 0; i < 30 && state.order && state.step !== "done"; i += 1) {
      const answer = await call(`/api/orders/${state.order.id}`, null, { method: "GET" });
      if (answer.ok) applyOrder(answer.data);
      if (state.step === "done") return;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  async function toPay() {
    // Stripe's elements in production; the test mode's method is the server's.
    state.step = "pay";
    if (!config.test_mode) await mountElements();
  }

  async function mountElements() {
    await (await withStripe()).mountElements();
  }

  async function confirmInBrowser() {
    await (await withStripe()).confirmInBrowser();
  }

  async function primary() {
    if (state.busy) return;
    // A tap before the open-order look-up answered: if it found the buyer's
    // order the sheet now shows it, so this tap placed nothing.
    if (state.resuming && (await state.resuming)) return;
    if (state.busy) return;
    if (state.step === "done") {
      sheet.close();
      return;
    }
    state.busy = true;
    render();
    try {
      if (state.step === "choose") {
        if ((!state.order || state.needsRepeat) && !(await place())) return;
        if (state.step === "done") return;
        if (config.signed_in && config.saved_card) {
          await pay("saved");
        } else {
          await toPay();
        }
      } else if (state.step === "pay") {
        if (config.test_mode) await pay("test");
        else await confirmInBrowser();
      }
    } catch {
      status(t.network, "error");
    } finally {
      state.busy = false;
      render();
      if (sheet.open) $("buy-primary").focus();
    }
  }

  // --- The bag ---------------------------------------------------------------
  // Its lines, their changes and its checkout are bag.js, imported when first
  // needed: most viewers never use the bag, and the one-tap Buy never loads it.
  // Here are the loader (below, its triggers) and the bag button's count.
  const bagHint = `showfloor:bag:${config.show}`;
  let bagPart = null; // bag.js's functions once loaded (always, in bag mode)
  let bagLoading = null;

  function withBag() {
    bagLoading ||= import("./bag.js").then(
      ({ bagSheet }) => {
        // What bag.js shares with the one-tap sheet: nothing is written twice.
        bagPart = bagSheet({
          sheet, state, $, t, config, call, render, status, now, clock, syncClock, showBadge,
          needsAddress, productOf, applyOrder, toPay, showHold, show, reset, keeps, showQuote,
        });
        return bagPart;
      },
      (error) => {
        bagLoading = null; // the next use tries again
        throw error;
      },
    );
    return bagLoading;
  }

  function hintBag(held) {
    // Only a browser that may hold a bag reads it when the page loads.
    try {
      if (held) localStorage.setItem(bagHint, "1");
      else localStorage.removeItem(bagHint);
    } catch {
      // Storage refused (private mode): the badge waits for the first change.
    }
  }

  function mayHaveBag() {
    try {
      return localStorage.getItem(bagHint) === "1";
    } catch {
      return false;
    }
  }

  function bagCount() {
    if (state.bag) return state.bag.count;
    return (state.pending?.lines || []).reduce((n, line) => n + line.quantity, 0);
  }

  function showBadge() {
    const wrap = $("room-bag-wrap");
    if (!wrap) return;
    const n = bagCount();
    if ($("room-bag-n").textContent !== String(n)) $("room-bag-n").textContent = String(n);
    $("room-bag-count").dataset.count = String(n);
    wrap.hidden = n === 0 && document.querySelector(".show")?.dataset.status !== "live";
    hintBag(n > 0);
  }

  // --- Opening and closing ---------------------------------------------------
  // This browser remembers that it holds an order here (until its hold
  // ends), so only a buyer who may have one asks the server after a reload:
  // a rush of first Buys costs the shop no look-ups.
  const heldKey = `showfloor:held:${config.show}`;

  function rememberHeld(order) {
    try {
      if (order && order.status === "reserved" && order.expires_at) {
        localStorage.setItem(heldKey, JSON.stringify({ id: order.id, until: Date.parse(order.expires_at) }));
      } else {
        localStorage.removeItem(heldKey);
      }
    } catch {
      // Storage refused (private mode): the look-up is then simply skipped.
    }
  }

  function mayHoldOne() {
    try {
      const held = JSON.parse(localStorage.getItem(heldKey) || "null");
      return Boolean(held && held.until > now());
    } catch {
      return false;
    }
  }

  async function resume(variantId) {
    // After a reload the buyer may still hold units of this option: pay that
    // order instead of placing another, whose hold would keep them off sale.
    let answer;
    try {
      answer = await call(`/api/shows/${config.show}/orders/open?variant_id=${variantId}`, null, { method: "GET" });
    } catch {
      return false;
    }
    if (!answer.ok || state.order || state.busy || !sheet.open || state.variant?.id !== variantId) return false;
    const order = answer.data;
    const line = (order.lines || []).find((l) => l.variant_id === variantId);
    if (line) $("buy-qty").value = String(line.quantity);
    applyOrder(order);
    if (state.step === "done") return true;
    sheet.dataset.orderId = order.id;
    sheet.dataset.resumed = "1";
    // With a saved card the main action already pays the order in one tap.
    if (!(config.signed_in && config.saved_card)) {
      try {
        await toPay();
      } catch {
        status(t.network, "error");
      }
    }
    showHold();
    render();
    return true;
  }

  function reset(mode) {
    // A fresh sheet. (A checked-out bag left behind is not cancelled: GET
    // /bag hands it back when the bag is opened again.)
    state.mode = mode;
    state.order = null;
    state.quote = null;
    state.editAddress = false;
    state.step = "choose";
    state.key = newKey();
    state.needsRepeat = false;
    bagPart?.forget();
    $("buy-qty").value = "1";
    $("buy-payment").hidden = true;
    status("");
    delete sheet.dataset.orderStatus;
    delete sheet.dataset.orderId;
    $("buy-order").hidden = true;
    delete sheet.dataset.resumed;
    sheet.dataset.mode = mode;
  }

  function keeps(mode) {
    return state.mode === mode && state.order?.status === "reserved" && state.step !== "done";
  }

  function show() {
    if (!sheet.open) {
      state.opener = sheet.contains(document.activeElement) ? null : document.activeElement;
      sheet.showModal();
    }
    clearInterval(state.timer);
    state.timer = setInterval(tick, 1000);
  }

  function open({ productId, variantId, orderId }) {
    const product = products.get(Number(productId));
    if (!product) return;
    window.showfloorRoom?.send({ type: "beacon.send", event: "sheet_open", product_id: product.id });
    const keep = keeps("one") && state.product?.id === product.id;
    if (!keep) reset("one");
    // A claim's order (game-claim.js): resumed here, left to its hold on close.
    state.held = Boolean(orderId);
    state.product = product;
    state.variant = product.variants.find((v) => v.id === Number(variantId)) || product.variants[0];
    render();
    show();
    if (!keep) {
      requote();
      const lookup = orderId || mayHoldOne() ? resume(state.variant.id) : Promise.resolve(false);
      state.resuming = lookup;
      lookup.finally(() => {
        if (state.resuming === lookup) state.resuming = null;
      });
    }
    $("buy-primary").focus();
  }

  function returnFocus() {
    // The pinned cards re-render on stock changes: find the opener's successor.
    const opener = state.opener?.isConnected
      ? state.opener
      : state.mode === "bag"
        ? $("room-bag")
        : document.querySelector(`.room-pin[data-product="${state.product?.id}"] .room-buy`);
    state.opener = null;
    opener?.focus();
  }

  function closed() {
    if (sheet.open) return; // the non-modal step around Stripe.js reopened it
    returnFocus();
    clearInterval(state.timer);
    const order = state.order;
    if (state.mode === "one" && !state.held && order && order.status === "reserved" && !state.busy && state.step !== "done") {
      // Give the units back at once rather than at hold expiry.
      // (`keepalive`: the request outlives a tab being closed.)
      call(`/api/orders/${order.id}/cancel`, {}, { keepalive: true }).catch(() => {});
      rememberHeld(null);
      state.order = null;
    }
  }

  // --- Live events -----------------------------------------------------------
  function onEvent(event) {
    if (!event || typeof event.type !== "string") return;
    if (event.type === "order.updated" && state.order && event.order_id === state.order.id) {
      // A paid order's event names it (#1001) and may carry the saved card.
      const { status, reference, saved_card: card } = event;
      applyOrder({ status, ...(reference ? { reference } : {}), ...(card ? { saved_card: card } : {}) });
    } else if (event.type === "stock.changed") {
      const product = products.get(event.product_id);
      const variant = product?.variants.find((v) => v.id === event.variant_id);
      if (variant) {
        variant.stock_available = event.stock_available;
        render();
      }
    } else if (event.type === "bag.updated") {
      withBag().then((bag) => bag.set(event.bag || null), () => {});
    } else if (event.type === "show.status") {
      showBadge();
    } else if (event.type === "snapshot") {
      // A (re)connect: the sales open now, as the room's cards show them.
      sales.clear();
      for (const card of event.sales || []) sales.set(card.product_id, card);
      if (state.product && state.mode === "one") render();
      showBadge();
    } else if (event.type === "sale.started") {
      sales.set(event.product_id, event);
      render();
    } else if (event.type === "sale.ended") {
      sales.delete(event.product_id);
      render();
    }
  }

  function returned() {
    // Back from a bank's page (iDEAL, Bancontact, 3-D Secure): the URL names
    // the order; the server asks Stripe and records what happened. Nothing
    // Stripe added to the URL is trusted.
    const params = new URLSearchParams(window.location.search);
    const id = params.get("order");
    if (!id) return;
    params.delete("order");
    for (const name of ["payment_intent", "payment_intent_client_secret", "redirect_status"]) params.delete(name);
    const rest = params.toString();
    history.replaceState(null, "", `${window.location.pathname}${rest ? `?${rest}` : ""}${window.location.hash}`);
    payOrder(id);
  }

  async function payOrder(id) {
    // The sheet on one of this buyer's orders, read fresh from the server:
    // after a bank's page, or a won auction's "Pay now" (game-auction.js).
    let answer;
    try {
      answer = await call(`/api/orders/${id}/refresh`, {});
    } catch {
      return;
    }
    if (answer.status === 404) return; // not this browser's order
    const order = answer.data.id ? answer.data : { id, status: "failed" };
    const line = (order.lines || [])[0];
    const product = line && productOf(line.variant_id);
    if (order.from_bag) {
      try {
        await withBag();
      } catch {
        return;
      }
      reset("bag");
      show();
    } else {
      if (!product) return;
      open({ productId: product.id, variantId: line.variant_id });
    }
    state.order = null;
    applyOrder(order);
    sheet.dataset.orderId = order.id;
    if (!answer.ok) status(answer.data.message || t.failed, "error");
    else if (order.status === "reserved") {
      await toPay();
      showHold();
      render();
    }
  }

  document.addEventListener("showfloor:buy", (e) => open(e.detail || {}));
  document.addEventListener("showfloor:pay-order", (e) => {
    e.preventDefault();
    if (e.detail?.orderId) payOrder(String(e.detail.orderId));
  });
  document.addEventListener("showfloor:bag-add", (e) => {
    const detail = e.detail || {};
    const report = (text, kind) => {
      if (kind === "ok") document.dispatchEvent(new CustomEvent("showfloor:bag-added", { detail }));
      detail.report?.(text, kind);
    };
    withBag().then((bag) => bag.addOne({ ...detail, report }), () => detail.report?.(t.network, "error"));
  });
  $("room-bag")?.addEventListener("click", () => {
    withBag().then((bag) => bag.open(), () => {
      $("room-bag-say").textContent = t.network;
    });
  });
  if (mayHaveBag()) withBag().then((bag) => bag.load()).catch(() => {});
  returned();
  document.addEventListener("showfloor:event", (e) => onEvent(e.detail));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    primary();
  });
  $("buy-close").addEventListener("click", () => sheet.close());
  sheet.addEventListener("keydown", (e) => {
    // A modal dialog lets Tab leave for the browser's own controls; keep it
    // cycling through the sheet instead.
    if (e.key !== "Tab" || !sheet.matches(":modal")) return;
    const stops = [...sheet.querySelectorAll("a[href], button, input, select, summary, iframe, [tabindex]")].filter(
      (node) => !node.disabled && node.tabIndex >= 0 && node.getClientRects().length,
    );
    const edge = e.shiftKey ? stops[0] : stops[stops.length - 1];
    if (edge && document.activeElement === edge) {
      (e.shiftKey ? stops[stops.length - 1] : stops[0]).focus();
      e.preventDefault();
    }
  });
  sheet.addEventListener("close", closed);
  sheet.addEventListener("click", (e) => {
    if (e.target === sheet) sheet.close(); // a tap on the backdrop
  });
  $("buy-variant").addEventListener("change", (e) => {
    state.variant = state.product.variants.find((v) => v.id === Number(e.target.value)) || state.variant;
    state.quote = null;
    render();
    requote();
  });
  const step = (delta) => {
    const qty = $("buy-qty");
    qty.value = String(Math.min(Number(qty.max) || 1, Math.max(1, quantity() + delta)));
    state.quote = null;
    render();
    requote();
  };
  $("buy-less").addEventListener("click", () => step(-1));
  $("buy-more").addEventListener("click", () => step(1));
  $("buy-qty").addEventListener("input", () => {
    state.quote = null;
    render();
    requote();
  });
  $("buy-addr-country").addEventListener("change", () => {
    state.quote = null;
    render();
    requote();
  });
  $("buy-address-change").addEventListener("click", () => {
    state.editAddress = true;
    render();
    addressInput("name").focus();
  });
  $("buy-share").addEventListener("change", render);
  return onEvent;
}
