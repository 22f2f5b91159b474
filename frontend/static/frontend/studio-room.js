// Studio: the room seen by hosts and moderators — chat with a moderation menu,
// the Q&A queue (open by votes with merged repeats, answered, dismissed),
// pin/unpin of the line-up, slow mode, viewers; all of it stops at the end.
// Owns the studio page's websocket; dispatches `showfloor:event` like room.js.
import { FollowingList, RoomSocket, announce, counted, el, fill, readStrings, wireTabs } from "./room.js";

function initStudioRoom(root) {
  const t = readStrings("studio-room-i18n");
  const counts = { ...readStrings("room-plurals"), ...readStrings("studio-plurals") };
  const $ = (id) => document.getElementById(id);
  const chat = new FollowingList($("studio-chat"), $("studio-jump"));
  const questions = new Map();
  const pinned = new Set();
  // Once the show has ended nothing in the studio acts on the room any more.
  let ended = root.closest("[data-status]")?.dataset.status === "ended";

  function showError(message) {
    $("studio-error").textContent = message || "";
  }

  function renderPins() {
    for (const item of document.querySelectorAll("#studio-lineup .studio-lineup-item")) {
      const id = Number(item.dataset.product);
      const isPinned = pinned.has(id);
      item.dataset.pinned = isPinned ? "1" : "0";
      const button = item.querySelector("button");
      button.textContent = isPinned ? t.unpin : t.pin;
      button.setAttribute("aria-pressed", String(isPinned));
    }
  }

  // The queue's tabs: open (by votes, with what was merged into each),
  // answered (newest first), dismissed (newest first).
  const lists = { open: $("studio-questions"), answered: $("studio-questions-answered"), dismissed: $("studio-questions-dismissed") };
  const order = {
    open: (a, b) => b.votes - a.votes || a.id - b.id,
    answered: (a, b) => (b.answered_at || 0) - (a.answered_at || 0) || b.id - a.id,
    dismissed: (a, b) => b.id - a.id,
  };

  function mergedInto(id) {
    return [...questions.values()].filter((q) => q.status === "merged" && q.merged_into === id).sort((a, b) => a.id - b.id);
  }

  function renderQuestions() {
    for (const [status, list] of Object.entries(lists)) {
      const shown = [...questions.values()].filter((q) => q.status === status).sort(order[status]);
      patchList(list, shown);
      const badge = document.querySelector(`[data-q-count="${status}"]`);
      if (badge) badge.textContent = String(shown.length);
    }
  }

  function patchList(list, shown) {
    // Patched in place, not rebuilt: the list is a live region, and a vote
    // must not wipe the answer a host is typing or take the keyboard focus.
    const before = new Map([...list.children].map((node) => [node.id, node]));
    const active = list.contains(document.activeElement) ? document.activeElement : null;
    const controls = (item) => [...item.querySelectorAll("input, button, summary")];
    const focus = active && [active.closest("li[id^='sq-']").id, controls(active.closest("li[id^='sq-']")).indexOf(active)];
    const items = shown.map((q) => {
      const merged = q.status === "open" ? mergedInto(q.id) : [];
      const sig = `${q.status}|${q.votes}|${merged.map((m) => m.id).join(",")}|${ended}`;
      const current = before.get(`sq-${q.id}`);
      if (current && current.dataset.sig === sig) return current;
      const item = questionItem(q, merged, sig);
      const typed = current?.querySelector("input")?.value;
      if (typed && item.querySelector("input")) item.querySelector("input").value = typed;
      if (current?.querySelector("details")?.open && item.querySelector("details")) item.querySelector("details").open = true;
      return item;
    });
    const keep = new Set(items);
    for (const node of [...list.children]) if (!keep.has(node)) node.remove();
    items.forEach((item, index) => {
      if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
    });
    if (focus && !active.isConnected) {
      const item = document.getElementById(focus[0]);
      if (item) controls(item)[focus[1]]?.focus();
    }
  }

  function questionItem(q, merged, sig) {
    const item = el("li", { className: `room-q${q.status === "answered" ? " room-q-answered" : ""}`, id: `sq-${q.id}`, dataset: { votes: q.votes, sig } });
    const head = el("p", { className: "room-q-text" });
    head.append(el("span", { className: "room-badge" }, counted(counts.votes, q.votes)), el("span", { className: "room-author" }, q.author?.name ?? ""), el("span", {}, q.text));
    item.append(head);
    if (q.status === "answered" && q.answer) item.append(el("p", { className: "room-q-answer" }, q.answer));
    if (merged.length) item.append(mergedList(merged));
    if (q.status !== "open") return item;
    const label = el("label", { className: "sr-only", for: `sq-answer-${q.id}` }, t.answerPrompt);
    const input = el("input", { id: `sq-answer-${q.id}`, maxlength: 500, placeholder: t.answerPrompt, disabled: ended });
    const actions = el("div", { className: "studio-actions" });
    const answer = el("button", { type: "button", disabled: ended }, t.answer);
    answer.addEventListener("click", () => room.send({ type: "question.answer", question_id: q.id, text: input.value.trim() }));
    const dismiss = el("button", { type: "button", disabled: ended }, t.dismiss);
    dismiss.addEventListener("click", () => room.send({ type: "question.dismiss", question_id: q.id }));
    const suggest = el("button", { type: "button", disabled: ended }, t.suggest);
    const note = el("p", { className: "room-note", id: `sq-note-${q.id}`, role: "status" });
    suggest.addEventListener("click", () => suggestAnswer(q, input, note));
    actions.append(answer, suggest, dismiss);
    item.append(label, input, actions, note);
    return item;
  }

  async function suggestAnswer(q, input, note) {
    // A draft from the product's facts or an earlier answer, put in the
    // answer field for the host to check and edit: never posted by itself.
    const slug = root.closest("[data-show]")?.dataset.show;
    try {
      const response = await fetch(`/api/shows/${slug}/questions/${q.id}/suggestion`, { credentials: "same-origin" });
      const data = await response.json();
      if (!response.ok) throw new Error(data.message);
      if (!data.suggestion) {
        note.textContent = data.message;
        return;
      }
      input.value = data.suggestion.text;
      const source = data.suggestion.source === "earlier_answer" ? t.suggestedEarlier : t.suggestedFacts;
      note.textContent = fill(source, { product: data.suggestion.product.name });
      input.focus();
    } catch (error) {
      note.textContent = error.message || t.suggestFailed;
    }
  }

  function mergedList(merged) {
    // The questions merged into this one, each of which can be split off.
    const details = el("details", { className: "studio-merged" });
    details.append(el("summary", {}, counted(counts.similar, merged.length)));
    const list = el("ul", {});
    for (const m of merged) {
      const row = el("li", {});
      row.append(el("span", { className: "room-author" }, m.author?.name ?? ""), el("span", {}, m.text));
      const split = el("button", { type: "button", className: "small", disabled: ended }, t.split);
      split.setAttribute("aria-label", fill(t.splitLabel, { name: m.author?.name ?? "", text: m.text }));
      split.addEventListener("click", () => room.send({ type: "question.split", question_id: m.id }));
      row.append(split);
      list.append(row);
    }
    details.append(list);
    return details;
  }

  // One menu for every chat line's moderation: a compact "⋯" button per line
  // opens it; arrows move, Escape closes and gives the focus back.
  const menu = el("ul", { className: "studio-popup", role: "menu", id: "studio-mod-menu", hidden: true });
  document.body.append(menu);
  let menuButton = null;

  function closeMenu(refocus) {
    if (menu.hidden) return;
    menu.hidden = true;
    menuButton?.setAttribute("aria-expanded", "false");
    if (refocus) menuButton?.focus();
    menuButton = null;
  }

  function openMenu(button, message) {
    closeMenu(false);
    const author = message.author || {};
    const actions = [
      [t.delete, { type: "chat.delete", message_id: message.id }],
      [t.timeout1, { type: "user.restrict", user_id: author.id, kind: "timeout", seconds: 60 }],
      [t.timeout10, { type: "user.restrict", user_id: author.id, kind: "timeout", seconds: 600 }],
      [t.ban, { type: "user.restrict", user_id: author.id, kind: "ban" }],
    ];
    menu.replaceChildren();
    menu.setAttribute("aria-label", fill(t.moderate, { name: author.name ?? "" }));
    for (const [label, payload] of actions) {
      const entry = el("li", { role: "none" });
      const item = el("button", { type: "button", role: "menuitem", tabindex: -1 }, label);
      item.addEventListener("click", () => {
        closeMenu(true);
        if (payload.kind === "ban" && !window.confirm(t.banConfirm)) return;
        room.send(payload);
      });
      entry.append(item);
      menu.append(entry);
    }
    const box = button.getBoundingClientRect();
    menu.style.top = `${window.scrollY + box.bottom + 4}px`;
    menu.style.left = `${Math.max(8, window.scrollX + box.right - 200)}px`;
    menu.hidden = false;
    menuButton = button;
    button.setAttribute("aria-expanded", "true");
    menu.querySelector("button").focus();
  }

  menu.addEventListener("keydown", (event) => {
    const items = [...menu.querySelectorAll("button")];
    const at = items.indexOf(document.activeElement);
    const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
    if (step) items[(at + step + items.length) % items.length].focus();
    else if (event.key === "Home") items[0].focus();
    else if (event.key === "End") items.at(-1).focus();
    else if (event.key === "Escape") closeMenu(true);
    else if (event.key === "Tab") closeMenu(false);
    else return;
    event.preventDefault();
  });
  document.addEventListener("click", (event) => {
    if (!menu.hidden && !menu.contains(event.target) && event.target !== menuButton) closeMenu(false);
  });

  function addMessage(message) {
    if (document.getElementById(`smsg-${message.id}`)) return;
    const item = el("li", { className: "studio-msg", id: `smsg-${message.id}` });
    item.append(el("span", { className: "room-author" }, message.author?.name ?? ""), el("span", { className: "room-text" }, message.text));
    if (message.hidden) item.append(el("span", { className: "room-note" }, t.hidden));
    const author = message.author || {};
    if (!author.role) {
      const button = el("button", { type: "button", className: "studio-more", "aria-haspopup": "menu", "aria-expanded": "false", "aria-controls": "studio-mod-menu" }, "⋯");
      button.setAttribute("aria-label", fill(t.moderate, { name: author.name ?? "" }));
      button.addEventListener("click", () => (menuButton === button ? closeMenu(true) : openMenu(button, message)));
      item.append(button);
    }
    chat.append(item);
  }

  function applyEnded() {
    for (const control of document.querySelectorAll("#studio-lineup button, #studio-slow-form select, #studio-slow-form button, #studio-chat-form input, #studio-chat-form button")) {
      control.disabled = ended;
    }
    if (ended) closeMenu(false);
    $("studio-ended").hidden = !ended;
    renderQuestions();
  }

  const handlers = {
    snapshot(s) {
      $("studio-chat").replaceChildren();
      s.chat.forEach(addMessage);
      chat.toBottom();
      pinned.clear();
      s.pinned.forEach((card) => pinned.add(card.id));
      renderPins();
      questions.clear();
      s.questions.forEach((q) => questions.set(q.id, q));
      renderQuestions();
      $("studio-viewers").textContent = counted(counts.viewers, s.viewers);
      $("studio-slow").value = String(s.show.slow_mode);
      ended = s.show.status === "ended";
      applyEnded();
    },
    "chat.message": addMessage,
    "chat.deleted": (e) => document.getElementById(`smsg-${e.message_id}`)?.remove(),
    "question.asked": (e) => {
      questions.set(e.id, e);
      renderQuestions();
    },
    "question.voted": (e) => {
      const q = questions.get(e.question_id);
      if (q) q.votes = e.votes;
      renderQuestions();
    },
    "question.answered": (e) => {
      const q = questions.get(e.question_id);
      if (q) Object.assign(q, { status: "answered", answer: e.answer, answered_at: e.answered_at });
      renderQuestions();
    },
    "question.dismissed": (e) => {
      const q = questions.get(e.question_id);
      if (q) q.status = "dismissed";
      renderQuestions();
    },
    "question.merged": (e) => {
      questions.set(e.question.id, e.question);
      const into = questions.get(e.into);
      if (into) into.votes = e.votes;
      renderQuestions();
    },
    "question.split": (e) => {
      const q = questions.get(e.question_id);
      if (q) Object.assign(q, { status: "open", merged_into: null });
      const from = questions.get(e.from);
      if (from) from.votes = e.votes;
      renderQuestions();
    },
    "show.status": (e) => {
      ended = e.status === "ended";
      applyEnded();
    },
    "product.pinned": (e) => {
      pinned.add(e.product.id);
      renderPins();
    },
    "product.unpinned": (e) => {
      pinned.delete(e.product_id);
      renderPins();
    },
    "viewers.count": (e) => ($("studio-viewers").textContent = counted(counts.viewers, e.count)),
    "show.slow_mode": (e) => ($("studio-slow").value = String(e.seconds)),
    ack: () => showError(""),
    error: (e) => showError(`${e.message}${e.retry_after ? ` ${fill(t.retry, { s: Math.ceil(e.retry_after) })}` : ""}`),
  };

  const room = new RoomSocket(root.dataset.wsPath, {
    onState(state) {
      const node = $("studio-conn");
      node.dataset.state = state;
      node.textContent = t[state] || state;
    },
    onEvents(events) {
      for (const event of events) {
        handlers[event.type]?.(event);
        announce(event);
      }
    },
  });

  $("studio-lineup").addEventListener("click", (event) => {
    const button = event.target.closest("button.studio-pin");
    if (!button) return;
    const productId = Number(button.dataset.product);
    room.send({ type: pinned.has(productId) ? "product.unpin" : "product.pin", product_id: productId });
  });

  $("studio-slow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    room.send({ type: "show.slow_mode", seconds: Number($("studio-slow").value) });
  });

  $("studio-chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("studio-chat-input");
    const text = input.value.trim();
    if (text && room.send({ type: "chat.send", text })) input.value = "";
  });

  wireTabs([...root.querySelectorAll("[role=tab]")]);
  window.showfloorRoom = { send: (obj) => room.send(obj) };
  applyEnded();
  room.open();
}

const root = document.getElementById("studio-room");
if (root) initStudioRoom(root);
