// Live polls in the room (docs/polls.md), loaded by games-loader.js once the
// room has a poll. The viewer picks one answer (native radios: arrows move,
// Space picks) and votes; then, and once the poll closes, the results show as
// bars with each answer's share and count written out (not colour alone).
// The server decides everything: what is open, who voted, the counts.
// Also exports the results list for the studio (studio-poll.js) and the replay.
import { el, fill, readStrings } from "./room.js";

const lang = document.documentElement.lang || undefined;
const numbers = new Intl.NumberFormat(lang);
const percents = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 });
const plurals = new Intl.PluralRules(lang);
// A closed poll stays on screen this long (as in the server's snapshot).
const CLOSED_KEPT_MS = 120_000;
// The screen reader's summary of changing results: at most this often.
const SAY_EVERY_MS = 5000;

let styles = null;
/** The polls' stylesheet, fetched once, next to this module. */
export function loadStyles() {
  styles ||= new Promise((done) => {
    const href = new URL("game-poll.css", import.meta.url).href;
    if (document.querySelector(`link[href="${href}"]`)) return done();
    const link = Object.assign(document.createElement("link"), { rel: "stylesheet", href, onload: done, onerror: done });
    document.head.append(link);
  });
  return styles;
}

export function strings() {
  return { ...readStrings("poll-i18n"), votes: readStrings("poll-plurals") };
}

export function votesText(t, n) {
  const forms = t.votes || {};
  return fill(forms[plurals.select(n)] ?? forms.other ?? "%(n)s", { n: numbers.format(n) });
}

function share(n, total) {
  return percents.format(total ? n / total : 0);
}

/** "Red 40%, Blue 60%" for a screen reader. */
export function resultsSentence(t, card) {
  return card.options.map((option, i) => fill(t.result, { option, percent: share(card.counts[i] || 0, card.total) })).join(", ");
}

/**
 * The results as a list: per answer its text, "your answer" / "winner" in
 * words, the share and the count, and a bar (decoration, hidden from screen
 * readers: the words say it all).
 */
export function resultList(t, card, { mine = null } = {}) {
  const list = el("ol", { className: "poll-results" });
  const winners = new Set(card.winners || []);
  card.options.forEach((option, i) => {
    const n = card.counts[i] || 0;
    const item = el("li", { className: "poll-result", dataset: { option: i } });
    if (winners.has(i)) item.dataset.winner = "1";
    if (mine === i) item.dataset.mine = "1";
    const head = el("div", { className: "poll-result-head" });
    const name = el("span", { className: "poll-option" }, option);
    if (mine === i) name.append(" ", el("span", { className: "poll-tag" }, `(${t.yours})`));
    if (winners.has(i)) name.append(" ", el("span", { className: "poll-tag poll-tag-win" }, `(${t.winner})`));
    head.append(name, el("span", { className: "poll-figure" }, fill(t.share, { percent: share(n, card.total), votes: votesText(t, n) })));
    const bar = el("div", { className: "poll-bar", "aria-hidden": "true" });
    const fillBar = el("span", { className: "poll-fill" });
    fillBar.style.width = `${card.total ? (100 * n) / card.total : 0}%`;
    bar.append(fillBar);
    item.append(head, bar);
    list.append(item);
  });
  return list;
}

/** The room's poll: one card at a time, drawn from the server's events. */
export default function start(eventsSoFar = []) {
  const root = document.getElementById("room-poll");
  if (!root) return;
  loadStyles();
  const t = strings();
  const member = document.getElementById("room")?.dataset.member === "1";
  const state = { card: null, mine: null, pending: null, error: "", lastSaid: 0, sayTimer: null, hideTimer: null, asked: null };
  // The live region stays in place across renders (a new one is not read).
  const say = el("p", { className: "sr-only", id: "room-poll-say", "aria-live": "polite" });
  const view = el("div", { className: "poll-view" });
  root.replaceChildren(view, say);
  const send = (obj) => window.showfloorRoom?.send(obj) ?? null;

  function announce(text) {
    say.textContent = text;
    state.lastSaid = Date.now();
  }

  /** Results change often: tell a screen reader at most every few seconds. */
  function sayResultsSoon() {
    if (state.sayTimer || !state.card) return;
    const wait = Math.max(0, state.lastSaid + SAY_EVERY_MS - Date.now());
    state.sayTimer = setTimeout(() => {
      state.sayTimer = null;
      const card = state.card;
      if (card && card.status === "open") announce(fill(t.summary, { results: resultsSentence(t, card) }));
    }, wait);
  }

  function form(card) {
    const id = `room-poll-form-${card.id}`;
    const fields = el("fieldset", { className: "poll-choices" });
    fields.append(el("legend", { className: "sr-only" }, t.choose));
    card.options.forEach((option, i) => {
      const input = el("input", { type: "radio", name: `poll-${card.id}`, value: i, id: `${id}-${i}` });
      const label = el("label", { className: "poll-choice", for: `${id}-${i}` });
      label.append(input, " ", el("span", {}, option));
      fields.append(label);
    });
    const node = el("form", { className: "poll-form", id, "aria-labelledby": "room-poll-q", novalidate: true });
    const button = el("button", { type: "submit", className: "poll-vote" }, t.vote);
    if (state.pending) button.setAttribute("aria-busy", "true");
    node.append(fields, button);
    node.addEventListener("submit", (event) => {
      event.preventDefault();
      const picked = node.querySelector("input:checked");
      if (!picked) {
        state.error = t.pickFirst;
        render();
        root.querySelector("input[type=radio]")?.focus();
        return;
      }
      const option = Number(picked.value);
      const ref = send({ type: "poll.vote", poll_id: card.id, option });
      state.error = ref ? "" : t.offline;
      state.pending = ref ? { ref, option, pollId: card.id } : null;
      render();
    });
    return node;
  }

  function render() {
    const card = state.card;
    root.hidden = !card;
    if (!card) return view.replaceChildren();
    const closed = card.status === "closed";
    root.dataset.status = card.status;
    const focusWasInside = root.contains(document.activeElement);
    const checked = root.querySelector("input:checked")?.value;
    const box = el("section", { className: "poll", "aria-labelledby": "room-poll-q" });
    box.append(
      el("p", { className: "poll-kicker" }, closed ? t.closed : t.poll),
      el("h3", { className: "poll-question", id: "room-poll-q", tabindex: "-1" }, card.question),
    );
    // A visitor with neither an account nor a session has no voter key:
    // they see the results and how to take part.
    const join = document.getElementById("room-poll-join");
    const voting = !closed && state.mine == null && !join;
    if (!closed && state.mine == null && join) box.append(join.content.cloneNode(true));
    if (voting) {
      box.append(form(card));
      if (checked != null) {
        const input = box.querySelector(`input[value="${checked}"]`);
        if (input) input.checked = true;
      }
      if (card.results_shown) {
        // The host showed the results to everybody: those still to answer too.
        box.append(resultList(t, card), el("p", { className: "poll-total" }, votesText(t, card.total)));
      }
    } else {
      box.append(resultList(t, card, { mine: state.mine }));
      box.append(el("p", { className: "poll-total" }, votesText(t, card.total)));
    }
    box.append(el("p", { className: "poll-error", role: "alert" }, state.error));
    view.replaceChildren(box);
    if (voting && focusWasInside && checked != null) box.querySelector("input:checked")?.focus();
    else if (focusWasInside) box.querySelector(".poll-question").focus();
  }

  function setCard(card, mine) {
    clearTimeout(state.hideTimer);
    state.card = card ? { ...card, counts: [...(card.counts || [])] } : null;
    state.mine = mine ?? null;
    state.error = "";
    state.pending = null;
    if (card?.status === "closed") hideLater(card);
    const guest = !member && !document.getElementById("room-poll-join");
    if (card && card.status === "open" && state.mine == null && guest && state.asked !== card.id) {
      // A guest's snapshot is everybody's: ask which answer this session gave.
      state.asked = card.id;
      send({ type: "poll.mine", poll_id: card.id });
    }
  }

  function hideLater(card) {
    const left = (card.closed_at || Date.now()) + CLOSED_KEPT_MS - Date.now();
    state.hideTimer = setTimeout(() => {
      if (state.card?.id === card.id && state.card.status === "closed") {
        state.card = null;
        render();
      }
    }, Math.max(1000, left));
  }

  const handlers = {
    snapshot: (e) => {
      setCard(e.poll || null, e.poll?.my_option);
      render();
    },
    "poll.opened": (e) => {
      setCard(e.poll, null);
      render();
      announce(fill(t.newPoll, { question: e.poll.question }));
    },
    "poll.results": (e) => {
      const card = state.card;
      // Counts only grow: an older frame (another process's) is ignored.
      if (!card || card.id !== e.poll_id || card.status !== "open" || e.total < card.total) return;
      card.counts = e.counts.slice(0, card.options.length);
      card.total = e.total;
      if (state.mine != null || card.results_shown || document.getElementById("room-poll-join")) {
        render();
        sayResultsSoon();
      }
    },
    "poll.results_shown": (e) => {
      const card = state.card;
      if (!card || card.id !== e.poll_id) return;
      card.results_shown = true;
      if (e.total >= card.total) Object.assign(card, { counts: e.counts, total: e.total });
      render();
      announce(fill(t.summary, { results: resultsSentence(t, card) }));
    },
    "poll.voted": (e) => {
      if (!state.card || state.card.id !== e.poll_id) return;
      state.mine = e.option;
      state.pending = null;
      render();
    },
    "poll.closed": (e) => {
      const card = state.card;
      if (!card || card.id !== e.poll_id) return;
      Object.assign(card, { status: "closed", counts: e.counts, total: e.total, winners: e.winners, closed_at: e.closed_at, results_shown: true });
      state.pending = null;
      state.error = "";
      hideLater(card);
      render();
      announce(fill(t.closedSummary, { results: resultsSentence(t, card) }));
    },
    ack: (e) => {
      if (!state.pending || e.ref !== state.pending.ref) return;
      if (state.card?.id === state.pending.pollId) state.mine = state.pending.option;
      state.pending = null;
      render();
      announce(t.thanks);
    },
    error: (e) => {
      if (!state.pending || e.ref !== state.pending.ref) return;
      const pollId = state.pending.pollId;
      state.pending = null;
      state.error = e.message || "";
      if (e.code === "already_voted") {
        state.error = "";
        send({ type: "poll.mine", poll_id: pollId });
      }
      render();
    },
  };

  const apply = (event) => handlers[event?.type]?.(event);
  for (const event of eventsSoFar) apply(event);
  document.addEventListener("showfloor:event", (event) => apply(event.detail));
  render();
}
