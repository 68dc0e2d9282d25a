// d. A double click on "Place order", then a rapid second click while the
// order is in flight: exactly one order and one payment authorization
// (checked through the API as admin: the orders of the shopper's email, the
// checkout's journal, the payment its key made).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, newPage, shot, api, admin, uniqueEmail, text, cents, fillCheckout, waitForQuote, waitForConfirmation, assertConfirmationSteps, addFromProductPage, assertNoPageErrors } from "./helper.mjs";

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

// The total shown is the total charged: a press of "Place order" right after
// the speed changes (while the 300 ms debounce and the quote requests run,
// held longer here) places nothing until the page shows the quote for the
// new speed, and the checkout's grand_total is that shown total.
test("d. place order right after changing the speed charges the total shown", { timeout: 60_000 }, async () => {
  const page = await newPage(browser);
  const email = uniqueEmail("d-speed");
  await addFromProductPage(page, "BRW-005", 1);
  await page.goto(`${BASE}/checkout`);
  await page.locator("#place-order:not([disabled])").waitFor();
  await fillCheckout(page, { email });
  let standard = await waitForQuote(page);

  // A quote that fails: an error with a retry, and no placing meanwhile.
  await page.route("**/api/tax/quote", (route) => route.abort("connectionreset"), { times: 1 });
  await page.locator("#country").selectOption("AT");
  await page.getByTestId("quote-retry").waitFor();
  assert.equal(await page.locator("#place-order").isDisabled(), true, "no placing while the quote failed");
  assert.equal(await page.locator("#quote").getAttribute("data-state"), "error");
  assert.doesNotMatch(await text(page.locator("#sum-total")), /€/);
  await page.getByTestId("quote-retry").click();
  await waitForQuote(page);
  assert.equal(await page.locator("#place-order").isDisabled(), false, "the retried quote arrived");
  await page.locator("#country").selectOption("DE");
  standard = await waitForQuote(page);

  // Slow quotes, so "at once" is well inside the window; note what the page shows when the checkout goes out.
  await page.route("**/api/shipping/quote", async (route) => {
    await new Promise((r) => setTimeout(r, 400));
    await route.continue();
  });
  const sent = [];
  await page.route("**/api/checkout", async (route) => {
    if (route.request().method() !== "POST") return route.continue();
    const entry = { shipping: route.request().postDataJSON().shipping, shownTotal: await text(page.locator("#sum-total")), quoteStatus: await text(page.locator("#quote-status")) };
    sent.push(entry);
    // Passed on as is; its answer kept here (the page navigates away from it at once).
    const response = await route.fetch();
    entry.status = response.status();
    entry.answer = await response.json();
    await route.fulfill({ response });
  });

  await page.locator("#speed-express").check();
  // At once: a click and a submit in the same task as the change.
  const right = await page.evaluate(() => {
    const button = document.getElementById("place-order");
    const state = { disabled: button.disabled, busy: document.getElementById("quote").getAttribute("aria-busy"), total: document.getElementById("sum-total").textContent };
    button.click();
    document.getElementById("checkout-form").requestSubmit();
    return state;
  });
  assert.equal(right.disabled, true, "Place order is disabled while the quote for the new speed is due");
  assert.equal(right.busy, "true", "the totals are marked busy");
  assert.match(right.total, /Updating/, "the old total is not shown as the price");
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(sent.length, 0, `nothing was sent before the new quote arrived: ${JSON.stringify(sent)}`);

  // The quote for express arrives; then the order can be placed, at the total shown.
  const express = await waitForQuote(page);
  assert.ok(express.shipping > standard.shipping, `express costs more (${express.shipping} vs ${standard.shipping})`);
  assert.equal(await page.locator("#place-order").isDisabled(), false);
  await page.locator("#place-order").click();
  const checkoutId = await waitForConfirmation(page);
  assert.equal(sent.length, 1, JSON.stringify(sent));
  assert.equal(sent[0].status, 201, JSON.stringify(sent[0]));
  const grand = sent[0].answer.totals.grand_total;
  assert.equal(sent[0].shipping, "express");
  assert.equal(cents(sent[0].shownTotal), grand, `the page showed ${sent[0].shownTotal} when it placed the order; the checkout's grand_total is ${grand}`);
  const checkout = (await api("GET", `/api/checkout/${checkoutId}`)).body;
  assert.equal(checkout.totals.grand_total, express.total, "GET /api/checkout/{id}: charged what was shown");
  assertNoPageErrors(page);
  await page.context().close();
});
