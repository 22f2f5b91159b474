// Paying through Stripe.js in production (frontend/static/frontend/checkout.js
// imports this the first time a card is needed): the Payment Element, Express
// Checkout (wallets) and 3-D Secure. In test mode the server confirms with a
// test method and this module is never loaded, so a viewer who never pays
// downloads none of it.
import { el } from "./room.js";

export function stripePay({ sheet, state, $, t, config, call, status, follow, restartTimer }) {
  async function loadStripe() {
    if (state.stripe) return state.stripe;
    if (!window.Stripe) {
      await new Promise((resolve, reject) => {
        const script = el("script", { src: config.stripe_js, async: true });
        script.addEventListener("load", resolve);
        script.addEventListener("error", reject);
        document.head.append(script);
      });
    }
    state.stripe = window.Stripe(config.publishable_key);
    return state.stripe;
  }

  async function nonModal(action) {
    // Stripe's 3-D Secure challenge is drawn over the page, which a modal
    // dialog makes inert: stay open but non-modal while Stripe.js works.
    // (`closed` does not cancel while busy.)
    sheet.close();
    sheet.show();
    try {
      return await action();
    } finally {
      sheet.close();
      sheet.showModal();
      restartTimer();
    }
  }

  async function authenticate(clientSecret) {
    status(t.authenticating);
    try {
      const stripe = await loadStripe();
      const result = await nonModal(() =>
        stripe.handleNextAction ? stripe.handleNextAction({ clientSecret }) : stripe.confirmCardPayment(clientSecret),
      );
      if (result.error) status(result.error.message || t.failed, "error");
    } catch {
      status(t.network, "error");
    }
    await follow();
  }

  function walletAddress(shipping) {
    const a = shipping.address || {};
    return {
      name: shipping.name || "",
      line1: a.line1 || "",
      line2: a.line2 || "",
      postal_code: a.postal_code || "",
      city: a.city || "",
      area: a.state || "",
      country: a.country || "",
    };
  }

  function expressOptions(order) {
    // Wallets give the buyer's email (a guest's receipt and order link) and,
    // for a delivered order, the address, only in the country it was priced
    // for (shipping and tax are per country) at the shipping already on it.
    const options = { emailRequired: true };
    if (order.ship_to_country) {
      Object.assign(options, {
        shippingAddressRequired: true,
        allowedShippingCountries: [order.ship_to_country],
        shippingRates: [{ id: "order", displayName: t.delivery, amount: order.shipping_minor || 0 }],
      });
    }
    return options;
  }

  async function mountElements() {
    const stripe = await loadStripe();
    const order = state.order;
    state.elements = stripe.elements({ clientSecret: order.client_secret });
    const express = state.elements.create("expressCheckout", expressOptions(order));
    express.on("shippingaddresschange", (event) => {
      if (event.address?.country === order.ship_to_country) event.resolve();
      else event.reject();
    });
    express.on("confirm", async (event) => {
      if (event.shippingAddress && order.ship_to_country) {
        // The wallet's address replaces the one typed in the sheet (checked
        // on the server like it) before the payment is confirmed.
        const answer = await call(`/api/orders/${order.id}/address`, { address: walletAddress(event.shippingAddress) });
        if (!answer.ok) {
          event.paymentFailed({ reason: "invalid_shipping_address" });
          status(answer.data.message || t.network, "error");
          return;
        }
      }
      await confirmInBrowser();
    });
    express.mount("#buy-express");
    state.elements.create("payment").mount("#buy-element");
    $("buy-payment").hidden = false;
  }

  async function confirmInBrowser() {
    status(t.paying);
    const result = await nonModal(() =>
      state.stripe.confirmPayment({
        elements: state.elements,
        redirect: "if_required",
        // Back to this show, marked with the order (the server's URL).
        confirmParams: { return_url: state.order.return_url || window.location.href },
      }),
    );
    if (result.error) {
      status(result.error.message || t.failed, "error");
      return;
    }
    await follow();
  }

  return { authenticate, mountElements, confirmInBrowser };
}
