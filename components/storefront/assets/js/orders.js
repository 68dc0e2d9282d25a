// Orders as the shopper sees them, shared by the confirmation and account
// pages: fetch with the right credential, cancel, render.

import { api, describeError } from "./api.js";
import { getProduct } from "./cart.js";
import { formatMoney } from "./money.js";
import { orderAuth } from "./session.js";
import { countryName } from "./countries.js";
import { el, formatDate, titleCase } from "./dom.js";

/** Statuses after which nothing more happens on its own (paid: charged and on its way). */
export const SETTLED = new Set(["paid", "delivered", "cancelled", "failed"]);

export function fetchOrder(id, token = orderAuth(id)) {
  return api(`/api/orders/${encodeURIComponent(id)}`, { auth: token || undefined });
}

export function cancelOrder(id, token = orderAuth(id), reason = "cancelled by the shopper") {
  return api(`/api/orders/${encodeURIComponent(id)}/cancel`, { method: "POST", body: { reason }, auth: token || undefined });
}

export function statusPill(status, testid = "order-status") {
  return el("span", { class: `status-pill status-${status}`, dataset: { testid, status } }, titleCase(status));
}

export function totalOf(order) {
  return formatMoney(order.totals.grand_total, order.totals.currency);
}

// The reasons the services write into an order's history (components/orders/src/events.rs,
// domain.rs `follow`, shared event::cancel_reason, checkout's fail_order, and this page's
// cancel), as a person would say them. Any other reason (an operator's own words) is shown as is.
const EVENT_WORDS = {
  "payment.captured": "Payment taken",
  "fulfillment.shipped": "Handed to the carrier",
  "order.cancelled": "Cancelled",
};
const REASON_WORDS = {
  customer_request: "Cancelled at your request",
  "cancelled by the shopper": "Cancelled at your request",
  out_of_stock: "Cancelled: an item ran out of stock; nothing was charged",
  payment_failed: "Cancelled: the payment could not be taken",
  "checkout failed; the saga was compensated": "The checkout did not go through; nothing was charged",
};

/** A history entry's reason for people: {text, title?} (title: the raw reason, when reworded), or null. */
export function reasonText(change) {
  const raw = typeof change.reason === "string" ? change.reason.trim() : "";
  if (!raw) return null;
  if (Object.hasOwn(REASON_WORDS, raw)) return { text: REASON_WORDS[raw], title: raw };
  // A step an event skipped over: "implied by payment.captured".
  const implied = /^implied by ([a-z_.]+)$/.exec(raw);
  if (implied) return { text: EVENT_WORDS[implied[1]] || "Recorded with a later update", title: raw };
  // payment.captured: "5675 EUR captured (cap_…)".
  const captured = /^(-?\d+) ([A-Z]{3}) captured(?: \((.+)\))?$/.exec(raw);
  if (captured) {
    return { text: `Payment of ${formatMoney(Number(captured[1]), captured[2])} taken`, title: captured[3] ? `Payment reference ${captured[3]}` : raw };
  }
  // fulfillment.shipped: "<carrier> <tracking number>".
  const shipped = change.status === "shipped" && /^(\S+) ([A-Z0-9-]{6,})$/.exec(raw);
  if (shipped) return { text: `Shipped with ${shipped[1]}, tracking number ${shipped[2]}`, title: raw };
  return { text: raw };
}

export function historyList(order) {
  return order.history.map((change) => {
    const reason = reasonText(change);
    return el("li", { dataset: { testid: "history-entry", status: change.status } },
      el("span", {}, statusPill(change.status, "history-status")),
      el("time", { datetime: change.at, class: "small muted" }, formatDate(change.at)),
      reason ? el("span", { class: "small muted", title: reason.title, dataset: { testid: "history-reason" } }, reason.text) : null);
  });
}

export function linesList(order) {
  return el("ul", { class: "order-lines", dataset: { testid: "order-lines" } },
    ...order.lines.map((line) => {
      const name = el("span", { dataset: { testid: "order-line-name" } }, `${line.quantity} × ${line.name || line.sku}`);
      if (!line.name) {
        // Orders made by checkout carry no names: the catalog has them.
        getProduct(line.sku).then((p) => (name.textContent = `${line.quantity} × ${p.name}`)).catch(() => {});
      }
      return el("li", { dataset: { sku: line.sku } }, name, el("span", {}, formatMoney(line.line_total)));
    }));
}

export function totalsList(order) {
  const t = order.totals;
  const m = (amount) => formatMoney(amount, t.currency);
  return el("dl", { class: "summary-totals", dataset: { testid: "order-totals" } },
    el("dt", {}, "Items"), el("dd", {}, m(t.items)),
    el("dt", {}, `Shipping (${order.shipping})`), el("dd", {}, m(t.shipping)),
    el("dt", {}, "VAT"), el("dd", {}, m(t.tax)),
    el("dt", { class: "total" }, "Total"), el("dd", { class: "total", dataset: { testid: "order-total" } }, m(t.grand_total)));
}

export function addressBlock(address) {
  return el("address", { class: "small" },
    address.name, el("br"), address.line1, address.line2 ? [el("br"), address.line2] : null,
    el("br"), `${address.postal_code} ${address.city}`, el("br"), countryName(address.country));
}

/**
 * A card for one order in a list: status, date, lines, total, history, and a
 * cancel button while it is `placed`. onChange(order) is called after a cancel.
 */
export function orderCard(order, { token, onChange } = {}) {
  const message = el("p", { class: "small live-msg", role: "status", "aria-live": "polite", dataset: { testid: "order-card-message" } });
  const card = el("article", { class: "card order-card", dataset: { testid: "order-card", orderId: order.id, status: order.status }, "aria-labelledby": `h-${order.id}` },
    el("div", { class: "order-head" },
      el("h3", { id: `h-${order.id}` }, el("a", { href: order.checkout_id ? `/confirmation/${encodeURIComponent(order.checkout_id)}` : "#", class: "mono" }, order.id)),
      statusPill(order.status)),
    el("p", { class: "small muted" }, `Placed ${formatDate(order.created_at)} · total `, el("strong", {}, totalOf(order))),
    linesList(order),
    el("ol", { class: "history", "aria-label": "Status history" }, ...historyList(order)),
    message);
  if (order.status === "placed") {
    card.append(cancelControls(order, token, {
      onCancelled: (updated) => {
        message.textContent = "Order cancelled.";
        onChange?.(updated);
      },
      onError: (error) => {
        message.textContent = cancelErrorText(error);
        if (error.code === "illegal_transition") onChange?.(null);
      },
    }));
  }
  return card;
}

export function cancelErrorText(error) {
  return error.code === "illegal_transition"
    ? `Too late to cancel: the order is already ${(error.details && error.details.status) || "on its way"}.`
    : `Could not cancel: ${describeError(error)}`;
}

/**
 * "Cancel order" → an inline "Yes, cancel it" / "Keep it" (no modal dialog),
 * then POST /api/orders/{id}/cancel.
 * Test ids: [data-testid=cancel-order], [data-testid=confirm-cancel], [data-testid=keep-order].
 */
export function cancelControls(order, token, { onCancelled, onError }) {
  const box = el("div", { class: "actions", dataset: { testid: "cancel-controls" } });
  const ask = el("button", { type: "button", class: "btn btn-danger", dataset: { testid: "cancel-order" }, "aria-label": `Cancel order ${order.id}` }, "Cancel order");
  const question = el("span", { class: "small" }, "Cancel this order? The payment is voided.");
  const yes = el("button", { type: "button", class: "btn btn-danger", dataset: { testid: "confirm-cancel" } }, "Yes, cancel it");
  const no = el("button", { type: "button", class: "btn btn-secondary", dataset: { testid: "keep-order" } }, "Keep it");
  const showAsk = () => {
    box.replaceChildren(ask);
  };
  ask.addEventListener("click", () => {
    box.replaceChildren(question, yes, no);
    yes.focus();
  });
  no.addEventListener("click", () => {
    showAsk();
    ask.focus();
  });
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    no.disabled = true;
    yes.textContent = "Cancelling…";
    try {
      const updated = await cancelOrder(order.id, token);
      box.replaceChildren();
      onCancelled?.(updated);
    } catch (error) {
      yes.disabled = false;
      no.disabled = false;
      yes.textContent = "Yes, cancel it";
      showAsk();
      onError?.(error);
    }
  });
  showAsk();
  return box;
}
