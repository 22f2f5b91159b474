// Studio: the giveaway's controls (docs/giveaways.md). Sends giveaway.start,
// .draw, .redraw and .cancel on the studio's socket (studio-room.js) and shows
// the card the server sends: entry count, time left, the commitment, the
// winner and their claim. The server checks the role, the line-up and every
// rule; the controls go off once the show has ended.
import { counted, fill, readStrings } from "./room.js";

const $ = (id) => document.getElementById(id);
const root = $("studio-giveaway");
const t = readStrings("studio-giveaway-i18n");
const state = { card: null, offset: 0, pending: new Map(), tick: null, fresh: false, ended: null };

const serverNow = () => Date.now() + state.offset;

function left(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}` : `${m}:${String(s % 60).padStart(2, "0")}`;
}

function ended() {
  return state.ended ?? document.querySelector(".studio")?.dataset.status === "ended";
}

function lastDraw(card) {
  return card?.draws?.length ? card.draws[card.draws.length - 1] : null;
}

function render() {
  const card = state.card;
  const off = ended();
  $("studio-giveaway-ended").hidden = !off;
  for (const node of root.querySelectorAll("button, input, select")) node.disabled = off;
  const showLive = Boolean(card) && !state.fresh;
  $("studio-giveaway-live").hidden = !showLive;
  $("studio-giveaway-form").hidden = off || showLive;
  if (!showLive) return;
  $("sg-live-prize").textContent = card.prize;
  $("sg-live-status").textContent = t[card.status] || card.status;
  $("sg-live-count").textContent = counted(t.entries, card.entry_count ?? 0);
  $("sg-live-hash").textContent = fill(t.commitment, { hash: `${card.seed_hash.slice(0, 12)}…` });
  $("sg-live-hash").title = card.seed_hash;
  $("sg-live-verify").href = card.verify_url;
  const draw = lastDraw(card);
  let result = "";
  if (card.status === "unclaimed") result = t.noneLeft;
  else if (card.status !== "open" && card.status !== "cancelled" && !draw) result = t.nobody;
  else if (draw) {
    result = fill(draw.round > 1 ? t.winnerRound : t.winner, { name: draw.winner, round: draw.round });
    if (draw.claimed_at) result += ` ${fill(t.hasClaimed, { name: draw.winner })}`;
  }
  if ($("sg-live-result").textContent !== result) $("sg-live-result").textContent = result;
  $("sg-draw").hidden = card.status !== "open";
  $("sg-cancel").hidden = !["open", "drawn"].includes(card.status) || Boolean(draw?.claimed_at);
  $("sg-new").hidden = card.status === "open" || off;
  tickNow();
}

function tickNow() {
  const card = state.card;
  if (!card) return;
  const now = serverNow();
  const draw = lastDraw(card);
  let text = "";
  const waiting = card.status === "drawn" && draw && !draw.claimed_at;
  if (card.status === "open") text = fill(t.closesIn, { left: left(card.closes_at - now) });
  else if (waiting) text = draw.claim_by > now ? fill(t.claimIn, { left: left(draw.claim_by - now) }) : t.claimOver;
  $("sg-live-left").textContent = text;
  $("sg-redraw").hidden = !(waiting && draw.claim_by <= now) || ended();
  const running = card.status === "open" || waiting;
  if (running && !state.tick) state.tick = setInterval(tickNow, 1000);
  if (!running && state.tick) {
    clearInterval(state.tick);
    state.tick = null;
  }
}

function take(card) {
  if (!card) return;
  if (typeof card.server_now === "number") state.offset = card.server_now - Date.now();
  state.card = card;
  state.fresh = false;
  render();
}

function apply(event) {
  const type = event.type;
  if (type === "snapshot") {
    state.ended = event.show?.status === "ended";
    state.card = event.giveaway || null;
    if (state.card) take(state.card);
    else render();
  } else if (type?.startsWith("giveaway.") && event.giveaway) {
    take(event.giveaway);
  } else if (type === "giveaway.entries" && state.card?.id === event.giveaway_id) {
    state.card.entry_count = Math.max(event.count, state.card.entry_count || 0);
    $("sg-live-count").textContent = counted(t.entries, state.card.entry_count);
  } else if (type === "show.status") {
    state.ended = event.status === "ended";
    render();
  } else if ((type === "error" || type === "ack") && state.pending.has(event.ref)) {
    state.pending.delete(event.ref);
    $("studio-giveaway-error").textContent = type === "error" ? event.message : "";
  }
}

function send(message) {
  $("studio-giveaway-error").textContent = "";
  const ref = window.showfloorRoom?.send(message);
  if (ref) state.pending.set(ref, message.type);
}

function act(kind) {
  if (state.card) send({ type: kind, giveaway_id: state.card.id });
}

if (root) {
  const keywordField = () => {
    $("sg-keyword-field").hidden = $("sg-entry").value !== "keyword";
  };
  $("sg-entry").addEventListener("change", keywordField);
  keywordField();
  $("studio-giveaway-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const product = $("sg-product").value;
    const message = {
      type: "giveaway.start",
      prize: $("sg-prize").value.trim(),
      eligibility: $("sg-eligibility").value,
      entry: $("sg-entry").value,
      duration_seconds: Number($("sg-duration").value),
      claim_seconds: Number($("sg-claim").value),
    };
    if (product) message.product_id = Number(product);
    if (message.entry === "keyword") message.keyword = $("sg-keyword").value.trim();
    send(message);
  });
  $("sg-draw").addEventListener("click", () => act("giveaway.draw"));
  $("sg-redraw").addEventListener("click", () => act("giveaway.redraw"));
  $("sg-cancel").addEventListener("click", () => {
    if (window.confirm(t.cancelConfirm)) act("giveaway.cancel");
  });
  $("sg-new").addEventListener("click", () => {
    state.fresh = true;
    render();
    $("sg-product").focus();
  });
  document.addEventListener("showfloor:event", (event) => apply(event.detail || {}));
  render();
}
