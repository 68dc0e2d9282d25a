// d. A double click on "Place order", then a rapid second click while the
// order is in flight: exactly one order and one payment authorization
// (checked through the API as admin: the orders of the shopper's email, the
// checkout's journal, the payment its key made).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, newPage, shot, api, admin, uniqueEmail, fillCheckout, waitForQuote, waitForConfirmation, assertConfirmationSteps, addFromProductPage, assertNoPageErrors } from "./helper.mjs";

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test("d. double and rapid clicks on place order make one order and one authorization", { timeout: 90_000 }, async () => {
  const page = await newPage(browser);
  const email = uniqueEmail("d-double");
  await addFromProductPage(page, "BRW-005", 1);
  await page.goto(`${BASE}/checkout`);
  await page.locator("#place-order:not([disabled])").waitFor();
  await fillCheckout(page, { email });
  await waitForQuote(page);

  // Hold every POST /api/checkout for a while, so the later clicks land while it is in flight.
  const posts = [];
  await page.route("**/api/checkout", async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    posts.push(route.request().headers()["idempotency-key"]);
    await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  });
  await page.locator("#place-order").dblclick();
  // A rapid second click, and a press of Enter in a field (another way to submit).
  await page.evaluate(() => {
    document.getElementById("place-order").click();
    document.getElementById("checkout-form").requestSubmit();
  });
  await page.locator("#email").press("Enter").catch(() => {});
  assert.equal(await page.locator("#place-order").isDisabled(), true, "the button is disabled while the order is placed");
  await shot(page, "d", "1-in-flight");

  const checkoutId = await waitForConfirmation(page);
  await assertConfirmationSteps(page, checkoutId);
  await shot(page, "d", "2-confirmation");
  assert.equal(posts.length, 1, `the page sent one POST /api/checkout (keys: ${posts})`);

  // Through the API, as admin: one order for this email ...
  const orders = await admin("GET", `/api/orders?customer=${encodeURIComponent(email)}`);
  assert.equal(orders.status, 200, JSON.stringify(orders.body));
  assert.equal(orders.body.total, 1, JSON.stringify(orders.body));
  assert.equal(orders.body.orders.length, 1);
  // ... one authorize step in the checkout's journal ...
  const checkout = (await api("GET", `/api/checkout/${checkoutId}`)).body;
  assert.equal(checkout.steps.filter((s) => s.name === "authorize_payment").length, 1);
  assert.equal(checkout.order_id, orders.body.orders[0].id);
  // ... and the one payment it made (its authorization key is the checkout's).
  const payment = await api("GET", `/api/payments?idempotency_key=${encodeURIComponent(`${checkoutId}:authorize`)}`);
  assert.equal(payment.status, 200, JSON.stringify(payment.body));
  assert.equal(payment.body.id, checkout.authorization_id, JSON.stringify(payment.body));
  assert.equal(payment.body.amount.amount, checkout.totals.grand_total);
  assertNoPageErrors(page);
  await page.context().close();
});
