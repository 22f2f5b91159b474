// The studio's poll controls (docs/polls.md): ask the room a question with
// two to four answers, watch the counts come in, close it. Sends on the
// studio's socket (studio-room.js's `window.showfloorRoom`); reads the room's
// events (`showfloor:event`). The server checks the role and every rule; the
// checks here only save a round trip.
import { fill, readStrings } from "./room.js";
import { resultList, strings, votesText } from "./game-poll.js";

const root = document.getElementById("studio-poll");
if (root) {
  const $ = (id) => document.getElementById(id);
  const t = { ...strings(), ...readStrings("studio-poll-i18n") };
  const form = $("studio-poll-form");
  const rows = [...root.querySelectorAll(".studio-poll-row")];
  const state = { card: null, ended: root.closest("[data-status]")?.dataset.status === "ended", pending: null, focusAfter: null };
  const send = (obj) => window.showfloorRoom?.send(obj) ?? null;
  const showError = (text) => ($("studio-poll-error").textContent = text || "");

  const visibleRows = () => rows.filter((row) => !row.hidden);

  function syncRows() {
    const shown = visibleRows();
    for (const row of rows) row.querySelector(".studio-poll-remove").disabled = shown.length <= 2 || state.ended;
    $("studio-poll-add").disabled = shown.length >= rows.length || state.ended;
  }

  $("studio-poll-add").addEventListener("click", () => {
    const next = rows.find((row) => row.hidden);
    if (!next) return;
    next.hidden = false;
    syncRows();
    next.querySelector("input").focus();
  });

  root.addEventListener("click", (event) => {
    const button = event.target.closest(".studio-poll-remove");
    if (!button || visibleRows().length <= 2) return;
    const row = button.closest(".studio-poll-row");
    const values = visibleRows().filter((r) => r !== row).map((r) => r.querySelector("input").value);
    // The answers keep their order; the last row is the one that goes.
    const keep = visibleRows().slice(0, -1);
    keep.forEach((r, i) => (r.querySelector("input").value = values[i] ?? ""));
    const last = visibleRows().at(-1);
    last.querySelector("input").value = "";
    last.hidden = true;
    syncRows();
    (keep[Math.min(rows.indexOf(row), keep.length - 1)] || keep[0]).querySelector("input").focus();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("studio-poll-question").value.trim();
    const options = visibleRows().map((row) => row.querySelector("input").value.trim()).filter(Boolean);
    if (!question) return showError(t.needQuestion);
    if (options.length < 2) return showError(t.needAnswers);
    for (const input of [$("studio-poll-question"), ...visibleRows().map((row) => row.querySelector("input"))]) {
      const n = input.value.trim().length;
      if (n > Number(input.dataset.max)) {
        input.focus();
        return showError(fill(t.tooLong, { n, max: input.dataset.max }));
      }
    }
    const ref = send({ type: "poll.open", question, options });
    if (!ref) return showError(t.offline);
    state.pending = { ref, kind: "open" };
    $("studio-poll-ask").setAttribute("aria-busy", "true");
    showError("");
  });

  $("studio-poll-show").addEventListener("click", () => {
    if (!state.card) return;
    const ref = send({ type: "poll.show_results", poll_id: state.card.id });
    if (!ref) return showError(t.offline);
    state.pending = { ref, kind: "show" };
  });

  $("studio-poll-close").addEventListener("click", () => {
    if (!state.card) return;
    const ref = send({ type: "poll.close", poll_id: state.card.id });
    if (!ref) return showError(t.offline);
    state.pending = { ref, kind: "close" };
    $("studio-poll-close").setAttribute("aria-busy", "true");
  });

  function render() {
    const card = state.card;
    const open = card?.status === "open";
    $("studio-poll-ended").hidden = !state.ended;
    form.hidden = open;
    for (const control of form.querySelectorAll("input, button")) control.disabled = state.ended;
    syncRows();
    $("studio-poll-live").hidden = !card;
    $("studio-poll-close").hidden = !open;
    // A poll left open when the show ended can still be closed.
    $("studio-poll-close").disabled = false;
    $("studio-poll-show").hidden = !open || Boolean(card?.results_shown);
    $("studio-poll-show").disabled = state.ended;
    $("studio-poll-shown").hidden = !open || !card?.results_shown;
    if (!card) return;
    $("studio-poll-state").textContent = open ? t.open : t.closedAt;
    $("studio-poll-q").textContent = card.question;
    $("studio-poll-results").replaceChildren(resultList(t, card));
    $("studio-poll-total").textContent = votesText(t, card.total);
    if (state.focusAfter) {
      const target = $(state.focusAfter);
      if (target && !target.closest("[hidden]")) {
        const active = document.activeElement;
        if (!active || active === document.body || root.contains(active)) target.focus();
        state.focusAfter = null;
      }
    }
  }

  function clearForm() {
    $("studio-poll-question").value = "";
    rows.forEach((row, i) => {
      row.querySelector("input").value = "";
      row.hidden = i >= 2;
    });
  }

  const handlers = {
    snapshot: (e) => {
      state.card = e.poll ? { ...e.poll } : null;
      if (e.show?.status) state.ended = e.show.status === "ended";
    },
    "show.status": (e) => (state.ended = e.status === "ended"),
    "poll.opened": (e) => {
      state.card = { ...e.poll };
      clearForm();
    },
    "poll.results": (e) => {
      const card = state.card;
      if (!card || card.id !== e.poll_id || card.status !== "open" || e.total < card.total) return false;
      card.counts = e.counts.slice(0, card.options.length);
      card.total = e.total;
    },
    "poll.closed": (e) => {
      const card = state.card;
      if (!card || card.id !== e.poll_id) return false;
      Object.assign(card, { status: "closed", counts: e.counts, total: e.total, winners: e.winners, results_shown: true });
    },
    "poll.results_shown": (e) => {
      const card = state.card;
      if (!card || card.id !== e.poll_id) return false;
      card.results_shown = true;
      if (e.total >= card.total) Object.assign(card, { counts: e.counts, total: e.total });
    },
    ack: (e) => {
      if (!state.pending || e.ref !== state.pending.ref) return false;
      // The part the button was in goes away: the focus moves to what follows.
      state.focusAfter = { open: "studio-poll-close", show: "studio-poll-close", close: "studio-poll-question" }[state.pending.kind];
      state.pending = null;
      $("studio-poll-ask").removeAttribute("aria-busy");
      $("studio-poll-close").removeAttribute("aria-busy");
      showError("");
    },
    error: (e) => {
      if (!state.pending || e.ref !== state.pending.ref) return false;
      state.pending = null;
      $("studio-poll-ask").removeAttribute("aria-busy");
      $("studio-poll-close").removeAttribute("aria-busy");
      showError(e.message);
    },
  };

  document.addEventListener("showfloor:event", (event) => {
    const handler = handlers[event.detail?.type];
    if (handler && handler(event.detail) !== false) render();
  });
  render();
}
