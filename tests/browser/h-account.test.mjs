// h. Sign up and sign in on the account page, place an order signed in, see
// it in "your orders", cancel it there; the mailbox shows its mails.
//
// Cancelling needs an order that is still `placed`: with fulfillment's
// auto_ship (the shop's default) it ships at once. `cargo xtask browser`
// therefore also starts a shop whose warehouse waits
// (fulfillment_auto_ship=false) and names it in SHOP_HELD_BASE_URL; this
// scenario runs there when it is set, else against SHOP_BASE_URL (and then
// fails if the order left `placed` before the cancel).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, useBase, api, admin, launch, newPage, shot, uniqueEmail, text, fillCard, waitForQuote, waitForConfirmation, assertConfirmationSteps, assertNoPageErrors, eventually } from "./helper.mjs";

if (process.env.SHOP_HELD_BASE_URL) useBase(process.env.SHOP_HELD_BASE_URL);

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test("h. sign up, sign in, order signed in, see it in my orders, cancel it, the mailbox", { timeout: 120_000 }, async () => {
  const page = await newPage(browser);
  const email = uniqueEmail("h-account");
  const password = "correct horse battery staple";

  // Sign up: signed in at once.
  await page.goto(`${BASE}/account`);
  await page.getByTestId("signed-out").waitFor();
  await page.locator("#signup-name").fill("Hedy Lamarr");
  await page.locator("#signup-email").fill(email);
  await page.locator("#signup-password").fill("short");
  await page.locator("#signup-submit").click();
  assert.match(await text(page.locator("#signup-password-error")), /at least 10/i, "a short password is refused on the page");
  await page.locator("#signup-password").fill(password);
  await page.locator("#signup-submit").click();
  await page.getByTestId("signed-in").waitFor();
  await page.locator("#welcome", { hasText: email }).waitFor();
  assert.equal(await text(page.locator("#welcome")), `Signed in as Hedy Lamarr (${email}).`);
  await page.getByTestId("no-orders").waitFor();
  await shot(page, "h", "1-signed-up");

  // Sign out, then sign in: a wrong password first.
  await page.locator("#sign-out").click();
  await page.getByTestId("signed-out").waitFor();
  assert.equal(await page.locator('#account-alert').getAttribute("data-kind"), "signed-out");
  assert.equal(await text(page.locator("#account-label")), "Sign in");
  await page.locator("#signin-email").fill(email);
  await page.locator("#signin-password").fill("not the password at all");
  await page.locator("#signin-submit").click();
  await page.locator("#signin-error:not([hidden])").waitFor();
  assert.match(await text(page.locator("#signin-error")), /do not match/);
  await page.locator("#signin-password").fill(password);
  await page.locator("#signin-submit").click();
  await page.getByTestId("signed-in").waitFor();
  await page.locator("#welcome", { hasText: email }).waitFor();
  assert.equal(await text(page.locator("#account-label")), "Account");
  const session = await page.evaluate(() => JSON.parse(sessionStorage.getItem("shop.session")));
  assert.match(session.token, /^sst_/);

  // An order, signed in: the checkout knows who it is for and prefills the email.
  await page.goto(`${BASE}/products/COF-002`);
  await page.locator("#add-to-cart:not([disabled])").click();
  await page.getByTestId("view-cart").waitFor();
  await page.goto(`${BASE}/checkout`);
  await page.locator("#place-order:not([disabled])").waitFor();
  assert.match(await text(page.locator("#signed-in-note")), /signed in/);
  await eventually(async () => (await page.locator("#email").inputValue()) === email, 10_000, "the email is prefilled");
  assert.equal(await page.locator("#name").inputValue(), "Hedy Lamarr");
  await page.locator("#line1").fill("Hauptstr. 1");
  await page.locator("#postal_code").fill("10115");
  await page.locator("#city").fill("Berlin");
  await page.locator("#country").selectOption("DE");
  await fillCard(page, "4242424242424242");
  await waitForQuote(page, { items: 1490 });
  await page.locator("#place-order").click();
  const checkoutId = await waitForConfirmation(page);
  const checkout = await assertConfirmationSteps(page, checkoutId);
  assert.equal(checkout.steps[0].name, "check_customer", "a signed-in checkout checks the customer first");
  await page.locator("#order-status[data-status]").waitFor();
  const orderId = checkout.order_id;

  // My orders: the order, placed, with a cancel button.
  await page.goto(`${BASE}/account`);
  const card = page.locator(`[data-testid=order-card][data-order-id="${orderId}"]`);
  await card.waitFor();
  assert.equal(await page.getByTestId("order-card").count(), 1);
  assert.match(await text(page.locator("#orders-status")), /^1 order\b/);
  assert.match(await text(card), /Summit Light Roast|COF-002/);
  const status = await card.getAttribute("data-status");
  assert.equal(status, "placed", `the order waits for the warehouse (is SHOP_HELD_BASE_URL set? base ${BASE})`);
  await shot(page, "h", "2-my-orders");

  // Cancel: ask, confirm, the card shows cancelled.
  await card.getByTestId("cancel-order").click();
  await card.getByTestId("confirm-cancel").click();
  const cancelled = page.locator(`[data-testid=order-card][data-order-id="${orderId}"][data-status="cancelled"]`);
  await cancelled.waitFor();
  assert.match(await text(cancelled.getByTestId("order-status").first()), /cancelled/i);
  const order = await api("GET", `/api/orders/${orderId}`, { token: session.token });
  assert.equal(order.body.status, "cancelled");
  const mine = await admin("GET", `/api/orders?customer=${encodeURIComponent(email)}`);
  assert.equal(mine.body.total, 1);

  // The mailbox: confirmed, then cancelled (events: refresh until both are in).
  await eventually(async () => {
    await page.locator("#mailbox-refresh").click();
    await page.waitForTimeout(500);
    const subjects = await page.locator("#mailbox [data-testid=message] .subject").allTextContents();
    return subjects.some((s) => s.includes(`${orderId} is confirmed`)) && subjects.some((s) => s.includes(`${orderId} was cancelled`));
  }, 30_000, "the mailbox shows the confirmation and the cancellation");
  const to = await page.locator("#mailbox [data-testid=message]").first().textContent();
  assert.match(to, new RegExp(email.replace(/[.+]/g, "\\$&")));
  await shot(page, "h", "3-cancelled-mailbox");
  assertNoPageErrors(page);
  await page.context().close();
});
