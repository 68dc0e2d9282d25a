// The checkout page (checkout.html): contact, address, shipping speed with live
// shipping and VAT quotes, card, and placing the order.
//
// Idempotency: one Idempotency-Key per attempt, kept in sessionStorage
// ("shop.checkout_attempt" = {key, state}). The key is made when the shopper
// first presses "Place order" and reused for every resend of that attempt
// (double clicks cannot happen: the button is disabled while a request is in
// flight; a network error's "Retry" resends the same body with the same key).
// Only an answered failure (declined card, out of stock, a field to fix) ends
// the attempt, so the next press starts a new one with a new key. A
// 422 idempotency_key_reused (the form changed after a lost answer) looks the
// earlier checkout up: completed → its confirmation; failed → a new attempt.
//
// Test ids:
//   #checkout-form                       the form
//   #email, #name, #line1, #line2, #postal_code (data-testid=postal-code), #city, #country
//   #speed-standard, #speed-express      shipping speed radios
//   #price-standard, #price-express      each speed's live shipping cost; #days-standard, #days-express
//   #card-number, #card-exp-month, #card-exp-year, #card-cvc
//   [data-testid=use-card-approve|use-card-decline|use-card-funds|use-card-error]  fill a test card
//   #<field>-error (data-testid <testid>-error)  the message for a field, the server's `error.message`
//   #summary-lines [data-testid=summary-line][data-sku]  the cart's lines
//   #sum-items, #sum-shipping, #sum-tax, #sum-total, #vat-rate  the live quote (aria-live)
//   #quote-status                        "Updating…", the zone and rate, or a quote error
//     [data-testid=quote-retry]          asks for a failed quote again
//   #quote[aria-busy=true][data-state=stale]  the totals do not yet match the inputs
//                                        (data-state: none|stale|ready|error)
//   #place-order                         submit (disabled while a request is in flight, and while
//                                        a country is chosen but its quote for the current cart,
//                                        country and speed has not arrived or failed)
//   #submit-status                       "Placing your order…" (aria-live)
//   #checkout-alert                      page-level outcome (role=alert; data-kind=network|out_of_stock|declined|error|session|empty)
//     [data-testid=checkout-retry]       resend the same attempt (same key) after a network error
//     [data-testid=remove-out-of-stock]  remove the items named by 409 out_of_stock from the cart
//   #card-alert                          402 card_declined / insufficient_funds / card_expired
//   #signed-in-note                      who the order will belong to

import "./layout.js";
import { api, ApiError, NetworkError, describeError } from "./api.js";
import { formatMoney } from "./money.js";
import { cartWithProducts, getCartId, removeItem, newId, noteCount } from "./cart.js";
import { getSession, saveOrderToken, setCachedCustomer } from "./session.js";
import { fillCountrySelect, countryName } from "./countries.js";
import { el, debounce } from "./dom.js";

const $ = (id) => document.getElementById(id);
const form = $("checkout-form");
const country = $("country");
const placeButton = $("place-order");
const alertBox = $("checkout-alert");
const cardAlert = $("card-alert");
const submitStatus = $("submit-status");
const quoteStatus = $("quote-status");
const ATTEMPT_KEY = "shop.checkout_attempt";
const SPEEDS = ["standard", "express"];

let lines = [];
let currency = "EUR";
let itemsTotal = 0;
let inFlight = false;
let quoteSeq = 0;
// What the totals shown are for: "none" (no country or no cart: nothing to
// quote, the form's checks speak), "stale" (an input changed, a quote is
// due), "ready" (they match the current inputs) or "error".
let quoteState = "none";
let cartLoaded = false;

// ---- the attempt and its key -------------------------------------------------

function loadAttempt() {
  try {
    const attempt = JSON.parse(sessionStorage.getItem(ATTEMPT_KEY) || "null");
    return attempt && typeof attempt.key === "string" ? attempt : null;
  } catch {
    return null;
  }
}
function saveAttempt(attempt) {
  try {
    sessionStorage.setItem(ATTEMPT_KEY, JSON.stringify(attempt));
  } catch {
    /* ignore */
  }
}
/** The attempt a press of "Place order" belongs to: the open one, or a new one. */
function currentAttempt() {
  let attempt = loadAttempt();
  if (!attempt || attempt.state === "failed") {
    attempt = { key: newId("chk-"), state: "open", started_at: new Date().toISOString() };
    saveAttempt(attempt);
  }
  return attempt;
}
function failAttempt(attempt) {
  saveAttempt({ ...attempt, state: "failed" });
}
function endAttempt() {
  try {
    sessionStorage.removeItem(ATTEMPT_KEY);
  } catch {
    /* ignore */
  }
}

// ---- form helpers ----------------------------------------------------------

const FIELD_IDS = {
  email: "email", name: "name", line1: "line1", line2: "line2", city: "city", postal_code: "postal_code",
  country: "country", address: "line1", destination: "country", shipping: "speed-standard",
  number: "card-number", exp_month: "card-exp-month", exp_year: "card-exp-year", cvc: "card-cvc", card: "card-number",
};

function fieldId(field) {
  if (!field) return null;
  const name = String(field).split(".").pop();
  return FIELD_IDS[name] || null;
}

function errorNode(id) {
  return id === "speed-standard" ? $("shipping-error") : $(`${id}-error`);
}

function setFieldError(id, message) {
  const input = $(id);
  const node = errorNode(id);
  if (node) node.textContent = message || "";
  if (input && id !== "speed-standard") input.setAttribute("aria-invalid", message ? "true" : "false");
}

function clearErrors() {
  form.querySelectorAll(".field-error").forEach((node) => (node.textContent = ""));
  form.querySelectorAll("[aria-invalid]").forEach((node) => node.setAttribute("aria-invalid", "false"));
  alertBox.hidden = true;
  cardAlert.hidden = true;
}

function showAlert(kind, cls, ...content) {
  alertBox.className = `alert ${cls}`;
  alertBox.dataset.kind = kind;
  alertBox.replaceChildren(...content);
  alertBox.hidden = false;
  alertBox.focus({ preventScroll: false });
}

function button(label, testid, onClick, cls = "btn btn-secondary") {
  const b = el("button", { type: "button", class: cls, dataset: { testid } }, label);
  b.addEventListener("click", onClick);
  return b;
}

function value(id) {
  return $(id).value.trim();
}

function collect() {
  const line2 = value("line2");
  return {
    cart_id: getCartId(),
    email: value("email"),
    address: {
      name: value("name"),
      line1: value("line1"),
      line2: line2 || null,
      city: value("city"),
      postal_code: value("postal_code"),
      country: country.value,
    },
    shipping: form.querySelector("input[name=shipping]:checked")?.value || "standard",
    card: {
      number: value("card-number"),
      exp_month: Number($("card-exp-month").value),
      exp_year: Number($("card-exp-year").value),
      cvc: value("card-cvc"),
    },
  };
}

/** The checks a person would want before sending; the server's rules stay the authority. */
function validate(body) {
  const problems = [];
  const need = (id, ok, message) => {
    if (!ok) problems.push([id, message]);
  };
  need("email", /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(body.email), body.email ? "Enter an email address like name@example.com." : "Enter your email address.");
  need("name", body.address.name, "Enter the recipient's name.");
  need("line1", body.address.line1, "Enter the street and number.");
  need("postal_code", body.address.postal_code, "Enter the postal code.");
  need("city", body.address.city, "Enter the city.");
  need("country", body.address.country, "Choose a country.");
  const digits = body.card.number.replace(/[\s-]/g, "");
  need("card-number", /^\d{12,19}$/.test(digits), body.card.number ? "A card number has 12 to 19 digits." : "Enter the card number.");
  need("card-exp-month", body.card.exp_month >= 1, "Choose the expiry month.");
  need("card-exp-year", body.card.exp_year >= 2000, "Choose the expiry year.");
  need("card-cvc", /^\d{3,4}$/.test(body.card.cvc), "The CVC is the 3 digits on the back (4 on the front for American Express).");
  for (const [id, message] of problems) setFieldError(id, message);
  if (problems.length) $(problems[0][0]).focus();
  return problems.length === 0;
}

// ---- the cart and the live quote -------------------------------------------

function showSummaryLines() {
  const list = $("summary-lines");
  if (!lines.length) {
    list.replaceChildren(el("li", { dataset: { testid: "summary-empty" } }, "Your cart is empty."));
    return;
  }
  list.replaceChildren(...lines.map((line) => el("li", { dataset: { testid: "summary-line", sku: line.sku } },
    el("span", {}, `${line.quantity} × ${line.product ? line.product.name : line.sku}`),
    el("span", {}, line.product ? formatMoney(line.product.price.amount * line.quantity, line.product.price.currency) : "–"))));
}

async function loadCart() {
  cartLoaded = false;
  markStale();
  try {
    const answer = await cartWithProducts();
    lines = answer.lines;
  } catch (error) {
    lines = [];
    quoteSeq++;
    resetQuote("");
    setQuoteState("none");
    showAlert("network", "alert-error", el("p", {}, `Your cart could not be loaded. ${describeError(error)}`),
      el("div", { class: "actions" }, button("Try again", "cart-reload", () => {
        alertBox.hidden = true;
        loadCart();
      })));
    return;
  }
  cartLoaded = true;
  const priced = lines.filter((l) => l.product);
  currency = priced.length ? priced[0].product.price.currency : "EUR";
  itemsTotal = priced.reduce((sum, l) => sum + l.product.price.amount * l.quantity, 0);
  $("sum-items").textContent = formatMoney(itemsTotal, currency);
  showSummaryLines();
  if (!lines.length) {
    showAlert("empty", "alert-info", el("p", {}, "Your cart is empty, so there is nothing to check out yet."), el("p", {}, el("a", { href: "/" }, "Browse the catalog")));
  } else if (priced.length < lines.length) {
    showAlert("error", "alert-warn", el("p", {}, "Your cart holds a product the shop no longer sells. "), el("p", {}, el("a", { href: "/cart" }, "Review your cart")));
  }
  inputsChanged();
}

function resetQuote(message) {
  for (const speed of SPEEDS) {
    $(`price-${speed}`).textContent = "–";
    $(`days-${speed}`).textContent = "Choose a country for delivery times";
  }
  $("sum-shipping").textContent = "–";
  $("sum-tax").textContent = "–";
  $("vat-rate").textContent = "";
  $("sum-total").textContent = "–";
  quoteStatus.textContent = message;
}

/** Whether there is something to quote: a country, and a cart with priced lines (or one still loading). */
function quotable() {
  return country.value !== "" && (!cartLoaded || lines.some((l) => l.product));
}

/** What a quote depends on: the cart's lines, the country, the speed. */
function quoteInputs() {
  const speed = form.querySelector("input[name=shipping]:checked")?.value || "standard";
  return JSON.stringify([country.value, speed, lines.map((l) => [l.sku, l.quantity, l.product ? l.product.price.amount : null])]);
}

function setQuoteState(state) {
  quoteState = state;
  const box = $("quote");
  box.dataset.state = state;
  box.setAttribute("aria-busy", state === "stale" ? "true" : "false");
  updatePlaceButton();
}

/** "Place order" is pressable when nothing is in flight, the cart has lines, and the total shown is the one that will be charged. */
function updatePlaceButton() {
  placeButton.disabled = inFlight || !cartLoaded || !lines.length || (quotable() && quoteState !== "ready");
}

/**
 * An input of the quote changed (or is about to): the totals shown are no
 * longer the ones the checkout would charge. Answers still on their way are
 * for the old inputs and will be ignored (quoteSeq).
 */
function markStale() {
  quoteSeq++;
  if (!quotable()) return setQuoteState("none");
  $("sum-shipping").textContent = "…";
  $("sum-tax").textContent = "…";
  $("vat-rate").textContent = "";
  $("sum-total").textContent = "Updating…";
  quoteStatus.textContent = "Updating shipping and VAT…";
  setQuoteState("stale");
}

/** Marks the totals stale at once, and asks for the new quote (debounced). */
function inputsChanged() {
  markStale();
  quote();
}

function quoteFailed(message) {
  const retry = el("button", { type: "button", class: "btn-link", dataset: { testid: "quote-retry" } }, "Try again");
  retry.addEventListener("click", () => {
    markStale();
    quote.flush();
  });
  quoteStatus.replaceChildren(message, " ", retry);
  setQuoteState("error");
}

const ZONES = { domestic: "Domestic", eu: "EU", world: "International" };

async function updateQuote() {
  const destination = country.value;
  const priced = lines.filter((l) => l.product);
  if (!cartLoaded) return; // loadCart asks again once the cart is here
  if (!priced.length || !destination) {
    quoteSeq++;
    setQuoteState("none");
    return resetQuote(priced.length ? "Choose a country to see shipping and VAT." : "Your cart is empty.");
  }
  if (quoteState !== "stale") markStale();
  const seq = ++quoteSeq;
  const inputs = quoteInputs();
  quoteStatus.textContent = "Updating shipping and VAT…";
  const speed = form.querySelector("input[name=shipping]:checked")?.value || "standard";
  const items = priced.map((l) => ({ weight_grams: l.product.weight_grams, quantity: l.quantity }));
  try {
    const quotes = await Promise.all(SPEEDS.map((s) => api("/api/shipping/quote", { method: "POST", body: { items, destination: { country: destination }, speed: s } })));
    if (seq !== quoteSeq) return;
    quotes.forEach((q, i) => {
      $(`price-${SPEEDS[i]}`).textContent = formatMoney(q.cost);
      const { min, max } = q.estimated_days;
      $(`days-${SPEEDS[i]}`).textContent = min === max ? `${min} business day${min === 1 ? "" : "s"}` : `${min}–${max} business days`;
    });
    const chosen = quotes[SPEEDS.indexOf(speed)];
    const tax = await api("/api/tax/quote", { method: "POST", body: { destination: { country: destination }, goods: { amount: itemsTotal, currency }, shipping: chosen.cost } });
    if (seq !== quoteSeq || inputs !== quoteInputs()) return; // for inputs that have changed since
    $("sum-shipping").textContent = formatMoney(chosen.cost);
    $("sum-tax").textContent = formatMoney(tax.total_tax);
    $("vat-rate").textContent = `(${(tax.rate_basis_points / 100).toLocaleString("en", { maximumFractionDigits: 2 })} %)`;
    $("sum-total").textContent = formatMoney(itemsTotal + chosen.cost.amount + tax.total_tax.amount, currency);
    const rule = tax.rule === "export" ? "no VAT outside the EU" : tax.rule === "eu_standard" ? `${countryName(tax.country)} VAT` : "VAT";
    quoteStatus.textContent = `${ZONES[chosen.zone] || chosen.zone} ${speed} shipping to ${countryName(destination)}, ${(chosen.weight_grams / 1000).toLocaleString("en")} kg; ${rule}.`;
    setFieldError("country", "");
    setFieldError("speed-standard", "");
    setQuoteState("ready");
  } catch (error) {
    if (seq !== quoteSeq) return;
    resetQuote("");
    quoteFailed(error instanceof NetworkError ? "Could not update the total: the shop is unreachable." : `Cannot quote: ${describeError(error)}`);
    const id = error.code === "unknown_country" ? "country" : error.code === "too_heavy" || error.code === "cannot_ship" ? "speed-standard" : fieldId(error.field);
    if (id) setFieldError(id, describeError(error));
  }
}
const quote = debounce(updateQuote, 300);

// ---- placing the order -----------------------------------------------------

function setBusy(busy) {
  inFlight = busy;
  updatePlaceButton();
  placeButton.textContent = busy ? "Placing your order…" : "Place order";
  form.setAttribute("aria-busy", busy ? "true" : "false");
  alertBox.querySelectorAll("button").forEach((b) => (b.disabled = busy));
  submitStatus.textContent = busy ? "Placing your order… please keep this page open." : "";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (inFlight || placeButton.disabled) return; // also while the total shown is not the current one
  clearErrors();
  const body = collect();
  if (!validate(body)) return;
  send(body, currentAttempt());
});

async function send(body, attempt, tries = 0) {
  setBusy(true);
  let placed;
  try {
    placed = await api("/api/checkout", {
      method: "POST",
      body,
      headers: { "Idempotency-Key": attempt.key },
      auth: "session",
      timeoutMs: 60000,
    });
  } catch (error) {
    if (error instanceof ApiError && error.code === "checkout_in_progress" && tries < 10) {
      // The first request of this key still runs: ask again, same key.
      submitStatus.textContent = "Your order is still being processed…";
      setTimeout(() => send(body, attempt, tries + 1), 1500);
      return;
    }
    setBusy(false);
    return failed(error, body, attempt);
  }
  onPlaced(placed);
}

function onPlaced(placed) {
  if (placed.order_access_token) saveOrderToken(placed.order_id, placed.order_access_token);
  try {
    sessionStorage.setItem("shop.last_order", JSON.stringify({ checkout_id: placed.checkout_id, order_id: placed.order_id, totals: placed.totals }));
  } catch {
    /* ignore */
  }
  endAttempt();
  noteCount(0);
  submitStatus.textContent = "Order placed. Opening your confirmation…";
  location.assign(`/confirmation/${encodeURIComponent(placed.checkout_id)}`);
}

const FINAL_UNAVAILABLE = /_unavailable$|^payment_processor_error$|^internal$/;

function uncertain(error) {
  // No answer, or the host (not checkout) answered: the order may or may not exist.
  return error instanceof NetworkError || (error instanceof ApiError && error.status >= 500 && !FINAL_UNAVAILABLE.test(error.code));
}

async function failed(error, body, attempt) {
  if (uncertain(error)) {
    // Same attempt, same key: a resend can never place a second order.
    showAlert("network", "alert-warn",
      el("p", {}, el("strong", {}, "We could not confirm your order. "),
        error instanceof NetworkError ? "The connection to the shop failed." : `The shop answered: ${describeError(error)}`),
      el("p", {}, "Retrying is safe: you will not be charged twice."),
      el("div", { class: "actions" }, button("Retry", "checkout-retry", () => {
        alertBox.hidden = true;
        send(body, attempt);
      }, "btn")));
    return;
  }
  const code = error.code;
  const details = error.details || {};
  if (code === "idempotency_key_reused") return reused(error, body);
  failAttempt(attempt); // an answer: the next press is a new attempt with a new key

  if (code === "out_of_stock" || code === "unknown_sku") return outOfStock(error);
  if (error.status === 402) {
    const messages = {
      card_declined: "Your card was declined. Nothing was charged. Please try another card.",
      insufficient_funds: "Your card was declined for insufficient funds. Nothing was charged. Please try another card.",
      card_expired: "This card has expired. Check the expiry date or use another card.",
    };
    cardAlert.dataset.code = code;
    cardAlert.textContent = messages[code] || describeError(error);
    cardAlert.hidden = false;
    if (code === "card_expired") {
      setFieldError("card-exp-month", describeError(error));
      $("card-exp-month").focus();
    } else {
      setFieldError("card-number", "Try another card.");
      $("card-number").focus();
      $("card-number").select();
    }
    return;
  }
  if (code === "unauthorized") {
    updateSignedInNote();
    showAlert("session", "alert-warn", el("p", {}, "Your session has ended, so the order was not placed. "),
      el("p", {}, el("a", { href: "/account" }, "Sign in again"), " or press “Place order” to order as a guest."));
    return;
  }
  if (code === "empty_cart") {
    showAlert("empty", "alert-info", el("p", {}, "Your cart is empty. "), el("p", {}, el("a", { href: "/" }, "Browse the catalog")));
    return loadCart();
  }
  if (code === "unknown_country") {
    setFieldError("country", describeError(error));
    country.focus();
    return showAlert("error", "alert-error", el("p", {}, describeError(error)));
  }
  if (code === "too_heavy" || code === "cannot_ship") {
    setFieldError("speed-standard", describeError(error));
    return showAlert("error", "alert-error", el("p", {}, describeError(error)), el("p", {}, el("a", { href: "/cart" }, "Change your cart")));
  }
  const id = fieldId(error.field);
  if (id) {
    setFieldError(id, describeError(error));
    $(id).focus();
    return;
  }
  if (error.status === 503) {
    const what = code === "payment_processor_error" ? "The payment processor had a problem." : "A part of the shop is not answering right now.";
    showAlert("error", "alert-error", el("p", {}, `${what} Nothing was charged or reserved.`), el("p", {}, "Press “Place order” to try again."));
    return;
  }
  showAlert("error", "alert-error", el("p", {}, describeError(error)));
}

/** 409 out_of_stock (skus, shortages) or 422 unknown_sku (skus): name them, offer removal. */
function outOfStock(error) {
  const details = error.details || {};
  const skus = Array.isArray(details.skus) ? details.skus : [];
  const shortages = new Map((Array.isArray(details.shortages) ? details.shortages : []).map((s) => [s.sku, s]));
  const nameOf = (sku) => lines.find((l) => l.sku === sku)?.product?.name || sku;
  const items = el("ul", { dataset: { testid: "out-of-stock-items" } }, ...skus.map((sku) => {
    const s = shortages.get(sku);
    const text = s ? `${nameOf(sku)}: you asked for ${s.requested}, ${s.available === 0 ? "none are" : `only ${s.available} ${s.available === 1 ? "is" : "are"}`} available` : `${nameOf(sku)}: ${error.code === "unknown_sku" ? "no longer sold" : "not available"}`;
    return el("li", { dataset: { sku } }, text);
  }));
  const remove = button(skus.length === 1 ? "Remove it from my cart" : "Remove them from my cart", "remove-out-of-stock", async () => {
    remove.disabled = true;
    markStale(); // the cart changes: no total until the new one is quoted
    try {
      for (const sku of skus) {
        await removeItem(sku).catch((e) => {
          if (e.code !== "not_in_cart") throw e;
        });
      }
      alertBox.hidden = true;
      await loadCart();
      submitStatus.textContent = lines.length ? "Removed. Check the new total, then place your order." : "Removed. Your cart is now empty.";
      if (lines.length) placeButton.focus();
    } catch (e) {
      remove.disabled = false;
      showAlert("out_of_stock", "alert-error", el("p", {}, `Could not update your cart: ${describeError(e)}`));
      await loadCart(); // what the cart holds now, and its quote
    }
  }, "btn");
  showAlert("out_of_stock", "alert-error",
    el("p", {}, el("strong", {}, error.code === "unknown_sku" ? "Some items are no longer sold:" : "Some items are out of stock:")),
    items,
    el("p", {}, "Nothing was charged."),
    el("div", { class: "actions" }, remove, el("a", { class: "btn btn-secondary", href: "/cart" }, "Edit cart")));
}

/** The key went out with other details before (an answer was lost, then the form changed). */
async function reused(error, body) {
  const checkoutId = error.details && error.details.checkout_id;
  if (checkoutId) {
    try {
      const earlier = await api(`/api/checkout/${encodeURIComponent(checkoutId)}`);
      if (earlier.status === "completed") {
        endAttempt();
        noteCount(0);
        location.assign(`/confirmation/${encodeURIComponent(checkoutId)}`);
        return;
      }
      if (earlier.status === "failed") {
        // The earlier attempt ended without an order: this is a new attempt.
        failAttempt(loadAttempt() || { key: "" });
        return send(body, currentAttempt());
      }
    } catch {
      /* fall through */
    }
  }
  showAlert("error", "alert-warn", el("p", {}, "An earlier attempt of this order is still being processed. Please wait a moment, then check "), el("p", {}, el("a", { href: "/account" }, "your orders")));
}

// ---- page set-up -----------------------------------------------------------

function fillExpiry() {
  const month = $("card-exp-month");
  for (let m = 1; m <= 12; m++) month.append(el("option", { value: m }, String(m).padStart(2, "0")));
  const year = $("card-exp-year");
  const now = new Date().getFullYear();
  for (let y = now; y <= now + 15; y++) year.append(el("option", { value: y }, String(y)));
}

function updateSignedInNote() {
  const note = $("signed-in-note");
  const session = getSession();
  note.replaceChildren(session
    ? "You are signed in: this order will be saved to your account."
    : el("span", {}, "Checking out as a guest. ", el("a", { href: "/account" }, "Sign in"), " to keep your orders in an account."));
  note.hidden = false;
}

async function prefill() {
  updateSignedInNote();
  if (!getSession()) return;
  try {
    const me = await api("/api/customers/me", { auth: "session" });
    setCachedCustomer(me);
    if (!$("email").value) $("email").value = me.email;
    const address = me.addresses && me.addresses[0];
    if (!$("name").value) $("name").value = address ? address.name : me.name;
    if (address) {
      for (const f of ["line1", "line2", "city", "postal_code"]) if (!$(f).value && address[f]) $(f).value = address[f];
      if (!country.value && address.country) {
        country.value = address.country;
        inputsChanged();
      }
    }
  } catch {
    updateSignedInNote(); // a 401 signed the shopper out
  }
}

fillCountrySelect(country);
fillExpiry();
document.getElementById("test-cards").addEventListener("click", (event) => {
  const number = event.target.closest("[data-card]")?.dataset.card;
  if (!number) return;
  $("card-number").value = number.replace(/(\d{4})(?=\d)/g, "$1 ");
  setFieldError("card-number", "");
  cardAlert.hidden = true;
  if (!$("card-exp-month").value) $("card-exp-month").value = "12";
  if (!$("card-exp-year").value) $("card-exp-year").value = String(new Date().getFullYear() + 3);
  if (!$("card-cvc").value) $("card-cvc").value = "123";
  $("card-number").focus();
});
// Any input of the quote: the totals are stale from this moment on.
country.addEventListener("change", inputsChanged);
country.addEventListener("input", inputsChanged);
form.querySelectorAll("input[name=shipping]").forEach((radio) => radio.addEventListener("change", inputsChanged));
// A field the server named is fixed once it changes.
form.addEventListener("input", (event) => {
  if (event.target.id && event.target.getAttribute("aria-invalid") === "true") setFieldError(event.target.id, "");
  if (event.target.id === "card-number") cardAlert.hidden = true;
});
placeButton.disabled = true;
if (loadAttempt()?.state === "open") {
  submitStatus.textContent = "An earlier attempt of this order did not finish; placing it again is safe (you will not be charged twice).";
}
loadCart();
prefill();
