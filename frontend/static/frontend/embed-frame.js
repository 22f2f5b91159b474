// The embedded show's side of the postMessage API (docs/embed.md). Loaded
// only by /embed/<slug>/. It turns the page's own DOM events (room.js's
// `showfloor:event`, checkout.js's `showfloor:bag-added` and
// `showfloor:purchased`) into messages to the page that framed us, and takes
// `play` and `mute` from it. It talks to one origin only, the one the server
// found in the brand's allowed list (`parent`): messages go to it by name and
// are read only from it and from our parent window.

import { embedToken, readStrings } from "./room.js";

const config = readStrings("embed-config");
const parent = config.parent || "";
const framed = window.parent !== window;
const video = document.querySelector(".player-video");
const sent = new Set();

function post(type, detail = {}, once = "") {
  if (!framed || !parent) return;
  if (once) {
    if (sent.has(once)) return;
    sent.add(once);
  }
  window.parent.postMessage({ source: "showfloor", type, show: config.show, ...detail }, parent);
}

function card(product) {
  return { id: product.id, name: product.name, image_url: product.image_url || "" };
}

function status(value) {
  if (value === "live") post("live", {}, "live");
  else if (value === "ended") post("ended", {}, "ended");
}

document.addEventListener("showfloor:event", (e) => {
  const event = e.detail || {};
  if (event.type === "snapshot") {
    status(event.show?.status);
    for (const product of event.pinned || []) post("product.pinned", { product: card(product) });
  } else if (event.type === "show.status") {
    status(event.status);
  } else if (event.type === "product.pinned" && event.product) {
    post("product.pinned", { product: card(event.product) });
  }
});

document.addEventListener("showfloor:bag-added", (e) => {
  const { productId, variantId } = e.detail || {};
  post("bag.added", { product_id: Number(productId) || null, variant_id: Number(variantId) || null });
});

// The sheet's "See your order" opens the order page in a tab of its own,
// where no cookie knows this guest: it gets the order's signed link instead.
const orderLinks = new Map();

async function signedLink(orderId) {
  if (!orderLinks.has(orderId)) {
    const response = await fetch(`/api/embed/orders/${encodeURIComponent(orderId)}/link`, {
      headers: { Accept: "application/json", "X-Showfloor-Embed": embedToken() },
    });
    if (!response.ok) return "";
    orderLinks.set(orderId, (await response.json()).url || "");
  }
  return orderLinks.get(orderId);
}

document.addEventListener("showfloor:purchased", (e) => {
  const order = e.detail || {};
  const link = document.getElementById("buy-order-link");
  if (link && order.id) {
    signedLink(order.id).then((url) => {
      if (url) link.href = url;
    }, () => {});
  }
  // Once per order: the pay answer and the socket's event both say "paid".
  post(
    "purchased",
    { order_id: order.id, reference: order.reference || "", total_minor: order.total_minor ?? null, currency: order.currency || "" },
    `purchased:${order.id}`,
  );
});

video?.addEventListener("volumechange", () => {
  if (video.muted !== lastMuted) post("muted", { muted: (lastMuted = video.muted) });
});
let lastMuted = video ? video.muted : true;

window.addEventListener("message", (event) => {
  if (!framed || !parent || event.source !== window.parent || event.origin !== parent) return;
  const data = event.data;
  if (!data || data.source !== "showfloor-host" || !video) return;
  if (data.type === "play") {
    video.play().catch(() => {});
  } else if (data.type === "mute") {
    video.muted = data.muted !== false;
  }
});

post("ready", { status: config.status });
