// Replay page (docs/replay.md): loaded only there, never on the live page.
// player.js plays the recording; this module keeps the host's trim, seeks to
// a chapter, shows the product cards pinned at the playback position and
// replays the chat and the answered questions in step with the video. A card's
// Buy opens checkout.js's sheet (`showfloor:buy`), which sells at list price.
import { el, fill, formatPrice, readStrings } from "./room.js";

const data = readStrings("replay-data");
const t = readStrings("replay-i18n");
const products = new Map((readStrings("checkout-data").products || []).map((p) => [p.id, p]));
const video = document.querySelector("[data-player] video");
const $ = (id) => document.getElementById(id);

const start = Number(data.start) || 0;
const end = data.end == null ? null : Number(data.end);
const chat = data.chat || [];
const answers = data.answers || [];
const polls = data.polls || [];
const state = { cards: "", chatShown: 0, answersShown: 0, pollsShown: 0, chapter: -1 };
// The polls' results list comes with their module, fetched only for a replay that has polls.
let pollKit = null;

/** The playback position in seconds of the replay (after the trim). */
function position() {
  return Math.max(0, video.currentTime - start);
}

// --- The trim --------------------------------------------------------------
function keepInTrim() {
  if (video.currentTime < start - 0.25) video.currentTime = start;
  if (end != null && video.currentTime >= end) {
    video.pause();
    if (video.currentTime > end + 0.25) video.currentTime = end;
  }
}

// --- Chapters ----------------------------------------------------------------
const chapterButtons = [...document.querySelectorAll(".replay-chapter")];
for (const button of chapterButtons) {
  button.addEventListener("click", () => {
    video.currentTime = start + Number(button.dataset.at);
    video.play().catch(() => {});
  });
}

function markChapter(now) {
  let current = -1;
  chapterButtons.forEach((button, i) => {
    if (Number(button.dataset.at) <= now) current = i;
  });
  if (current === state.chapter) return;
  state.chapter = current;
  chapterButtons.forEach((button, i) => {
    if (i === current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  });
}

// --- The product cards ---------------------------------------------------------
function stockText(variant) {
  if (variant.stock_available <= 0) return t.soldOut;
  if (variant.stock_available <= 5) return fill(t.left, { n: variant.stock_available });
  return t.inStock;
}

function card(product) {
  const item = el("li", { className: "room-pin", dataset: { product: product.id } });
  if (product.image_url && /^(https?:\/\/|\/(?!\/))/.test(product.image_url)) {
    item.append(el("img", { src: product.image_url, alt: "", loading: "lazy", width: 64, height: 64 }));
  }
  const body = el("div", { className: "room-pin-body" });
  body.append(el("p", { className: "room-pin-name" }, product.name));
  const rating = (data.ratings || {})[product.id];
  if (rating) {
    const line = el("p", { className: "room-stock room-rating" }, `★ ${rating.average.toLocaleString(document.documentElement.lang, { minimumFractionDigits: 1 })} (${rating.count})`);
    line.prepend(el("span", { className: "sr-only" }, `${t.rating} `));
    body.append(line);
  }
  const variants = product.variants || [];
  let chosen = variants.find((v) => v.stock_available > 0) || variants[0];
  const price = el("p", { className: "room-price" });
  const stock = el("p", { className: "room-stock" });
  const buy = el("button", { type: "button", className: "room-buy", id: `replay-buy-${product.id}` }, t.buy);
  buy.setAttribute("aria-label", `${t.buy}: ${product.name}`);
  const noteId = `replay-note-${product.id}`;
  const add = el("button", {
    type: "button",
    className: "room-add secondary small",
    id: `replay-add-${product.id}`,
    "aria-label": `${t.addToBag}: ${product.name}`,
    "aria-describedby": noteId,
  }, t.addToBag);
  const note = el("p", { className: "room-bag-note", id: noteId });
  function show() {
    price.textContent = chosen ? formatPrice(chosen.price_minor, chosen.currency) : "";
    stock.textContent = chosen ? stockText(chosen) : "";
    stock.dataset.soldOut = chosen && chosen.stock_available > 0 ? "0" : "1";
    buy.disabled = add.disabled = !chosen || chosen.stock_available <= 0;
  }
  if (variants.length > 1) {
    const id = `replay-variant-${product.id}`;
    const select = el("select", { id });
    for (const v of variants) {
      const option = el("option", { value: v.id }, `${v.name || v.id} · ${formatPrice(v.price_minor, v.currency)}`);
      option.selected = v === chosen;
      select.append(option);
    }
    select.addEventListener("change", () => {
      chosen = variants.find((v) => v.id === Number(select.value)) || chosen;
      show();
    });
    body.append(el("label", { className: "sr-only", for: id }, t.option), select);
  }
  buy.addEventListener("click", () => {
    document.dispatchEvent(new CustomEvent("showfloor:buy", { detail: { productId: product.id, variantId: chosen.id } }));
  });
  add.addEventListener("click", () => {
    add.setAttribute("aria-busy", "true");
    // checkout.js holds it in the bag (bag.js) and reports back here.
    const report = (text, kind) => {
      add.removeAttribute("aria-busy");
      note.textContent = text || "";
      note.dataset.kind = kind;
      if (kind === "error") $("room-bag-say").textContent = text;
    };
    document.dispatchEvent(new CustomEvent("showfloor:bag-add", { detail: { productId: product.id, variantId: chosen.id, report } }));
  });
  show();
  body.append(price, stock, buy, add, note);
  item.append(body);
  return item;
}

function renderCards(now) {
  const ids = [];
  for (const span of data.spans || []) {
    const up = span.from <= now && (span.to == null || now < span.to);
    if (up && products.has(span.product_id) && !ids.includes(span.product_id)) ids.push(span.product_id);
  }
  const key = ids.join(",");
  if (key === state.cards) return; // unchanged: keep the keyboard's place
  state.cards = key;
  const list = $("replay-cards");
  const focused = list.contains(document.activeElement) ? document.activeElement.id : null;
  list.replaceChildren(...ids.map((id) => card(products.get(id))));
  $("replay-cards-empty").hidden = ids.length > 0;
  if (focused) document.getElementById(focused)?.focus();
}

// --- Chat and answers ------------------------------------------------------------
function chatItem(message) {
  const item = el("li", { className: "room-msg", dataset: { at: message.at } });
  item.append(el("span", { className: "room-author" }, message.author), " ", el("span", { className: "room-text" }, message.text));
  return item;
}

function answerItem(question) {
  const item = el("li", { className: "room-question replay-answer", dataset: { at: question.at } });
  item.append(
    el("p", { className: "room-q-text" }, `${question.author}: ${question.text}`),
    el("p", { className: "room-answer" }, `${t.answer}: ${question.answer}`),
  );
  return item;
}

/** A poll of the show, from the moment it was asked, with its final result. */
function pollItem(poll) {
  const { resultList, strings, votesText } = pollKit;
  const t = strings();
  const item = el("li", { className: "poll", dataset: { at: poll.at, poll: poll.id } });
  item.append(
    el("p", { className: "poll-kicker" }, t.poll),
    el("h3", { className: "poll-question" }, poll.question),
    resultList(t, poll),
    el("p", { className: "poll-total" }, votesText(t, poll.total)),
  );
  return item;
}

/** Show the items of `all` written up to `now`: append going forward, rebuild after a seek back. */
function follow(list, all, shown, now, make) {
  let upTo = 0;
  while (upTo < all.length && all[upTo].at <= now) upTo += 1;
  if (upTo === shown) return shown;
  if (upTo < shown) list.replaceChildren(...all.slice(0, upTo).map(make));
  else list.append(...all.slice(shown, upTo).map(make));
  list.scrollTop = list.scrollHeight;
  return upTo;
}

function update() {
  keepInTrim();
  const now = position();
  markChapter(now);
  renderCards(now);
  state.chatShown = follow($("replay-chat"), chat, state.chatShown, now, chatItem);
  state.answersShown = follow($("replay-answers"), answers, state.answersShown, now, answerItem);
  if (pollKit) {
    state.pollsShown = follow($("replay-polls"), polls, state.pollsShown, now, pollItem);
    $("replay-polls-empty").hidden = state.pollsShown > 0;
  }
}

if (polls.length && $("replay-polls")) {
  import("./game-poll.js").then((kit) => {
    pollKit = kit;
    kit.loadStyles();
    if (video) update();
  });
}

// A paid order took its units: the cards say so (the page has no room socket).
document.addEventListener("showfloor:purchased", (event) => {
  for (const line of event.detail?.lines || []) {
    for (const product of products.values()) {
      const variant = product.variants.find((v) => v.id === line.variant_id);
      if (variant) variant.stock_available = Math.max(0, variant.stock_available - line.quantity);
    }
  }
  state.cards = "";
  renderCards(position());
});

if (video) {
  video.addEventListener("loadedmetadata", () => {
    if (start && video.currentTime < start) video.currentTime = start;
    update();
  });
  for (const name of ["timeupdate", "seeked", "seeking", "play"]) video.addEventListener(name, update);
  update();
}
