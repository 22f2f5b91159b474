// Show page: the live room (chat, reactions, Q&A, pinned products, viewers).
// Owns the page's one websocket (docs/protocol.md). Every server event is also
// dispatched as `showfloor:event`; `window.showfloorRoom.send(obj)` sends.
// User text only ever reaches the page through textContent.

// Close codes after which reconnecting cannot help (docs/protocol.md): access
// code, banned, too many sockets, malformed flood, unknown show, frame too big
// (4400 and 4413 were 1008 and 1009, still honoured).
const NO_RETRY_CODES = new Set([4001, 4003, 4029, 4400, 4404, 4413, 1008, 1009]);
// The server lost the show's sequence: reconnect at once, for a fresh snapshot.
// (4503, a dependency down, is retried with the backoff like any other code.)
const CLOSE_RESYNC = 4000;
// Characters beyond which a chat message shows three lines and "more".
const LONG_MESSAGE = 160;

/** The embedded show's guest token (docs/embed.md), or "" on our own pages. */
export function embedToken() {
  return document.querySelector("meta[name=showfloor-embed]")?.content || "";
}

export function readStrings(id) {
  const node = document.getElementById(id);
  try {
    return node ? JSON.parse(node.textContent) : {};
  } catch {
    return {};
  }
}

export function fill(template, values) {
  return String(template || "").replace(/%\((\w+)\)s/g, (_, key) => String(values[key] ?? ""));
}

/** Create an element; `text` is set as textContent, never parsed. */
export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  if (text != null) node.textContent = String(text);
  return node;
}

let moneyFormats = null;

/**
 * Integer minor units as the page's language writes them, following the
 * Babel-made description in `#money-format` (the server's own formatting;
 * browsers' Intl lacks some of our languages). Intl only as a fallback.
 */
export function formatPrice(minor, currency) {
  moneyFormats ??= readStrings("money-format");
  const f = moneyFormats[currency];
  if (!f) {
    try {
      const format = new Intl.NumberFormat(document.documentElement.lang || undefined, { style: "currency", currency });
      return format.format(minor / 10 ** format.resolvedOptions().maximumFractionDigits);
    } catch {
      return `${minor} ${currency}`;
    }
  }
  const digits = String(Math.abs(minor)).padStart(f.digits + 1, "0");
  let whole = digits.slice(0, digits.length - f.digits);
  const groups = [];
  let size = f.grouping[0];
  while (size > 0 && whole.length > size) {
    groups.unshift(whole.slice(-size));
    whole = whole.slice(0, -size);
    size = f.grouping[1] || size;
  }
  groups.unshift(whole);
  const fraction = f.digits ? f.decimal + digits.slice(-f.digits) : "";
  return `${minor < 0 ? "-" : ""}${f.prefix}${groups.join(f.group)}${fraction}${f.suffix}`;
}

const pluralRules = new Intl.PluralRules(document.documentElement.lang || undefined);

/** A count phrase from `{one, other}` forms (`#room-plurals`) with `%(n)s` filled. */
export function counted(forms, n) {
  return fill(forms?.[pluralRules.select(n)] ?? forms?.other ?? "%(n)s", { n });
}

/**
 * The room socket: reconnects with `?since=<seq>` (backoff with jitter), skips
 * events it has already applied, reports its state.
 */
export class RoomSocket {
  constructor(path, { onEvents, onState }) {
    this.path = path;
    this.onEvents = onEvents;
    this.onState = onState;
    this.seq = null;
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
    this.refs = 0;
    this.resyncedAt = -Infinity;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams();
    if (this.seq != null) query.set("since", this.seq);
    // An embedded show's guest is its token, not a cookie (docs/embed.md).
    if (embedToken()) query.set("embed", embedToken());
    const search = query.toString();
    return `${scheme}://${location.host}${this.path}${search ? `?${search}` : ""}`;
  }

  open() {
    this.onState(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.attempt = 0;
      this.onState("live");
    });
    ws.addEventListener("message", (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      const events = this.accept(Array.isArray(data) ? data : [data]);
      if (events.length) this.onEvents(events);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      if (this.stopped || NO_RETRY_CODES.has(event.code)) {
        this.onState("closed", event.code);
        return;
      }
      this.attempt += 1;
      this.onState("reconnecting");
      let delay = Math.min(10000, 500 * 2 ** Math.min(this.attempt, 5)) * (0.5 + Math.random() / 2);
      if (event.code === CLOSE_RESYNC) {
        // Our seq belongs to the sequence the server lost: start from a
        // snapshot. At once, unless the last resync was moments ago (then a
        // server closing every connect with 4000 gets the backoff, not a loop).
        this.seq = null;
        if (performance.now() - this.resyncedAt > 10000) delay = 0;
        this.resyncedAt = performance.now();
      }
      setTimeout(() => this.open(), delay);
    });
  }

  /**
   * The events of one frame to apply, in order, each persisted event once.
   * A snapshot sets `seq`. `resumed` is followed in its frame by the backlog
   * (`since < seq <= resumed.seq`), which advances `seq` event by event like
   * live events do; `resumed.seq` is only the upper bound, reached once the
   * frame is through. An event at or below the highest applied `seq` is a
   * duplicate and skipped.
   */
  accept(frame) {
    const accepted = [];
    let resumedTo = null;
    for (const event of frame) {
      if (!event || typeof event.type !== "string") continue;
      if (event.type === "snapshot") {
        this.seq = event.seq;
        resumedTo = null;
      } else if (event.type === "resumed") {
        resumedTo = event.seq;
      } else if (typeof event.seq === "number") {
        if (this.seq != null && event.seq <= this.seq) continue; // applied already
        this.seq = event.seq;
      }
      accepted.push(event);
    }
    if (typeof resumedTo === "number" && (this.seq == null || resumedTo > this.seq)) this.seq = resumedTo;
    return accepted;
  }

  /** Open a fresh socket now (resuming from `seq`): the server reads the
   *  guest's session, just started by a request, only when a socket connects. */
  reconnect() {
    const old = this.ws;
    this.ws = null;
    old?.close(1000);
    this.attempt = 0;
    this.open();
  }

  send(obj) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const ref = obj.ref ?? `c${++this.refs}`;
    this.ws.send(JSON.stringify({ ...obj, ref }));
    return ref;
  }
}

export function announce(event) {
  document.dispatchEvent(new CustomEvent("showfloor:event", { detail: event }));
}

export function wireTabs(tabs) {
  const select = (tab) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
  };
  tabs.forEach((tab, index) => {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(index + step + tabs.length) % tabs.length];
      select(next);
      next.focus();
      event.preventDefault();
    });
  });
}

/** A list that follows new items unless the reader scrolled up. */
export class FollowingList {
  constructor(list, jump) {
    this.list = list;
    this.jump = jump;
    list.addEventListener("scroll", () => {
      if (this.atBottom()) this.jump.hidden = true;
    });
    jump?.addEventListener("click", () => this.toBottom());
  }

  atBottom() {
    const l = this.list;
    return l.scrollHeight - l.scrollTop - l.clientHeight < 40;
  }

  toBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    if (this.jump) this.jump.hidden = true;
  }

  append(node, { own = false } = {}) {
    const follow = own || this.atBottom();
    this.list.append(node);
    while (this.list.children.length > 200) this.list.firstElementChild.remove();
    if (follow) this.toBottom();
    else if (this.jump) this.jump.hidden = false;
  }
}

// --- The viewer page -------------------------------------------------------

function initViewerRoom(root) {
  const t = readStrings("room-i18n");
  const counts = readStrings("room-plurals");
  const $ = (id) => document.getElementById(id);
  const chat = new FollowingList($("room-chat"), $("room-jump"));
  const state = {
    me: null,
    pins: new Map(), // product id → card
    heldPins: [], // product.pinned events waiting for the HLS picture
    questions: new Map(),
    myVotes: new Set(),
    pendingChat: new Map(), // ref → text, restored if refused
    playback: { mode: "none", programTime: null },
    status: root.closest(".show")?.dataset.status || "",
    sales: new Map(), // product id → the server's sale card (sale.started, snapshot)
    ratings: {}, // product id → { average, count } (snapshot)
    clockOffset: 0, // server clock minus ours, from the sales' server_now
  };
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

  function setConnection(stateName, code) {
    const node = $("room-conn");
    node.dataset.state = stateName;
    node.textContent = t[stateName] || stateName;
    root.dataset.connection = stateName;
    if (code === 4003) showError(t.closed);
  }

  function showError(message) {
    const node = $("room-error");
    node.textContent = message || "";
    clearTimeout(showError.timer);
    if (message) showError.timer = setTimeout(() => (node.textContent = ""), 6000);
  }

  // Chat --------------------------------------------------------------------
  function chatItem(message) {
    const item = el("li", { className: "room-msg", id: `msg-${message.id}` });
    const author = el("span", { className: "room-author" }, message.author?.name ?? "");
    item.append(author);
    if (message.author?.role) item.append(el("span", { className: "room-role" }, t[message.author.role] || message.author.role));
    item.append(el("span", { className: "room-text" }, message.text));
    if (message.text.length > LONG_MESSAGE) {
      // Three lines, and "more" for the rest: one long message must not
      // fill the chat over the video.
      item.classList.add("room-long");
      const more = el("button", { type: "button", className: "room-more", "aria-expanded": "false" }, t.more);
      more.addEventListener("click", () => {
        const open = item.classList.toggle("room-open");
        more.setAttribute("aria-expanded", String(open));
        more.textContent = open ? t.less : t.more;
      });
      item.append(more);
    }
    if (message.hidden) {
      item.classList.add("room-msg-hidden");
      item.append(el("span", { className: "room-note" }, t.onlyYou));
    }
    return item;
  }

  function addMessage(message) {
    if (document.getElementById(`msg-${message.id}`)) return;
    const own = state.me && message.author?.id === state.me.id;
    chat.append(chatItem(message), { own });
  }

  // Pinned products ------------------------------------------------------------
  function stockText(variant) {
    if (variant.stock_available <= 0) return t.soldOut;
    if (variant.stock_available <= 10) return fill(t.left, { n: variant.stock_available });
    return t.inStock;
  }

  // Flash sales ----------------------------------------------------------------
  // The server sends each sale's prices already written out in every language
  // and says which options it applies to; the page picks its language and
  // counts down to the server's `ends_at`.
  const language = document.documentElement.lang || "en";
  const serverNow = () => Date.now() + state.clockOffset;
  let saleTimer = null;

  function written(texts, minor, currency) {
    return texts?.[language] ?? formatPrice(minor, currency);
  }

  /** The running sale of this option, with the option's list price, or null. */
  function saleOf(productId, variantId) {
    const sale = state.sales.get(productId);
    if (!sale || sale.ends_at <= serverNow()) return null;
    const variant = (sale.variants || []).find((v) => v.id === variantId);
    return variant?.on_sale ? { sale, variant } : null;
  }

  function salePrice(sale, variant, className) {
    // The struck list price is named for screen readers, which do not announce <s>.
    const node = el("span", { className });
    node.append(
      el("span", { className: "sr-only" }, `${t.salePrice}: `),
      el("span", { className: "sale-price" }, written(sale.price, sale.price_minor, sale.currency)),
      " ",
      el("span", { className: "sr-only" }, `${t.listPrice}: `),
      el("s", { className: "list-price" }, written(variant.list_price, variant.list_price_minor, sale.currency)),
    );
    return node;
  }

  function saleLeft(sale) {
    const s = Math.max(0, Math.ceil((sale.ends_at - serverNow()) / 1000));
    const time = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    return `${fill(t.sale, { time })} · ${fill(t.saleLimit, { n: sale.per_buyer_limit })}`;
  }

  function saleNote(sale, className) {
    return el("p", { className, dataset: { saleProduct: sale.product_id } }, saleLeft(sale));
  }

  function setSales(cards) {
    for (const card of cards) {
      if (typeof card.server_now === "number") state.clockOffset = card.server_now - Date.now();
      state.sales.set(card.product_id, card);
    }
  }

  /** The line-up below the video: the sale price over the struck list price. */
  function renderLineup() {
    for (const item of document.querySelectorAll(".lineup-item[data-product-id]")) {
      const productId = Number(item.dataset.productId);
      item.querySelectorAll(".lineup-sale, .lineup-sale-note").forEach((node) => node.remove());
      let onSale = null;
      for (const row of item.querySelectorAll("[data-variant-id]")) {
        const price = row.querySelector(".price");
        const found = saleOf(productId, Number(row.dataset.variantId));
        if (price) price.hidden = Boolean(found);
        if (found) {
          (price || row.lastChild).after(salePrice(found.sale, found.variant, "lineup-sale"));
          onSale = found.sale;
        }
      }
      if (onSale) item.querySelector("h3")?.after(saleNote(onSale, "lineup-sale-note"));
    }
  }

  function renderSales() {
    renderPins();
    renderLineup();
    clearInterval(saleTimer);
    saleTimer = state.sales.size ? setInterval(tickSales, 1000) : null;
  }

  function tickSales() {
    let ended = false;
    for (const [productId, sale] of state.sales) {
      if (sale.ends_at <= serverNow()) {
        state.sales.delete(productId);
        ended = true;
      }
    }
    if (ended) {
      renderSales();
      return;
    }
    for (const node of document.querySelectorAll("[data-sale-product]")) {
      const sale = state.sales.get(Number(node.dataset.saleProduct));
      if (sale) node.textContent = saleLeft(sale);
    }
  }

  // The bag ----------------------------------------------------------------------
  // "Add to bag" sends an intent; the sheet's module (checkout.js) puts one
  // more of the option in the bag and says how it went, next to the control.
  const bagNotes = new Map(); // note id → {text, kind}, kept across re-renders
  const noteTimers = new Map();

  function bagNote(id) {
    const note = bagNotes.get(id);
    return el("p", { className: "room-bag-note", id, dataset: { kind: note?.kind || "" } }, note?.text || "");
  }

  function addToBag(productId, variantId, noteId, button) {
    button.setAttribute("aria-busy", "true");
    const report = (text, kind) => {
      bagNotes.set(noteId, { text, kind });
      const node = document.getElementById(noteId);
      if (node) {
        node.textContent = text;
        node.dataset.kind = kind;
      }
      document.getElementById(noteId.replace("note", "add"))?.removeAttribute("aria-busy");
      button.removeAttribute("aria-busy");
      if (kind === "error") $("room-bag-say").textContent = text;
      clearTimeout(noteTimers.get(noteId));
      noteTimers.set(noteId, setTimeout(() => {
        bagNotes.delete(noteId);
        const current = document.getElementById(noteId);
        if (current) current.textContent = "";
      }, 6000));
    };
    document.dispatchEvent(new CustomEvent("showfloor:bag-add", { detail: { productId, variantId, report } }));
  }

  function renderPins() {
    const list = $("room-pins");
    // The cards are rebuilt on every stock change: keep the keyboard's place.
    const active = list.contains(document.activeElement) ? document.activeElement.id : null;
    list.replaceChildren();
    for (const card of state.pins.values()) {
      const item = el("li", { className: "room-pin", dataset: { product: card.id } });
      // A web address, or one on this site (an uploaded image's thumbnail).
      if (card.image_url && /^(https?:\/\/|\/(?!\/))/.test(card.image_url)) {
        item.append(el("img", { src: card.image_url, alt: "", loading: "lazy", width: 64, height: 64 }));
      }
      const body = el("div", { className: "room-pin-body" });
      body.append(el("p", { className: "room-pin-name" }, card.name));
      const r = state.ratings[card.id];
      if (r) {
        const p = el("p", { className: "room-stock room-rating" }, ` ★ ${r.average.toLocaleString(document.documentElement.lang, { minimumFractionDigits: 1 })} (${r.count})`);
        p.prepend(el("span", { className: "sr-only" }, t.rating));
        body.append(p);
      }
      const variants = card.variants || [];
      let chosen = variants.find((v) => v.id === card.chosen) || variants.find((v) => v.stock_available > 0) || variants[0];
      if (variants.length > 1) {
        const label = el("label", { className: "sr-only", for: `pin-variant-${card.id}` }, t.variant);
        const select = el("select", { id: `pin-variant-${card.id}` });
        for (const v of variants) {
          const found = saleOf(card.id, v.id);
          const price = found ? written(found.sale.price, found.sale.price_minor, found.sale.currency) : formatPrice(v.price_minor, v.currency);
          const option = el("option", { value: v.id }, `${v.name || v.id} · ${price}`);
          if (chosen && v.id === chosen.id) option.selected = true;
          select.append(option);
        }
        select.addEventListener("change", () => {
          card.chosen = Number(select.value);
          renderPins();
          document.getElementById(`pin-variant-${card.id}`)?.focus();
        });
        body.append(label, select);
      }
      if (chosen) {
        const found = saleOf(card.id, chosen.id);
        if (found) {
          const price = el("p", { className: "room-price room-price-sale" });
          price.append(salePrice(found.sale, found.variant, "room-sale-prices"));
          body.append(price, saleNote(found.sale, "room-sale"));
        } else {
          body.append(el("p", { className: "room-price" }, formatPrice(chosen.price_minor, chosen.currency)));
        }
        body.append(el("p", { className: "room-stock", dataset: { soldOut: chosen.stock_available <= 0 ? "1" : "0" } }, stockText(chosen)));
        const buy = el("button", { type: "button", className: "room-buy", disabled: chosen.stock_available <= 0 }, t.buy);
        buy.id = `pin-buy-${card.id}`;
        buy.setAttribute("aria-label", `${t.buy}: ${card.name}`);
        buy.addEventListener("click", () => {
          // Counted for the brand's funnel (docs/analytics.md); nothing comes back.
          window.showfloorRoom?.send({ type: "beacon.send", event: "buy_tap", product_id: card.id });
          document.dispatchEvent(new CustomEvent("showfloor:buy", { detail: { productId: card.id, variantId: chosen.id } }));
        });
        const noteId = `pin-note-${card.id}`;
        const add = el("button", {
          type: "button",
          className: "room-add secondary small",
          id: `pin-add-${card.id}`,
          disabled: chosen.stock_available <= 0,
          "aria-label": `${t.addToBag}: ${card.name}`,
          "aria-describedby": noteId,
        }, t.addToBag);
        add.addEventListener("click", () => addToBag(card.id, chosen.id, noteId, add));
        body.append(buy, add, bagNote(noteId));
      }
      item.append(body);
      list.append(item);
    }
    if (active && !list.contains(document.activeElement)) document.getElementById(active)?.focus();
  }

  /** The line-up's "Add to bag": shown while the show is live, off for a sold-out option. */
  function renderLineupBag() {
    const live = state.status === "live";
    for (const item of document.querySelectorAll(".lineup-item[data-product-id]")) {
      const controls = item.querySelector("[data-bag-controls]");
      if (!controls) continue;
      controls.hidden = !live;
      const select = controls.querySelector("select");
      const button = controls.querySelector(".lineup-add");
      const variantId = select ? select.value : button.dataset.variant;
      const stock = item.querySelector(`[data-variant-id="${variantId}"] .stock`);
      button.disabled = Number(stock?.dataset.stock ?? 1) <= 0;
    }
  }

  for (const item of document.querySelectorAll(".lineup-item[data-product-id]")) {
    const button = item.querySelector(".lineup-add");
    if (!button) continue;
    const productId = Number(item.dataset.productId);
    const select = item.querySelector(".lineup-variant");
    select?.addEventListener("change", renderLineupBag);
    button.addEventListener("click", () => {
      const variantId = Number(select ? select.value : button.dataset.variant);
      addToBag(productId, variantId, `lineup-note-${productId}`, button);
    });
  }

  function lineupStock(e) {
    const stock = document.querySelector(`.lineup-item [data-variant-id="${e.variant_id}"] .stock`);
    if (!stock) return;
    const was = Number(stock.dataset.stock);
    stock.dataset.stock = String(e.stock_available);
    // The server wrote the words; only crossing zero changes them here.
    if (e.stock_available <= 0 && was > 0) stock.textContent = t.soldOut;
    else if (e.stock_available > 0 && was <= 0) stock.textContent = t.inStock;
    renderLineupBag();
  }

  function pinNow(event) {
    state.pins.set(event.product.id, { ...event.product, at: event.at });
    renderPins();
  }

  function releaseHeldPins() {
    const { mode, programTime } = state.playback;
    const ready = [];
    state.heldPins = state.heldPins.filter((event) => {
      if (mode !== "hls" || (programTime != null && programTime >= event.at)) {
        ready.push(event);
        return false;
      }
      return true;
    });
    ready.forEach(pinNow);
  }

  document.addEventListener("showfloor:playback", (event) => {
    state.playback = { mode: event.detail?.mode || "none", programTime: event.detail?.programTime ?? null };
    releaseHeldPins();
  });

  // Questions -----------------------------------------------------------------
  function renderQuestions() {
    // The list is a live region: items are patched, not rebuilt, so a vote
    // reads out the one question it changed rather than the whole list.
    const list = $("room-questions");
    const before = new Map([...list.children].map((node) => [node.id, node]));
    const focused = list.contains(document.activeElement) ? document.activeElement.closest("li")?.id : null;
    const all = [...state.questions.values()];
    const answered = all.filter((q) => q.status === "answered").sort((a, b) => (b.answered_at || 0) - (a.answered_at || 0));
    const open = all.filter((q) => q.status === "open").sort((a, b) => b.votes - a.votes || a.id - b.id);
    const items = [...answered.slice(0, 1), ...open, ...answered.slice(1)].map((q) => {
      const key = JSON.stringify([q.status, q.votes, q.text, q.answer, state.myVotes.has(q.id), Boolean(state.me)]);
      const current = before.get(`q-${q.id}`);
      if (current && current.dataset.key === key) return current;
      const item = questionItem(q);
      item.dataset.key = key;
      return item;
    });
    const keep = new Set(items);
    for (const node of [...list.children]) if (!keep.has(node)) node.remove();
    items.forEach((item, index) => {
      if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
    });
    if (focused && !list.contains(document.activeElement)) document.getElementById(focused)?.focus();
    $("room-qa-count").textContent = open.length ? String(open.length) : "";
  }

  function questionItem(q) {
    const item = el("li", { className: `room-q room-q-${q.status}`, id: `q-${q.id}`, tabindex: -1 });
    const head = el("p", { className: "room-q-text" });
    head.append(el("span", { className: "room-author" }, q.author?.name ?? ""), el("span", {}, q.text));
    item.append(head);
    if (q.product_id && state.products?.has(q.product_id)) {
      item.append(el("p", { className: "room-q-about" }, `${t.about}: ${state.products.get(q.product_id)}`));
    }
    if (q.status === "answered") {
      item.append(el("span", { className: "room-badge room-answered" }, t.answered));
      if (q.answer) item.append(el("p", { className: "room-q-answer" }, q.answer));
    }
    const voted = state.myVotes.has(q.id);
    // The name is the visible text (WCAG 2.5.3): "▲ Vote 3", "votes" for screen readers.
    const vote = el("button", {
      type: "button",
      className: "room-vote",
      "aria-pressed": String(voted),
      disabled: voted || q.status !== "open" || !state.me,
    });
    vote.append(
      el("span", { "aria-hidden": "true" }, "▲"),
      ` ${voted ? t.voted : t.vote} `,
      el("span", { className: "room-vote-count" }, q.votes),
      el("span", { className: "sr-only" }, ` ${counted(counts.voteWord, q.votes)}`),
    );
    vote.addEventListener("click", () => {
      state.myVotes.add(q.id);
      room.send({ type: "question.vote", question_id: q.id });
      renderQuestions();
    });
    item.append(vote);
    return item;
  }

  // Reactions -------------------------------------------------------------------
  function floatHearts(count, emoji = "❤️") {
    if (reducedMotion.matches) return;
    const layer = $("room-hearts");
    for (let i = 0; i < Math.min(count, 12); i++) {
      if (layer.childElementCount > 40) break;
      const heart = el("span", { className: "room-float" }, emoji);
      heart.style.left = `${10 + Math.random() * 70}%`;
      heart.style.animationDelay = `${Math.random() * 400}ms`;
      heart.addEventListener("animationend", () => heart.remove());
      layer.append(heart);
    }
  }

  // Social proof: a purchase, with the city only when the buyer shared it. One
  // at a time, for a few seconds, so a flash sale does not flood the screen or
  // a screen reader.
  let proofTimer = null;
  function showPurchase(event, text) {
    const proof = $("room-proof");
    if (!proof || proofTimer) return;
    const values = { city: event.city, product: event.product_name };
    proof.textContent = text || fill(event.city ? t.boughtIn : t.bought, values);
    proof.hidden = false;
    proofTimer = setTimeout(() => {
      proof.hidden = true;
      proofTimer = null;
    }, 5000);
  }

  // Events ----------------------------------------------------------------------
  // The show's status from its event or from a snapshot (a socket that came
  // back after the show ended learns it only from the snapshot).
  function setStatus(status) {
    const was = state.status;
    state.status = status;
    const show = root.closest(".show");
    if (show && status) show.dataset.status = status;
    if (status === "ended" && was !== "ended") showError(t.ended);
  }

  function applySnapshot(s) {
    state.me = s.me;
    setStatus(s.show?.status);
    $("room-chat").replaceChildren();
    s.chat.forEach(addMessage);
    chat.toBottom();
    state.pins.clear();
    state.heldPins = [];
    state.ratings = s.ratings || {};
    for (const card of s.pinned) state.pins.set(card.id, card);
    state.sales.clear();
    setSales(s.sales || []);
    renderSales();
    state.questions = new Map(s.questions.map((q) => [q.id, q]));
    state.myVotes = new Set(s.my_votes);
    renderQuestions();
    $("room-viewers").textContent = counted(counts.viewers, s.viewers);
    renderLineupBag();
  }

  const handlers = {
    snapshot: applySnapshot,
    "chat.message": addMessage,
    "chat.deleted": (e) => document.getElementById(`msg-${e.message_id}`)?.remove(),
    "question.asked": (e) => {
      state.questions.set(e.id, e);
      renderQuestions();
    },
    "question.voted": (e) => {
      const q = state.questions.get(e.question_id);
      if (q) q.votes = e.votes;
      renderQuestions();
    },
    "question.answered": (e) => {
      const q = state.questions.get(e.question_id);
      if (q) Object.assign(q, { status: "answered", answer: e.answer, answered_at: e.answered_at });
      renderQuestions();
      document.getElementById(`q-${e.question_id}`)?.classList.add("room-q-highlight");
    },
    "question.dismissed": (e) => {
      state.questions.delete(e.question_id);
      renderQuestions();
    },
    "question.merged": (e) => {
      // A repeat of an open question: its asker's vote went to that one.
      const into = state.questions.get(e.into);
      if (into) into.votes = e.votes;
      if (state.me && e.question.author?.id === state.me.id) {
        state.myVotes.add(e.into);
        showError(t.merged);
      }
      renderQuestions();
    },
    "product.pinned": (e) => {
      state.heldPins.push(e);
      releaseHeldPins();
    },
    "product.unpinned": (e) => {
      state.heldPins = state.heldPins.filter((p) => p.product.id !== e.product_id);
      state.pins.delete(e.product_id);
      renderPins();
    },
    "stock.changed": (e) => {
      lineupStock(e);
      const card = state.pins.get(e.product_id);
      const variant = card?.variants.find((v) => v.id === e.variant_id);
      if (variant) {
        variant.stock_available = e.stock_available;
        renderPins();
      }
    },
    "sale.started": (e) => {
      setSales([e]);
      renderSales();
    },
    "sale.ended": (e) => {
      const sale = state.sales.get(e.product_id);
      if (sale && (e.sale_id == null || sale.sale_id === e.sale_id)) state.sales.delete(e.product_id);
      renderSales();
    },
    "viewers.count": (e) => ($("room-viewers").textContent = counted(counts.viewers, e.count)),
    "purchase.made": showPurchase,
    "review.featured": ({ review: r }) => {
      // A review the host features takes the proof line, over a purchase.
      clearTimeout(proofTimer);
      proofTimer = null;
      showPurchase({}, `${"★".repeat(r.rating)} ${r.text ? `“${r.text}” ` : ""}— ${r.author || t.buyer} · ${r.product.name}`);
    },
    "reactions.burst": (e) => {
      for (const [emoji, n] of Object.entries(e.counts)) floatHearts(n, emoji);
    },
    "show.status": (e) => {
      setStatus(e.status);
      renderLineupBag();
    },
    "show.slow_mode": (e) => showError(e.seconds ? fill(t.slowMode, { s: e.seconds }) : ""),
    ack: (e) => state.pendingChat.delete(e.ref),
    error: (e) => {
      const text = state.pendingChat.get(e.ref);
      if (text != null) {
        state.pendingChat.delete(e.ref);
        const input = $("room-chat-input");
        if (input && !input.value) input.value = text;
      }
      const retry = e.retry_after ? ` ${fill(t.retry, { s: Math.ceil(e.retry_after) })}` : "";
      showError(`${e.message}${retry}`);
    },
  };

  const room = new RoomSocket(root.dataset.wsPath, {
    onState: setConnection,
    onEvents(events) {
      for (const event of events) {
        handlers[event.type]?.(event);
        announce(event);
      }
    },
  });
  state.products = new Map(
    [...document.querySelectorAll("#room-ask-product option")].filter((o) => o.value).map((o) => [Number(o.value), o.textContent]),
  );

  wireTabs([$("room-tab-chat"), $("room-tab-qa")]);

  // No maxlength on the inputs: it would cut a long paste silently. Too long
  // is said, and the text stays to be shortened.
  const tooLong = (input, text) => text.length > input.dataset.max && !showError(fill(t.tooLong, { n: text.length, max: input.dataset.max }));

  $("room-chat-form")?.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("room-chat-input");
    const text = input.value.trim();
    if (!text || tooLong(input, text)) return;
    const ref = room.send({ type: "chat.send", text });
    if (ref) {
      state.pendingChat.set(ref, text);
      input.value = "";
    }
  });

  $("room-ask-form")?.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("room-ask-input");
    const text = input.value.trim();
    if (!text || tooLong(input, text)) return;
    const product = $("room-ask-product").value;
    if (room.send({ type: "question.ask", text, ...(product ? { product_id: Number(product) } : {}) })) input.value = "";
  });

  const react = (emoji) => {
    room.send({ type: "reaction.send", emoji });
    floatHearts(1, emoji);
  };
  $("room-heart").addEventListener("click", () => react("❤️"));
  root.querySelector(".room-reaction-set")?.addEventListener("click", (event) => {
    const button = event.target.closest("[data-emoji]");
    if (button) react(button.dataset.emoji);
  });

  window.showfloorRoom = { send: (obj) => room.send(obj), reconnect: () => room.reconnect() };
  room.open();
}

// The page's status badge follows the show's status as it changes.
document.addEventListener("showfloor:event", (event) => {
  const message = event.detail || {};
  const status = message.type === "show.status" ? message.status : message.show?.status;
  if (status !== "live" && status !== "ended") return;
  for (const badge of document.querySelectorAll("[data-show-status]")) {
    badge.className = `badge badge-${status}`;
    badge.textContent = badge.dataset[status === "live" ? "labelLive" : "labelEnded"];
  }
});

const root = document.getElementById("room");
if (root) initViewerRoom(root);
