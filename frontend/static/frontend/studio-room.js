// Studio: the room seen by hosts and moderators — chat with a moderation menu,
// the Q&A queue by votes, pin/unpin of the line-up, slow mode, viewers.
// Owns the studio page's websocket; dispatches `showfloor:event` like room.js.
import { FollowingList, RoomSocket, announce, counted, el, fill, readStrings } from "./room.js";

function initStudioRoom(root) {
  const t = readStrings("studio-room-i18n");
  const counts = readStrings("room-plurals");
  const $ = (id) => document.getElementById(id);
  const chat = new FollowingList($("studio-chat"), $("studio-jump"));
  const questions = new Map();
  const pinned = new Set();

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

  function renderQuestions() {
    // Patched in place, not rebuilt: the list is a live region, and a vote
    // must not wipe the answer a host is typing or take the keyboard focus.
    const list = $("studio-questions");
    const before = new Map([...list.children].map((node) => [node.id, node]));
    const active = list.contains(document.activeElement) ? document.activeElement : null;
    const controls = (item) => [...item.querySelectorAll("input, button")];
    const focus = active && [active.closest("li").id, controls(active.closest("li")).indexOf(active)];
    const open = [...questions.values()].filter((q) => q.status === "open").sort((a, b) => b.votes - a.votes || a.id - b.id);
    const items = open.map((q) => {
      const current = before.get(`sq-${q.id}`);
      if (current && current.dataset.votes === String(q.votes)) return current;
      const item = questionItem(q);
      item.querySelector("input").value = current?.querySelector("input")?.value || "";
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

  function questionItem(q) {
    const item = el("li", { className: "room-q", id: `sq-${q.id}`, dataset: { votes: q.votes } });
    const head = el("p", { className: "room-q-text" });
    head.append(el("span", { className: "room-badge" }, counted(counts.votes, q.votes)), el("span", { className: "room-author" }, q.author?.name ?? ""), el("span", {}, q.text));
    item.append(head);
    const label = el("label", { className: "sr-only", for: `sq-answer-${q.id}` }, t.answerPrompt);
    const input = el("input", { id: `sq-answer-${q.id}`, maxlength: 500, placeholder: t.answerPrompt });
    const actions = el("div", { className: "studio-actions" });
    const answer = el("button", { type: "button" }, t.answer);
    answer.addEventListener("click", () => room.send({ type: "question.answer", question_id: q.id, text: input.value.trim() }));
    const dismiss = el("button", { type: "button" }, t.dismiss);
    dismiss.addEventListener("click", () => room.send({ type: "question.dismiss", question_id: q.id }));
    actions.append(answer, dismiss);
    item.append(label, input, actions);
    return item;
  }

  function addMessage(message) {
    if (document.getElementById(`smsg-${message.id}`)) return;
    const item = el("li", { className: "studio-msg", id: `smsg-${message.id}` });
    item.append(el("span", { className: "room-author" }, message.author?.name ?? ""), el("span", { className: "room-text" }, message.text));
    if (message.hidden) item.append(el("span", { className: "room-note" }, t.hidden));
    const author = message.author || {};
    if (!author.role) {
      const menu = el("span", { className: "studio-menu", role: "group" });
      menu.setAttribute("aria-label", fill(t.moderate, { name: author.name ?? "" }));
      const actions = [
        [t.delete, { type: "chat.delete", message_id: message.id }],
        [t.timeout1, { type: "user.restrict", user_id: author.id, kind: "timeout", seconds: 60 }],
        [t.timeout10, { type: "user.restrict", user_id: author.id, kind: "timeout", seconds: 600 }],
        [t.ban, { type: "user.restrict", user_id: author.id, kind: "ban" }],
      ];
      for (const [label, payload] of actions) {
        const button = el("button", { type: "button" }, label);
        button.addEventListener("click", () => {
          if (payload.kind === "ban" && !window.confirm(t.banConfirm)) return;
          room.send(payload);
        });
        menu.append(button);
      }
      item.append(menu);
    }
    chat.append(item);
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
      if (q) q.status = "answered";
      renderQuestions();
    },
    "question.dismissed": (e) => {
      questions.delete(e.question_id);
      renderQuestions();
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

  window.showfloorRoom = { send: (obj) => room.send(obj) };
  room.open();
}

const root = document.getElementById("studio-room");
if (root) initStudioRoom(root);
