// Show page: imports the buy sheet (checkout.js, checkout.css) on first need
// (docs/reviews.md, "Weight of the live page"); keeps the room's events and
// the taps it missed until then, and hands them over.
import { readStrings } from "./room.js";

const config = readStrings("checkout-data");
const $ = (id) => document.getElementById(id);
const stop = new AbortController();
const on = (type, fn, node = document) => node.addEventListener(type, fn, { signal: stop.signal });
const kept = new Map(); // the latest event per sale, option, order…, in order
const adds = [];
let buy = null; // the last Buy only: one sheet
let payOrder = null; // a won auction's order to pay (game-auction.js)
let bag = false;
let loading = null;

const fetched = (rel, href) =>
  new Promise((done) => {
    const link = Object.assign(document.createElement("link"), { rel, href, onload: done, onerror: done });
    document.head.append(link);
  });
const send = (type, detail) => document.dispatchEvent(new CustomEvent(type, { detail }));

function load() {
  // Fetched side by side, run once both are here: the sheet never opens unstyled.
  const css = document.querySelector("[data-checkout-css]").dataset.checkoutCss;
  loading ||= Promise.all([fetched("stylesheet", css), fetched("modulepreload", new URL("checkout.js", import.meta.url))])
    .then(() => import("./checkout.js"))
    .then(
      ({ replay }) => {
        stop.abort();
        replay([...kept.values()]);
        if (buy) send("showfloor:buy", buy);
        if (payOrder) send("showfloor:pay-order", payOrder);
        for (const detail of adds.splice(0)) send("showfloor:bag-add", detail);
        if (bag) $("room-bag").click();
      },
      () => {
        loading = null; // the next tap tries again
        const network = readStrings("checkout-i18n").network;
        for (const detail of adds.splice(0)) detail.report?.(network, "error");
        if (bag) $("room-bag-say").textContent = network;
        buy = null;
        bag = false;
      },
    );
}

function keep(key, event) {
  kept.delete(key);
  kept.set(key, event);
}

function heard({ detail: e }) {
  const type = e?.type;
  if (type === "snapshot") {
    for (const key of kept.keys()) if (key.startsWith("sale ")) kept.delete(key); // its sales replace them
    keep(type, e);
  } else if (type === "sale.started" || type === "sale.ended") keep(`sale ${e.product_id}`, e);
  else if (type === "stock.changed") keep(`stock ${e.variant_id}`, e);
  else if (type === "show.status" || type === "bag.updated") keep(type, e);
  else if (type === "order.updated") keep(`order ${e.order_id}`, e);
  // Sent to this viewer only: they have a bag or an order.
  if (type === "bag.updated" || type === "order.updated") load();
  // An empty bag's button is there while the show is live (checkout.js's showBadge).
  if ((type === "snapshot" || type === "show.status") && $("room-bag-wrap")) {
    $("room-bag-wrap").hidden = document.querySelector(".show")?.dataset.status !== "live";
  }
}

function mayHaveBag() {
  try {
    return localStorage.getItem(`showfloor:bag:${config.show}`) === "1";
  } catch {
    return false;
  }
}

if ($("buy-sheet") && config.show) {
  on("showfloor:event", heard);
  on("showfloor:buy", (e) => {
    buy = e.detail || {};
    load();
  });
  on("showfloor:bag-add", (e) => {
    adds.push(e.detail || {});
    load();
  });
  on("showfloor:pay-order", (e) => {
    e.preventDefault(); // handled: the sheet opens once loaded
    payOrder = e.detail || {};
    load();
  });
  const button = $("room-bag");
  if (button) {
    on("click", () => {
      bag = true;
      load();
    }, button);
  }
  // A finger or the focus on a button starts the import before the tap.
  const intent = (e) => e.target.closest?.(".room-buy, .room-add, .lineup-add, #room-bag") && load();
  on("pointerdown", intent);
  on("focusin", intent);
  if (new URLSearchParams(location.search).has("order") || mayHaveBag()) load();
}
