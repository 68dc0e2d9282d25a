// a. search → product page → two products in the cart → cart shows them and
// the subtotal → checkout (Germany, standard, the approving card) with the
// live shipping and VAT quote → the confirmation shows every saga step and
// the order reaches `paid` on the page by itself.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, newPage, shot, api, uniqueEmail, cents, euro, text, fillCheckout, waitForQuote, waitForConfirmation, assertConfirmationSteps, waitForOrderStatus, assertNoPageErrors } from "./helper.mjs";

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test("a. search, two products, cart, checkout, confirmation follows the order to paid", { timeout: 120_000 }, async () => {
  const page = await newPage(browser);
  const email = uniqueEmail("a-purchase");

  // Search the catalog for "mug": only matching cards.
  await page.goto(`${BASE}/`);
  await page.getByTestId("product-card").first().waitFor();
  await page.locator("#search").fill("mug");
  await page.locator("#search-submit").click();
  await page.waitForURL(/[?&]q=mug/);
  await page.waitForFunction(() => /of \d+ product/.test(document.getElementById("result-status")?.textContent || "") && !document.querySelector("#product-grid .skeleton"));
  const names = await page.getByTestId("product-link").allTextContents();
  assert.ok(names.length >= 2, `"mug" finds products: ${names}`);
  assert.ok(names.some((n) => /Enamel Camp Mug/.test(n)), `"mug" finds the Enamel Camp Mug: ${names}`);
  assert.ok(!names.some((n) => /Two-Person Tent/.test(n)), "the search filters");
  assert.match(await text(page.getByTestId("result-status")), /of \d+ product/);
  await shot(page, "a", "1-search");

  // The product page: name, price, stock; add 2.
  await page.locator('[data-testid=product-card][data-sku="MUG-001"] [data-testid=product-link]').click();
  await page.waitForURL(/\/products\/MUG-001$/);
  await page.locator('#product[data-sku="MUG-001"]').waitFor();
  assert.equal(await text(page.locator("#product-name")), "Enamel Camp Mug");
  assert.equal(await text(page.locator("#product-price")), "€14.90");
  await page.locator("#product-stock:not([data-stock=unknown])").waitFor();
  assert.match(await text(page.locator("#product-stock")), /in stock|left/i);
  await page.locator("#add-to-cart:not([disabled])").waitFor();
  await page.locator("#quantity").fill("2");
  await page.locator("#add-to-cart").click();
  await page.getByTestId("view-cart").waitFor();
  assert.match(await text(page.getByTestId("add-status")), /2 ×/);
  await page.locator("#cart-count", { hasText: "2" }).waitFor();
  await shot(page, "a", "2-product");

  // A second, different product from its page.
  await page.goto(`${BASE}/products/COF-001`);
  await page.locator('#product[data-sku="COF-001"]').waitFor();
  await page.locator("#add-to-cart:not([disabled])").click();
  await page.getByTestId("view-cart").waitFor();
  await page.locator("#cart-count", { hasText: "3" }).waitFor();

  // The cart: both lines, their totals, the subtotal.
  await page.getByTestId("view-cart").click();
  await page.waitForURL(/\/cart$/);
  await page.locator('[data-testid=cart-line][data-sku="COF-001"]').waitFor();
  const line = (sku) => page.locator(`[data-testid=cart-line][data-sku="${sku}"]`);
  assert.equal(await page.getByTestId("cart-line").count(), 2);
  assert.equal(await line("MUG-001").getByTestId("line-quantity").inputValue(), "2");
  assert.equal(await text(line("MUG-001").getByTestId("line-total")), euro(2 * 1490));
  assert.equal(await text(line("COF-001").getByTestId("line-total")), euro(1290));
  assert.equal(await text(page.locator("#cart-subtotal")), euro(2 * 1490 + 1290));
  assert.equal(await text(page.locator("#cart-item-count")), "3");
  await shot(page, "a", "3-cart");

  // Checkout: the live quote for Germany, then place the order.
  await page.locator("#to-checkout").click();
  await page.waitForURL(/\/checkout$/);
  await page.locator("#place-order:not([disabled])").waitFor();
  assert.equal(await page.getByTestId("summary-line").count(), 2);
  await fillCheckout(page, { email });
  const quote = await waitForQuote(page);
  assert.equal(quote.items, 2 * 1490 + 1290);
  assert.ok(quote.shipping > 0, "standard shipping to Germany costs something");
  assert.match(quote.rate, /19\s*%/, "German VAT");
  assert.ok(quote.tax > 0);
  assert.equal(await text(page.locator("#sum-shipping")), await text(page.locator("#price-standard")));
  await shot(page, "a", "4-checkout");
  await page.locator("#place-order").click();

  // The confirmation: every saga step as the API names them; the order follows placed → paid.
  const checkoutId = await waitForConfirmation(page);
  const checkout = await assertConfirmationSteps(page, checkoutId);
  assert.equal(checkout.totals.grand_total, quote.total, "the checkout charged what the page quoted");
  await page.locator("#order-id", { hasText: checkout.order_id }).waitFor();
  await waitForOrderStatus(page, "paid", 60_000);
  const history = await page.locator("#order-history [data-testid=history-entry]").evaluateAll((n) => n.map((e) => e.dataset.status));
  assert.deepEqual(history.slice(0, 1), ["placed"]);
  assert.ok(history.includes("paid"), `history: ${history}`);
  // The history in a person's words: the capture as money, no event names.
  const reasons = await page.locator("#order-history [data-testid=history-entry]").evaluateAll((n) => n.map((e) => [e.dataset.status, e.querySelector("[data-testid=history-reason]")?.textContent ?? ""]));
  assert.deepEqual(reasons.filter(([s]) => s === "paid").map(([, r]) => r), [`Payment of ${euro(checkout.totals.grand_total)} taken`], JSON.stringify(reasons));
  for (const [status, reason] of reasons) assert.doesNotMatch(reason, /implied by|captured|\b\d+ EUR\b|[a-z]+\.[a-z]+/, `${status}: ${reason}`);
  assert.match(reasons.find(([s]) => s === "shipped")?.[1] ?? "", /^(Shipped with ShopPost, tracking number SP\d{12}SH|Payment taken)$/, JSON.stringify(reasons));
  assert.match(await text(page.locator("#order-body")), new RegExp(`Confirmation sent to ${email.replace(/[.+]/g, "\\$&")}`));
  assert.match(await text(page.locator("#poll-status")), /Up to date/);
  assert.equal(await text(page.locator("#cart-count")), "0");
  await shot(page, "a", "5-confirmation");

  // The cart was emptied by the checkout.
  const cartId = await page.evaluate(() => localStorage.getItem("shop.cart_id"));
  const cart = await api("GET", `/api/carts/${cartId}`);
  assert.equal((cart.body.lines || cart.body.items || []).length, 0, `the cart is empty: ${JSON.stringify(cart.body)}`);
  assertNoPageErrors(page);
  await page.context().close();
});
