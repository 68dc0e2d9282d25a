// Shared by the storefront's browser scenarios (*.test.mjs beside this file):
// the browser, pages with error capture, the shop's API, screenshots, and
// the steps many scenarios share (fill the checkout, wait for the quote).
//
// Run them with `cargo xtask browser` (shop-host; `--runtime spin|both`), which
// installs playwright-core outside the repository, starts the shops and sets
// the environment below; `cargo xtask test` runs them last. By hand, against
// a shop you started (e.g. `cargo xtask up`):
//   cd tests/browser && npm ci && SHOP_ADMIN_TOKEN=dev-admin-token node --test --test-concurrency=1 .
// (h then needs SHOP_HELD_BASE_URL, a shop started with
// `--variable fulfillment_auto_ship=false`, to cancel an order still `placed`.)
//
// Environment (set by `cargo xtask browser`):
//   SHOP_BASE_URL      the shop, e.g. http://127.0.0.1:41234 (default http://127.0.0.1:3000)
//   SHOP_HELD_BASE_URL a second shop whose warehouse waits (fulfillment_auto_ship=false), for h
//   SHOP_ADMIN_TOKEN   the admin token that shop was started with (default dev-admin-token)
//   SHOP_SCREENSHOTS   where screenshots go (default <os tmpdir>/shop-browser-screenshots)
//   CHROMIUM           the browser (default /usr/bin/chromium)
//   NODE_PATH          where playwright-core is, when it is not in ./node_modules

import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";

// require() honours NODE_PATH (ESM imports do not), so the dependency can
// live in a cache outside the repository.
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

export let BASE = (process.env.SHOP_BASE_URL || "http://127.0.0.1:3000").replace(/\/$/, "");
/** Points this file's scenarios (and api()) at another shop. */
export function useBase(url) {
  BASE = url.replace(/\/$/, "");
}
export const ADMIN_TOKEN = process.env.SHOP_ADMIN_TOKEN || "dev-admin-token";
export const SHOTS = process.env.SHOP_SCREENSHOTS || join(tmpdir(), "shop-browser-screenshots");
mkdirSync(SHOTS, { recursive: true });

export const APPROVE = "4242424242424242";
export const DECLINE = "4000000000000002";
/** A card expiry year the payment service takes (a few years ahead). */
export const EXP_YEAR = new Date().getFullYear() + 3;

/** A value no earlier run used: emails, cart ids, keys. */
export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
}
export function uniqueEmail(prefix) {
  return `${unique(prefix)}@example.com`;
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage", "--hide-scrollbars"],
  });
}

/**
 * A fresh context (its own storage: a new cart) and page. Uncaught page
 * errors are collected in `page.errors`; `assertNoPageErrors(page)` checks.
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(`${page.url()}: ${error.message}`));
  page.on("console", (msg) => {
    // A failed request's "Failed to load resource" is how a 402/409 shows; not a bug.
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) page.errors.push(`${page.url()}: console: ${msg.text()}`);
  });
  return page;
}

export function assertNoPageErrors(page) {
  assert.deepEqual(page.errors, [], "the pages raised errors");
}

/** Writes `<scenario>-<name>.png` to SHOTS and returns its path. */
export async function shot(page, scenario, name, options = {}) {
  const path = join(SHOTS, `${scenario}-${name}.png`);
  await page.screenshot({ path, fullPage: true, ...options });
  return path;
}

/** The shop's API: `{status, body}` (body parsed when JSON). */
export async function api(method, path, { body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h["content-type"] = "application/json";
  if (token) h.authorization = `Bearer ${token}`;
  const response = await fetch(`${BASE}${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: response.status, body: parsed };
}

export function admin(method, path, body) {
  return api(method, path, { body, token: ADMIN_TOKEN });
}

/** The checkout id an Idempotency-Key made: the same key with another body names it (422 idempotency_key_reused). */
export async function checkoutIdOfKey(key) {
  const r = await api("POST", "/api/checkout", {
    headers: { "idempotency-key": key },
    body: { cart_id: "nobody-cart", email: "probe@example.com", address: { name: "P", line1: "x 1", city: "Berlin", postal_code: "10115", country: "DE" }, shipping: "express", card: { number: APPROVE, exp_month: 12, exp_year: EXP_YEAR, cvc: "123" } },
  });
  assert.equal(r.status, 422, JSON.stringify(r.body));
  assert.equal(r.body.error.code, "idempotency_key_reused");
  return r.body.error.checkout_id;
}

/** Sets a sku's stock on hand (admin). */
export async function setStock(sku, onHand) {
  const r = await admin("PUT", `/api/inventory/${encodeURIComponent(sku)}`, { on_hand: onHand });
  assert.ok(r.status < 300, `PUT /api/inventory/${sku}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** The price shown as text, like "€12.90", in cents. */
export function cents(text) {
  const digits = String(text).replace(/[^\d.,]/g, "").replace(/,/g, "");
  assert.match(digits, /^\d+(\.\d{2})?$/, `not a price: ${JSON.stringify(text)}`);
  return Math.round(Number(digits) * 100);
}

export const euro = (amount) => `€${(amount / 100).toFixed(2)}`;

/** Polls `fn` until it returns a truthy value (then returns it), or fails after `ms`. */
export async function eventually(fn, ms = 15_000, what = "the condition") {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) assert.fail(`${what} did not hold within ${ms} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Text of a locator, trimmed. */
export async function text(locator) {
  return (await locator.textContent())?.trim() ?? "";
}

// ---- shared steps --------------------------------------------------------------

/** Opens a product page and adds `quantity` of it through the page. */
export async function addFromProductPage(page, sku, quantity = 1) {
  await page.goto(`${BASE}/products/${sku}`);
  await page.locator("#product[data-sku]").waitFor();
  await page.locator("#add-to-cart:not([disabled])").waitFor();
  await page.locator("#quantity").fill(String(quantity));
  await page.locator("#add-to-cart").click();
  await page.getByTestId("view-cart").waitFor();
}

/** The checkout form filled for a guest in Germany, standard shipping. */
export async function fillCheckout(page, { email, card = APPROVE, name = "Ada Lovelace" }) {
  await page.locator("#email").fill(email);
  await page.locator("#name").fill(name);
  await page.locator("#line1").fill("Hauptstr. 1");
  await page.locator("#postal_code").fill("10115");
  await page.locator("#city").fill("Berlin");
  await page.locator("#country").selectOption("DE");
  await page.locator("#speed-standard").check();
  await fillCard(page, card);
}

export async function fillCard(page, number) {
  await page.locator("#card-number").fill(number);
  await page.locator("#card-exp-month").selectOption("12");
  await page.locator("#card-exp-year").selectOption(String(EXP_YEAR));
  await page.locator("#card-cvc").fill("123");
}

/**
 * Waits until the live quote shows shipping and VAT for Germany and returns
 * what it shows: {items, shipping, tax, total, rate} (cents; rate the text).
 */
export async function waitForQuote(page, { items } = {}) {
  // Until the shown figures agree with each other (and with `items`, when
  // given): the items line updates at once, the rest after the debounced quote.
  await page.waitForFunction((items) => {
    const t = (id) => document.getElementById(id)?.textContent.trim() ?? "";
    const c = (id) => Math.round(Number(t(id).replace(/[^\d.]/g, "")) * 100);
    const shown = /€/.test(t("price-standard")) && /€/.test(t("sum-shipping")) && /€/.test(t("sum-tax")) && /%/.test(t("vat-rate")) && /€/.test(t("sum-total")) && !/Updating/.test(t("quote-status"));
    return shown && c("sum-total") === c("sum-items") + c("sum-shipping") + c("sum-tax") && (items == null || c("sum-items") === items);
  }, items ?? null, { timeout: 15_000 });
  const read = async (id) => text(page.locator(`#${id}`));
  return {
    items: cents(await read("sum-items")),
    shipping: cents(await read("sum-shipping")),
    tax: cents(await read("sum-tax")),
    total: cents(await read("sum-total")),
    rate: await read("vat-rate"),
    status: await read("quote-status"),
  };
}

/** After "Place order": the confirmation page's checkout id. */
export async function waitForConfirmation(page) {
  await page.waitForURL(/\/confirmation\/[A-Za-z0-9_-]+$/, { timeout: 60_000 });
  return decodeURIComponent(new URL(page.url()).pathname.split("/")[2]);
}

/**
 * The confirmation page shows every step of the checkout (as the API names
 * them, in order, each `ok`) and the checkout completed. Returns the API's checkout.
 */
export async function assertConfirmationSteps(page, checkoutId) {
  await page.locator('#checkout-status[data-status="completed"]').waitFor();
  const r = await api("GET", `/api/checkout/${encodeURIComponent(checkoutId)}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.status, "completed");
  const expected = r.body.steps.map((s) => s.name);
  assert.ok(expected.length >= 5, `the checkout has its steps: ${expected}`);
  const shown = await page.locator("#timeline [data-testid=step]").evaluateAll((nodes) => nodes.map((n) => [n.dataset.step, n.dataset.outcome, n.textContent]));
  assert.deepEqual(shown.map(([step]) => step), expected, "the timeline shows every step, in order");
  for (const [step, outcome, words] of shown) {
    assert.equal(outcome, "ok", `${step} is ok`);
    assert.match(words, /\d+(\.\d)? (ms|s)/, `${step} shows its duration: ${words}`);
  }
  assert.match(await text(page.locator("#confirmation-heading")), /order is placed/i);
  return r.body;
}

/** The confirmation page's order status reaches `status` by itself (polling), within `ms`. */
export async function waitForOrderStatus(page, status, ms = 60_000) {
  await page.locator(`#order-status[data-status="${status}"]`).waitFor({ timeout: ms });
  assert.equal((await text(page.locator("#order-status"))).toLowerCase(), status);
}
