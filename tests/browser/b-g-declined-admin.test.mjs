// b. A declined card: the page says so and keeps the form filled; the
// approving card on the same page then places the order.
// g. The operator page, /admin: the admin token, stock levels, and b's
// declined checkout drawn as its saga (failed and compensated steps).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch, newPage, shot, api, uniqueEmail, text, fillCheckout, fillCard, waitForQuote, waitForConfirmation, assertConfirmationSteps, addFromProductPage, assertNoPageErrors, checkoutIdOfKey, admin, DECLINE, APPROVE, BASE, ADMIN_TOKEN, EXP_YEAR, setStock } from "./helper.mjs";

let browser;
let declinedCheckout = null; // b's, for g
before(async () => (browser = await launch()));
after(async () => browser?.close());

test("b. a declined card keeps the form; the approving card then places the order", { timeout: 90_000 }, async () => {
  const page = await newPage(browser);
  const email = uniqueEmail("b-declined");
  await addFromProductPage(page, "BRW-001", 1);
  await page.goto(`${BASE}/checkout`);
  await page.locator("#place-order:not([disabled])").waitFor();
  await fillCheckout(page, { email, card: DECLINE });
  await waitForQuote(page);
  await page.locator("#place-order").click();

  // Declined: said so, nothing charged, the form as it was.
  await page.locator("#card-alert:not([hidden])").waitFor();
  assert.equal(await page.locator("#card-alert").getAttribute("data-code"), "card_declined");
  assert.match(await text(page.locator("#card-alert")), /declined/i);
  assert.match(await text(page.locator("#card-number-error")), /another card/i);
  assert.match(page.url(), /\/checkout$/, "still on the checkout page");
  const values = await page.evaluate(() => Object.fromEntries(["email", "name", "line1", "postal_code", "city", "country", "card-exp-month", "card-cvc"].map((id) => [id, document.getElementById(id).value])));
  assert.deepEqual(values, { email, name: "Ada Lovelace", line1: "Hauptstr. 1", postal_code: "10115", city: "Berlin", country: "DE", "card-exp-month": "12", "card-cvc": "123" });
  assert.equal((await page.locator("#card-number").inputValue()).replace(/\s/g, ""), DECLINE);
  assert.ok(await page.locator("#speed-standard").isChecked());
  assert.equal(await page.locator("#place-order").isDisabled(), false, "the shopper can try again");
  assert.equal(await page.getByTestId("summary-line").count(), 1, "the cart is still there");
  await shot(page, "b", "1-declined");

  // Which checkout that was: the API says it failed at the payment.
  const attempt = await page.evaluate(() => JSON.parse(sessionStorage.getItem("shop.checkout_attempt")));
  assert.equal(attempt.state, "failed");
  const declinedId = await checkoutIdOfKey(attempt.key);
  const declined = await api("GET", `/api/checkout/${declinedId}`);
  assert.equal(declined.body.status, "failed");
  assert.equal(declined.body.error.code, "card_declined");
  declinedCheckout = declinedId;

  // Only the card changes; then success, on the same page.
  await fillCard(page, APPROVE);
  await page.locator("#place-order").click();
  const checkoutId = await waitForConfirmation(page);
  assert.notEqual(checkoutId, declinedId, "a new attempt, a new checkout");
  await assertConfirmationSteps(page, checkoutId);
  await page.locator("#order-status[data-status]").waitFor();
  await shot(page, "b", "2-confirmation");
  const orders = await admin("GET", `/api/orders?customer=${encodeURIComponent(email)}`);
  assert.equal(orders.body.total, 1, "one order: the declined attempt made none");
  assertNoPageErrors(page);
  await page.context().close();
});

test("g. the operator page: token, stock levels, the declined checkout's saga graph", { timeout: 60_000 }, async () => {
  // b's declined checkout, or (b was not run, or failed early) one made through the API.
  let checkoutId = declinedCheckout;
  if (!checkoutId) {
    const cart = `g-cart-${Date.now()}`;
    await api("POST", `/api/carts/${cart}/items`, { body: { sku: "BRW-002", quantity: 1 } });
    const key = `g-${Date.now()}-${Math.random()}`;
    const r = await api("POST", "/api/checkout", {
      headers: { "idempotency-key": key },
      body: { cart_id: cart, email: uniqueEmail("g-admin"), address: { name: "G", line1: "Hauptstr. 1", city: "Berlin", postal_code: "10115", country: "DE" }, shipping: "standard", card: { number: DECLINE, exp_month: 12, exp_year: EXP_YEAR, cvc: "123" } },
    });
    assert.equal(r.status, 402, JSON.stringify(r.body));
    checkoutId = await checkoutIdOfKey(key);
  }
  const checkout = (await api("GET", `/api/checkout/${checkoutId}`)).body;
  assert.equal(checkout.status, "failed");

  const lowBefore = (await api("GET", "/api/inventory/CMP-006")).body; // no scenario buys it
  await setStock("CMP-006", lowBefore.reserved + 3);
  const page = await newPage(browser);
  await page.goto(`${BASE}/admin`);
  await page.getByTestId("auth").waitFor();
  assert.equal(await page.getByTestId("console").isVisible(), false, "nothing shows before the token");
  // A wrong token is refused, the right one opens the console.
  await page.getByTestId("auth-token").fill("not-the-token");
  await page.getByTestId("auth-submit").click();
  await page.getByTestId("auth-error").filter({ hasText: /refused/ }).waitFor();
  await page.getByTestId("auth-token").fill(ADMIN_TOKEN);
  await page.getByTestId("auth-submit").click();
  await page.getByTestId("console").waitFor();

  // Stock levels: every product's row, the numbers the API has.
  await page.locator('[data-testid=stock-row][data-sku="MUG-002"] [data-testid=stock-on-hand]').waitFor();
  const level = (await api("GET", "/api/inventory/MUG-002")).body;
  const row = page.locator('[data-testid=stock-row][data-sku="MUG-002"]');
  assert.equal(await text(row.getByTestId("stock-on-hand")), String(level.on_hand));
  assert.equal(await text(row.getByTestId("stock-reserved")), String(level.reserved));
  assert.match(await text(row.getByTestId("stock-available")), new RegExp(`^${level.available}\\b`));
  // A low level reads "3 low": the number, a gap, the pill.
  const lowCell = page.locator('[data-testid=stock-row][data-sku="CMP-006"] [data-testid=stock-available]');
  assert.equal(await text(lowCell), "3 low");
  const gap = await lowCell.locator(".adm-pill").evaluate((pill) => {
    const range = document.createRange();
    range.selectNodeContents(pill.parentElement.firstChild);
    return pill.getBoundingClientRect().left - range.getBoundingClientRect().right;
  });
  assert.ok(gap >= 3, `the low pill keeps a gap after the number (${gap}px)`);
  await setStock("CMP-006", lowBefore.on_hand);
  const products = (await api("GET", "/api/products?per_page=100")).body.total;
  assert.equal(await page.getByTestId("stock-row").count(), products, "a row per product");
  await shot(page, "g", "1-stock");
  // Restock from the page: the API has the new number, the row shows it.
  const apron = (await api("GET", "/api/inventory/APP-003")).body;
  const restock = page.locator('[data-testid=restock-form][data-sku="APP-003"]');
  await restock.getByTestId("restock-input").fill(String(apron.on_hand + 5));
  await restock.getByTestId("restock-submit").click();
  await page.locator('[data-testid=stock-row][data-sku="APP-003"] [data-testid=stock-on-hand]', { hasText: String(apron.on_hand + 5) }).waitFor();
  assert.equal((await api("GET", "/api/inventory/APP-003")).body.on_hand, apron.on_hand + 5);

  // The declined checkout as its saga.
  await page.getByTestId("saga-id").fill(checkoutId);
  await page.getByTestId("saga-submit").click();
  await page.getByTestId("saga-view").waitFor();
  await page.locator("[data-testid=saga-svg] [data-testid=saga-node]").first().waitFor();
  assert.equal(await text(page.getByTestId("saga-checkout-id")), checkoutId);
  assert.equal(await text(page.getByTestId("saga-status")), "failed");
  assert.match(await text(page.getByTestId("saga-error-code")), /card_declined/);
  const nodes = await page.locator("[data-testid=saga-svg] [data-testid=saga-node]").evaluateAll((n) => n.map((g) => ({ step: g.dataset.step, outcome: g.dataset.outcome, cls: g.getAttribute("class") })));
  const byStep = Object.fromEntries(nodes.map((n) => [n.step, n]));
  for (const step of checkout.steps) {
    const node = byStep[step.name];
    assert.ok(node, `the graph has a node for ${step.name}: ${JSON.stringify(nodes)}`);
    const outcome = step.outcome; // ok, failed, compensated (a failed step may carry its compensation too)
    assert.equal(node.outcome, outcome, `${step.name}'s outcome`);
    assert.match(node.cls, new RegExp(`\\bis-${outcome}\\b`), `${step.name}'s node is drawn as ${outcome}`);
  }
  assert.equal(byStep.authorize_payment?.outcome, "failed", "the payment step failed");
  assert.match(byStep.authorize_payment.cls, /\bis-failed\b/);
  const compensated = nodes.filter((n) => n.outcome === "compensated");
  assert.ok(compensated.some((n) => n.step === "reserve_stock"), `the reservation was compensated: ${JSON.stringify(nodes)}`);
  assert.ok(compensated.every((n) => /\bis-compensated\b/.test(n.cls)));
  const compensations = await page.locator("[data-testid=saga-compensation]").evaluateAll((n) => n.map((g) => g.dataset.compensation));
  assert.ok(compensations.includes("release_stock"), `the path back shows release_stock: ${compensations}`);
  assert.equal(await page.locator('[data-testid=saga-end][data-status="failed"]').count(), 1);
  await page.getByTestId("saga-graph").scrollIntoViewIfNeeded();
  await shot(page, "g", "2-saga");
  assertNoPageErrors(page);
  await page.context().close();
});
