// Show page: the giveaway (docs/giveaways.md), loaded by games-loader.js once
// the room has one. The server decides who may enter, when entries close and
// who wins; this module draws the card it sends, sends intents
// (`giveaway.enter`, `giveaway.claim`) and counts down on the server's clock
// (the events' `server_now`, refined by `clock.ping` when the room answers it).
// The commitment is shown while entries are open; after the draw the seed and
// the sorted list are shown so anybody can recompute the winner.
// User text (names, prizes) only reaches the page through textContent.
import { counted, el, fill, readStrings } from "./room.js";

const $ = (id) => document.getElementById(id);
const root = $("room-giveaway");
const t = readStrings("giveaway-i18n");

const state = {
  card: null, // the server's card, kept up to date by the events
  me: null, // the snapshot's {id, name}
  myToken: null,
  list: null, // the published [{token, name}] once drawn
  won: null, // this viewer's giveaway.won
  hidden: new Set(), // ids the viewer hid
  pending: new Map(), // ref → "enter" | "claim"
  offset: null, // server clock - Date.now()
  samples: [],
  tick: null,
};

const serverNow = () => Date.now() + (state.offset ?? 0);

function learnClock(serverMs) {
  if (typeof serverMs !== "number" || state.samples.length) return;
  state.offset = serverMs - Date.now();
}

function left(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}` : `${m}:${String(s % 60).padStart(2, "0")}`;
}

function rules(card) {
  const who =
    card.eligibility === "followers"
      ? fill(t.followers, { brand: root.dataset.brand || "" })
      : card.eligibility === "buyers"
        ? t.buyers
        : t.everyone;
  // A keyword giveaway says how to enter in its own line, in bold.
  return card.entry === "keyword" ? `${who} ${t.once}` : `${who} ${t.button} ${t.once}`;
}

function lastDraw(card) {
  return card.draws?.length ? card.draws[card.draws.length - 1] : null;
}

function render() {
  const card = state.card;
  if (!card || state.hidden.has(card.id)) {
    root.hidden = true;
    return;
  }
  root.hidden = false;
  const open = card.status === "open";
  root.dataset.status = card.status;
  $("giveaway-prize").textContent = card.prize;
  $("giveaway-rules").textContent = rules(card);
  $("giveaway-count").textContent = counted(t.entries, card.entry_count ?? 0);
  $("giveaway-hide").hidden = open;
  // Entering.
  const enter = $("giveaway-enter");
  const keyword = $("giveaway-keyword");
  // A keyword giveaway offers the button too, for whoever cannot type.
  enter.hidden = !open || Boolean(state.myToken);
  enter.textContent = !state.me ? t.login : card.entry === "keyword" ? t.noTyping : enter.dataset.label || enter.textContent;
  enter.classList.toggle("secondary", card.entry === "keyword");
  keyword.hidden = !open || card.entry !== "keyword" || Boolean(state.myToken);
  keyword.textContent = card.entry === "keyword" ? fill(t.keyword, { keyword: card.keyword }) : "";
  if (state.myToken && !$("giveaway-say").dataset.error) $("giveaway-say").textContent = fill(t.entered, { token: state.myToken });
  // The commitment, and the link to check the draw.
  $("giveaway-commitment").textContent = fill(t.commitment, { hash: `${card.seed_hash.slice(0, 8)}…` });
  $("giveaway-commitment").title = card.seed_hash;
  $("giveaway-verify").href = card.verify_url;
  // The result.
  const draw = lastDraw(card);
  let result = "";
  if (card.status === "cancelled") result = t.cancelled;
  else if (!open && !draw) result = t.nobody;
  else if (card.status === "unclaimed") result = t.noneLeft;
  else if (draw) {
    result = fill(draw.round > 1 ? t.winnerRound : t.winner, { name: draw.winner, round: draw.round });
    if (draw.claimed_at) result += ` ${fill(t.claimed, { name: draw.winner })}`;
  }
  const resultNode = $("giveaway-result");
  if (resultNode.textContent !== result) resultNode.textContent = result;
  // The winner's own box.
  const mine = draw && state.myToken && draw.token === state.myToken && card.status !== "cancelled";
  $("giveaway-won").hidden = !mine;
  if (mine) $("giveaway-claim").hidden = Boolean(draw.claimed_at) || draw.claim_by <= serverNow();
  // Verify details once the seed is out.
  const details = $("giveaway-details");
  details.hidden = !card.seed;
  if (card.seed) {
    $("giveaway-seed").textContent = card.seed;
    $("giveaway-hash").textContent = card.seed_hash;
    const list = $("giveaway-list");
    const rows = state.list || [];
    if (list.childElementCount !== rows.length || list.dataset.id !== String(card.id)) {
      list.dataset.id = String(card.id);
      list.replaceChildren(
        ...rows.map((row) => {
          const item = el("li", { dataset: { token: row.token } });
          item.append(el("code", {}, row.token), ` ${row.name}`);
          return item;
        }),
      );
    }
    $("giveaway-list-long").hidden = Boolean(state.list) || !card.entry_count;
  }
  tickNow();
}

function tickNow() {
  const card = state.card;
  if (!card) return;
  const now = serverNow();
  const open = card.status === "open";
  const clock = $("giveaway-left");
  clock.parentElement.hidden = !open;
  if (open) clock.textContent = card.closes_at > now ? left(card.closes_at - now) : t.closing;
  const draw = lastDraw(card);
  const waiting = card.status === "drawn" && draw && !draw.claimed_at;
  const mine = waiting && state.myToken && draw.token === state.myToken;
  if (mine) {
    $("giveaway-won-text").textContent = draw.claim_by > now ? fill(t.youWon, { left: left(draw.claim_by - now) }) : "";
    $("giveaway-claim").hidden = draw.claim_by <= now;
  } else if (draw?.claimed_at && state.myToken === draw.token) {
    $("giveaway-won-text").textContent = t.youClaimed;
  }
  const status = $("giveaway-status-line");
  if (status) status.textContent = waiting && !mine && draw.claim_by > now ? fill(t.waiting, { name: draw.winner, left: left(draw.claim_by - now) }) : "";
  const running = open || waiting;
  if (running && !state.tick) state.tick = setInterval(tickNow, 1000);
  if (!running && state.tick) {
    clearInterval(state.tick);
    state.tick = null;
  }
}

function say(text, error = false) {
  const node = $("giveaway-say");
  node.textContent = text;
  if (error) node.dataset.error = "1";
  else delete node.dataset.error;
}

function take(card, extra = {}) {
  if (!card) return;
  if (state.card?.id !== card.id) {
    state.myToken = extra.my_token ?? null;
    state.list = null;
    state.won = null;
    say("");
  }
  learnClock(card.server_now);
  state.card = card;
  if ("my_token" in extra && extra.my_token) state.myToken = extra.my_token;
  if (Array.isArray(extra.entries)) state.list = extra.entries;
  render();
}

function apply(event) {
  const type = event.type;
  if (type === "snapshot") {
    state.me = event.me || null;
    const card = event.giveaway;
    if (!card) {
      state.card = null;
      render();
      return;
    }
    take(card, { my_token: card.my_token, entries: card.entries });
  } else if (type === "giveaway.started") {
    take(event.giveaway);
  } else if (type === "giveaway.entries") {
    learnClock(event.server_now);
    if (state.card?.id === event.giveaway_id && state.card.status === "open") {
      state.card.entry_count = Math.max(event.count, state.card.entry_count || 0);
      $("giveaway-count").textContent = counted(t.entries, state.card.entry_count);
    }
  } else if (type === "giveaway.entered") {
    if (state.card?.id === event.giveaway_id) {
      state.myToken = event.token;
      say(fill(t.entered, { token: event.token }));
      render();
    }
  } else if (type === "giveaway.refused") {
    if (state.card?.id === event.giveaway_id) say(event.message, true);
  } else if (type === "giveaway.drawn") {
    take(event.giveaway, { entries: event.entries });
  } else if (type === "giveaway.redrawn" || type === "giveaway.claimed" || type === "giveaway.cancelled") {
    take(event.giveaway);
  } else if (type === "giveaway.won") {
    state.won = event;
    learnClock(event.server_now);
    if (state.card?.id === event.giveaway_id) {
      state.myToken = event.token;
      render();
      // Said once (a status line), without taking the focus from the chat.
      say(fill(t.youWon, { left: left(event.claim_by - serverNow()) }));
    }
  } else if (type === "clock.pong" && typeof event.t === "number") {
    const now = Date.now();
    state.samples.push({ rtt: now - event.t, offset: event.server_now - (event.t + now) / 2 });
    state.offset = state.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a)).offset;
  } else if ((type === "error" || type === "ack") && state.pending.has(event.ref)) {
    state.pending.delete(event.ref);
    if (type === "error") {
      say(event.message, true);
      if (event.code === "login_required" && root.dataset.login) {
        const link = el("a", { href: root.dataset.login }, t.login);
        $("giveaway-say").append(" ", link);
      }
    }
  }
}

function send(kind, what) {
  if (!state.card) return;
  const ref = window.showfloorRoom?.send({ type: kind, giveaway_id: state.card.id });
  if (ref) state.pending.set(ref, what);
}

function styles() {
  const href = root.dataset.css;
  if (!href || document.querySelector(`link[href="${CSS.escape(href)}"]`)) return;
  document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href }));
}

export default function start(eventsSoFar) {
  if (!root) return;
  styles();
  const enter = $("giveaway-enter");
  enter.dataset.label = enter.textContent;
  // A line the room reads out while a winner has time to claim.
  $("giveaway-result").after(el("p", { id: "giveaway-status-line", className: "giveaway-status-line" }));
  enter.addEventListener("click", () => {
    if (!state.me && root.dataset.login) {
      window.location.assign(root.dataset.login);
      return;
    }
    send("giveaway.enter", "enter");
  });
  $("giveaway-claim").addEventListener("click", () => send("giveaway.claim", "claim"));
  $("giveaway-hide").addEventListener("click", () => {
    if (state.card) state.hidden.add(state.card.id);
    render();
  });
  for (const event of eventsSoFar) apply(event);
  document.addEventListener("showfloor:event", (event) => apply(event.detail || {}));
  for (let i = 0; i < 3; i += 1) setTimeout(() => window.showfloorRoom?.send({ type: "clock.ping", t: Date.now() }), i * 400);
}
