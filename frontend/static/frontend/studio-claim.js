// Studio: comment to buy (docs/comment-to-buy.md). The host sets or clears
// each line-up product's keyword (`claim.keyword` on the studio's socket,
// studio-room.js) and sees the claims as they come (`claim.made`). What a
// keyword is, and who may set it, the server decides.
import { el, fill, readStrings } from "./room.js";

const root = document.getElementById("studio-claim");
const t = readStrings("studio-claim-i18n");
const pending = new Map(); // ref → form

function say(form, text, kind = "") {
  const node = form.querySelector(".studio-claim-say");
  node.textContent = text;
  node.dataset.kind = kind;
}

function send(form, keyword) {
  const ref = window.showfloorRoom?.send({ type: "claim.keyword", product_id: Number(form.dataset.product), keyword });
  if (ref) pending.set(ref, { form, keyword });
}

function formOf(productId) {
  return root.querySelector(`.studio-claim-form[data-product="${productId}"]`);
}

function showKeyword(productId, keyword) {
  const form = formOf(productId);
  if (!form) return;
  const input = form.querySelector("input[name=keyword]");
  // A co-host's change shows, unless this host is typing in that field.
  if (document.activeElement !== input) input.value = keyword;
}

function claimLine(e) {
  const list = document.getElementById("studio-claims");
  const product = e.variant ? `${e.product} (${e.variant})` : e.product;
  const time = new Date(e.at).toLocaleTimeString(document.documentElement.lang || undefined, { hour: "2-digit", minute: "2-digit" });
  const item = el("li", { className: "studio-msg" });
  item.append(el("span", { className: "room-note" }, time), el("span", { className: "room-text" }, fill(t.made, { name: e.name, product })));
  list.prepend(item);
  while (list.children.length > 100) list.lastElementChild.remove();
  document.getElementById("studio-claims-none").hidden = true;
}

const handlers = {
  snapshot(s) {
    const keywords = new Map((s.claim?.keywords || []).map((k) => [k.product_id, k.keyword]));
    for (const form of root.querySelectorAll(".studio-claim-form")) showKeyword(form.dataset.product, keywords.get(Number(form.dataset.product)) || "");
  },
  "claim.keyword": (e) => showKeyword(e.product_id, e.keyword),
  "claim.made": claimLine,
  ack(e) {
    const sent = pending.get(e.ref);
    if (!sent) return;
    pending.delete(e.ref);
    say(sent.form, sent.keyword ? fill(t.saved, { keyword: sent.keyword.trim() }) : t.cleared, "ok");
  },
  error(e) {
    const sent = pending.get(e.ref);
    if (!sent) return;
    pending.delete(e.ref);
    say(sent.form, e.message, "error");
    sent.form.querySelector("input[name=keyword]").focus();
  },
};

if (root) {
  document.addEventListener("showfloor:event", (e) => handlers[e.detail?.type]?.(e.detail));
  root.addEventListener("submit", (e) => {
    const form = e.target.closest(".studio-claim-form");
    if (!form) return;
    e.preventDefault();
    send(form, form.querySelector("input[name=keyword]").value.trim());
  });
  root.addEventListener("click", (e) => {
    const button = e.target.closest(".studio-claim-clear");
    if (!button) return;
    const form = button.closest(".studio-claim-form");
    form.querySelector("input[name=keyword]").value = "";
    send(form, "");
  });
}
