// The confirmation page (confirmation.html at /confirmation/<checkout_id>):
// the checkout saga's step timeline (GET /api/checkout/{id}) and the order
// (GET /api/orders/{id}, with the session or this browser's order access
// token), polled every 2 s until the order settles (paid, delivered,
// cancelled, failed), so it follows placed → shipped → paid by itself.
//
// Test ids:
//   #checkout-status [data-testid=checkout-status]  the saga's status (data-status)
//   #timeline [data-testid=timeline]                the steps: [data-testid=step][data-step=<name>][data-outcome=<outcome>]
//       [data-testid=step-duration]                 "12 ms"; [data-testid=step-compensation] when undone
//   #order-id, #order-status (data-status; aria-live)  the order and its status now
//   #order-history [data-testid=history-entry][data-status]  the status history, oldest first
//   #order-body                                     lines, totals, address, shipment
//   #order-message                                  why the order cannot be shown (no token, sign in), or "cancelled"
//   #poll-status                                    "Updating automatically…" / "Up to date"
//   [data-testid=cancel-order] → [data-testid=confirm-cancel] / [data-testid=keep-order]  cancel while placed
//   #confirmation-error                             checkout not found / unreachable (with [data-testid=confirmation-retry])

import "./layout.js";
import { api, describeError, NetworkError } from "./api.js";
import { formatMoney } from "./money.js";
import { getSession, orderAuth } from "./session.js";
import { SETTLED, fetchOrder, cancelControls, cancelErrorText, historyList, linesList, totalsList, addressBlock } from "./orders.js";
import { el, formatDate, titleCase } from "./dom.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
const MAX_POLL_MS = 10 * 60 * 1000;
const STEP_NAMES = {
  check_customer: "Check the customer", load_cart: "Load the cart", price_lines: "Price the items",
  quote_shipping: "Quote shipping", compute_tax: "Compute VAT", reserve_stock: "Reserve stock",
  authorize_payment: "Authorize the payment", create_order: "Create the order", empty_cart: "Empty the cart",
  publish_order_placed: "Announce the order",
};
const COMPENSATIONS = { release_stock: "stock released", void_payment: "payment voided", fail_order: "order marked failed" };

const checkoutId = (() => {
  try {
    return decodeURIComponent(location.pathname.split("/").slice(2).join("/"));
  } catch {
    return "";
  }
})();
let orderId = null;
let startedAt = Date.now();
let timer = null;
let lastStatus = null;

function ms(value) {
  return value == null ? "running…" : value < 1000 ? `${value} ms` : `${(value / 1000).toFixed(1)} s`;
}

function renderCheckout(checkout) {
  const pill = $("checkout-status");
  pill.className = `status-pill status-${checkout.status}`;
  pill.dataset.status = checkout.status;
  pill.textContent = `Checkout ${checkout.status}`;
  $("timeline").replaceChildren(...checkout.steps.map((step) => el("li", { class: `outcome-${step.outcome}`, dataset: { testid: "step", step: step.name, outcome: step.outcome } },
    el("span", { class: "dot", "aria-hidden": "true" }),
    el("span", {},
      el("span", {}, STEP_NAMES[step.name] || titleCase(step.name)), " ",
      el("span", { class: "small muted" }, `— ${step.outcome}`),
      step.compensation ? el("span", { class: "small", dataset: { testid: "step-compensation" } }, el("br"), `Undone: ${COMPENSATIONS[step.compensation.name] || step.compensation.name} (${ms(step.compensation.duration_ms)})`) : null),
    el("span", { class: "duration", dataset: { testid: "step-duration" } }, ms(step.duration_ms)))));
  const total = checkout.steps.reduce((sum, s) => sum + (s.duration_ms || 0), 0);
  $("checkout-totals").textContent = checkout.steps.length ? `${checkout.steps.length} steps, ${ms(total)} in all, started ${formatDate(checkout.created_at)}.` : "";
  if (checkout.status === "completed") $("confirmation-heading").textContent = "Thank you, your order is placed";
  else if (checkout.status === "failed") {
    $("confirmation-heading").textContent = "This checkout did not go through";
    const message = checkout.error && checkout.error.message;
    showMessage(`Nothing was charged.${message ? ` Reason: ${message}` : ""}`);
  } else $("confirmation-heading").textContent = "Placing your order…";
}

function showMessage(text, ...extra) {
  const box = $("order-message");
  box.replaceChildren(text, ...extra);
  box.hidden = false;
}

async function renderShipment(order, token, body) {
  if (!["shipped", "paid", "delivered"].includes(order.status)) return;
  try {
    const shipment = await api(`/api/fulfillment/shipments/${encodeURIComponent(order.id)}`, { auth: token });
    if (shipment.tracking_number) {
      body.append(el("p", { class: "small", dataset: { testid: "shipment" } }, `Shipped with ${shipment.carrier}, tracking number `, el("span", { class: "mono" }, shipment.tracking_number),
        shipment.shipped_at ? ` (${formatDate(shipment.shipped_at)})` : ""));
    }
  } catch {
    /* no shipment yet */
  }
}

function renderOrder(order, token) {
  $("order-id").textContent = order.id;
  const pill = $("order-status");
  pill.className = `status-pill status-${order.status}`;
  pill.dataset.status = order.status;
  pill.textContent = titleCase(order.status);
  $("order-history").replaceChildren(...historyList(order));
  const body = el("div", {},
    linesList(order),
    el("div", { class: "summary" }, totalsList(order)),
    el("h3", {}, "Shipping to"), addressBlock(order.address),
    el("p", { class: "small muted" }, `Confirmation sent to ${order.email}.`));
  $("order-body").replaceChildren(body);
  renderShipment(order, token, body);
  const actions = $("order-actions");
  actions.replaceChildren();
  if (order.status === "placed") {
    actions.append(cancelControls(order, token, {
      onCancelled: (updated) => {
        lastStatus = updated.status;
        renderOrder(updated, token);
        $("poll-status").replaceChildren(`Up to date (${updated.status}). `, refreshButton());
        $("order-status").focus?.();
      },
      onError: (error) => {
        showMessage(cancelErrorText(error));
        poll();
      },
    }));
  }
  if (order.status === "cancelled") showMessage("This order is cancelled; the payment was voided or refunded.");
}

function schedule() {
  clearTimeout(timer);
  if (Date.now() - startedAt > MAX_POLL_MS) {
    $("poll-status").replaceChildren("Stopped updating. ", refreshButton());
    return;
  }
  $("poll-status").textContent = "Updating automatically…";
  timer = setTimeout(poll, POLL_MS);
}

function refreshButton() {
  const b = el("button", { type: "button", class: "btn-link", dataset: { testid: "refresh" } }, "Refresh");
  b.addEventListener("click", () => {
    startedAt = Date.now();
    poll();
  });
  return b;
}

async function poll() {
  clearTimeout(timer);
  if (document.hidden) return; // resumes on visibilitychange
  let checkout;
  try {
    checkout = await api(`/api/checkout/${encodeURIComponent(checkoutId)}`);
  } catch (error) {
    if (error instanceof NetworkError) {
      $("poll-status").textContent = "Connection lost; trying again…";
      return schedule();
    }
    const box = $("confirmation-error");
    box.replaceChildren(el("p", {}, error.code === "checkout_not_found" || error.status === 404 ? "We could not find this checkout. The link may be incomplete." : `Could not load the checkout: ${describeError(error)}`));
    const retry = el("button", { type: "button", class: "btn btn-secondary", dataset: { testid: "confirmation-retry" } }, "Try again");
    retry.addEventListener("click", () => {
      box.hidden = true;
      poll();
    });
    box.append(el("div", { class: "actions" }, retry));
    box.hidden = false;
    return;
  }
  renderCheckout(checkout);
  orderId = checkout.order_id || orderId;
  if (checkout.status === "running" || checkout.status === "compensating") return schedule();
  if (!orderId || checkout.status === "failed") {
    $("order-section").hidden = checkout.status === "failed";
    $("poll-status").textContent = "";
    return;
  }
  const token = orderAuth(orderId);
  if (!token) {
    $("order-id").textContent = orderId;
    $("order-body").replaceChildren();
    $("poll-status").textContent = "";
    showMessage(getSession() ? "This order is not in your account." : "Sign in to follow this order. ",
      getSession() ? "" : el("a", { href: "/account" }, "Sign in"));
    return;
  }
  try {
    const order = await fetchOrder(orderId, token);
    if (order.status !== lastStatus) renderOrder(order, token);
    lastStatus = order.status;
    if (SETTLED.has(order.status)) {
      $("poll-status").replaceChildren(`Up to date (${order.status}). `, refreshButton());
      return;
    }
  } catch (error) {
    if (error instanceof NetworkError) $("poll-status").textContent = "Connection lost; trying again…";
    else if (error.status === 401 || error.status === 404) {
      showMessage(error.status === 401 ? "Your session ended. " : "This order cannot be opened with the credentials in this browser. ", el("a", { href: "/account" }, "Sign in"));
      $("poll-status").textContent = "";
      return;
    } else $("poll-status").textContent = `Could not update: ${describeError(error)}`;
  }
  schedule();
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && !SETTLED.has(lastStatus)) poll();
});

if (!checkoutId || !/^[A-Za-z0-9_-]{1,128}$/.test(checkoutId)) {
  const box = $("confirmation-error");
  box.replaceChildren(el("p", {}, "This is not a confirmation link. "), el("a", { href: "/account" }, "See your orders"));
  box.hidden = false;
} else {
  try {
    const last = JSON.parse(sessionStorage.getItem("shop.last_order") || "null");
    if (last && last.checkout_id === checkoutId) {
      orderId = last.order_id;
      $("order-id").textContent = orderId;
      if (last.totals) $("checkout-totals").textContent = `Total ${formatMoney(last.totals.grand_total, last.totals.currency)}`;
    }
  } catch {
    /* ignore */
  }
  poll();
}
