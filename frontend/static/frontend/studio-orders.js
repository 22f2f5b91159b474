// Studio: orders and revenue as they happen, and the flash-sale control.
// The server computes totals; this module fetches and shows them again when
// the room says something sold or stock moved.

import { el, fill, readStrings } from "./room.js";

const root = document.getElementById("studio-orders");
if (root) initOrders(root);

function initOrders(panel) {
  const t = readStrings("studio-orders-i18n");
  const slug = panel.dataset.show;
  const form = document.getElementById("studio-sale-form");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
  let pending = null;
  let saleEnds = 0;
  let offset = 0;

  async function refresh() {
    pending = null;
    try {
      const response = await fetch(`/api/shows/${slug}/orders`, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      render(await response.json());
    } catch {
      document.getElementById("studio-sale-status").textContent = t.failed;
    }
  }

  function soon() {
    // Coalesce bursts (a sell-out fires many events) into one request.
    if (!pending) pending = setTimeout(refresh, 300);
  }

  function render(data) {
    const revenue = data.revenue || [];
    document.getElementById("studio-revenue").textContent = revenue.length ? revenue.map((r) => r.formatted).join(" + ") : "–";
    document.getElementById("studio-paid").textContent = String(revenue.reduce((n, r) => n + r.orders, 0));
    document.getElementById("studio-reserved").textContent = String(data.reserved || 0);
    const rows = document.getElementById("studio-orders-rows");
    if (!data.orders?.length) {
      rows.replaceChildren(el("tr", {}, null));
      rows.firstChild.append(el("td", { colspan: 5 }, t.none));
      return;
    }
    rows.replaceChildren(
      ...data.orders.map((o) => {
        const row = el("tr", { dataset: { status: o.status } });
        row.append(
          el("td", {}, o.id),
          el("td", {}, o.items),
          el("td", {}, o.buyer || t.guest),
          el("td", {}, o.total),
          el("td", { className: `order-status-${o.status}` }, o.status_label),
        );
        return row;
      }),
    );
  }

  function toMinor(text, currency) {
    const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
    const [whole, fraction = ""] = text.trim().replace(",", ".").split(".");
    if (!/^\d+$/.test(whole) || !/^\d*$/.test(fraction) || fraction.length > digits) return null;
    return Number.parseInt(whole + fraction.padEnd(digits, "0"), 10);
  }

  function showEnded(ended) {
    // No sale can start or run once the show has ended (sales end with it).
    for (const control of form.querySelectorAll("select, input, button")) control.disabled = ended;
    if (ended) {
      const running = saleEnds > Date.now() + offset;
      saleEnds = 0;
      if (running) document.getElementById("studio-sale-status").textContent = t.ended;
    }
  }

  function tickSale() {
    const node = document.getElementById("studio-sale-status");
    const left = saleEnds - (Date.now() + offset);
    if (saleEnds && left > 0) {
      const s = Math.ceil(left / 1000);
      node.textContent = fill(t.started, { time: `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` });
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const option = form.querySelector("select[name=product_id]").selectedOptions[0];
    const status = document.getElementById("studio-sale-status");
    const price = toMinor(String(data.get("price")), option?.dataset.currency || "EUR");
    if (price == null) {
      form.querySelector("input[name=price]").reportValidity();
      return;
    }
    const response = await fetch(`/api/shows/${slug}/sales`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({
        product_id: Number(data.get("product_id")),
        price_minor: price,
        duration_seconds: Number(data.get("minutes")) * 60,
        per_buyer_limit: Number(data.get("limit")),
      }),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      status.textContent = answer.message || t.failed;
      return;
    }
    saleEnds = answer.ends_at;
    tickSale();
  });

  document.addEventListener("showfloor:event", (e) => {
    const event = e.detail || {};
    // A snapshot follows every (re)connect: what happened before the socket
    // joined the room reached no handler, so read the orders again.
    if (["snapshot", "stock.changed", "purchase.made", "order.updated"].includes(event.type)) soon();
    if (event.type === "sale.started") {
      saleEnds = event.ends_at;
      offset = (event.server_now || Date.now()) - Date.now();
      tickSale();
    }
    if (event.type === "sale.ended") {
      saleEnds = 0;
      document.getElementById("studio-sale-status").textContent = t.ended;
    }
    if (event.type === "snapshot" || event.type === "show.status") {
      showEnded((event.show?.status || event.status) === "ended");
    }
  });
  showEnded(panel.closest("[data-status]")?.dataset.status === "ended");
  setInterval(tickSale, 1000);
  // Also poll slowly, so a missed event never leaves the numbers stale.
  setInterval(refresh, 15000);
  refresh();
}
