// Studio: the line-up's ratings and the reviews the host may feature in the
// room. The server sends the figures; "Feature" asks it to broadcast one.

import { el, readStrings } from "./room.js";

const panel = document.getElementById("studio-reviews");
if (panel) initReviews(panel);

function initReviews(root) {
  const t = readStrings("studio-reviews-i18n");
  const api = root.dataset.api;
  const csrf = document.querySelector("#studio-reviews-csrf input[name=csrfmiddlewaretoken]")?.value || "";
  const status = document.getElementById("studio-reviews-status");

  async function load() {
    try {
      const response = await fetch(api, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      render(await response.json());
    } catch {
      status.textContent = t.failed;
    }
  }

  function render(data) {
    const lang = document.documentElement.lang;
    document.getElementById("studio-ratings").replaceChildren(
      ...data.lineup.map((p) =>
        el("li", {}, `${p.name}: ${p.count ? `★ ${p.average.toLocaleString(lang, { minimumFractionDigits: 1 })} (${p.count})` : t.unrated}`),
      ),
    );
    const list = document.getElementById("studio-review-list");
    if (!data.reviews.length) {
      list.replaceChildren(el("li", {}, t.none));
      return;
    }
    list.replaceChildren(
      ...data.reviews.map((r) => {
        const item = el("li", { className: "studio-review", id: `studio-review-${r.id}` });
        item.append(el("span", {}, `${"★".repeat(r.rating)} ${r.product} · ${r.author || t.buyer}${r.text ? `: ${r.text}` : ""}`));
        const button = el("button", { type: "button", className: "small secondary", "aria-label": `${t.feature}: ${r.product}, ${r.author || t.buyer}` }, t.feature);
        button.addEventListener("click", () => feature(r.id));
        item.append(" ", button);
        return item;
      }),
    );
  }

  async function feature(id) {
    status.textContent = "";
    try {
      const response = await fetch(`${api}${id}/feature/`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf },
      });
      const body = await response.json();
      status.textContent = response.ok ? t.featured : body.message || t.failed;
    } catch {
      status.textContent = t.failed;
    }
  }

  load();
}
