// c. Out of stock at checkout: the stock falls (admin, PUT /api/inventory/{sku})
// after the shopper put more in the cart; checkout names the item and offers
// to remove it; removing it works and the rest of the order goes through.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, newPage, shot, api, uniqueEmail, text, fillCheckout, waitForQuote, waitForConfirmation, assertConfirmationSteps, addFromProductPage, setStock, assertNoPageErrors } from "./helper.mjs";

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

const SCARCE = "CMP-004"; // Camp Chair: no other scenario buys it
const OTHER = "BRW-003";

test("c. an item out of stock is named at checkout and can be removed", { timeout: 90_000 }, async () => {
  const page = await newPage(browser);
  const email = uniqueEmail("c-stock");
  const before = (await api("GET", `/api/inventory/${SCARCE}`)).body;
  try {
    await setStock(SCARCE, 10);
    await addFromProductPage(page, SCARCE, 2);
    await addFromProductPage(page, OTHER, 1);
    await setStock(SCARCE, 1); // fewer than the cart holds

    await page.goto(`${BASE}/checkout`);
    await page.locator("#place-order:not([disabled])").waitFor();
    assert.equal(await page.getByTestId("summary-line").count(), 2);
    await fillCheckout(page, { email });
    await waitForQuote(page);
    await page.locator("#place-order").click();

    // The page names the item, how many are left, and offers removal.
    const alert = page.locator('#checkout-alert[data-kind="out_of_stock"]');
    await alert.waitFor();
    const items = await alert.locator(`[data-testid=out-of-stock-items] li`).evaluateAll((n) => n.map((li) => [li.dataset.sku, li.textContent]));
    assert.equal(items.length, 1, JSON.stringify(items));
    assert.equal(items[0][0], SCARCE);
    assert.match(items[0][1], /Camp Chair/, "named by its product name");
    assert.match(items[0][1], /asked for 2, only 1 is available/);
    assert.match(await text(alert), /Nothing was charged/);
    assert.match(page.url(), /\/checkout$/);
    await shot(page, "c", "1-out-of-stock");

    // Remove it: the summary and the cart no longer hold it; the quote follows.
    await alert.getByTestId("remove-out-of-stock").click();
    // From the click on, the old total is not offered: stale, and no placing until the new quote.
    const during = await page.evaluate(() => ({ disabled: document.getElementById("place-order").disabled, total: document.getElementById("sum-total").textContent, busy: document.getElementById("quote").getAttribute("aria-busy") }));
    assert.deepEqual([during.disabled, during.busy], [true, "true"], `while the cart changes: ${JSON.stringify(during)}`);
    assert.doesNotMatch(during.total, /€/, `no total shown while the cart changes: ${JSON.stringify(during)}`);
    await page.locator('#checkout-alert[data-kind="out_of_stock"]').waitFor({ state: "hidden" });
    await page.locator(`[data-testid=summary-line][data-sku="${SCARCE}"]`).waitFor({ state: "detached" });
    assert.deepEqual(await page.getByTestId("summary-line").evaluateAll((n) => n.map((li) => li.dataset.sku)), [OTHER]);
    assert.match(await text(page.locator("#submit-status")), /Removed/);
    const cartId = await page.evaluate(() => localStorage.getItem("shop.cart_id"));
    const cart = (await api("GET", `/api/carts/${cartId}`)).body;
    assert.deepEqual(cart.lines.map((l) => l.sku), [OTHER], JSON.stringify(cart));
    const quote = await waitForQuote(page, { items: 3490 }); // the French Press alone
    assert.ok(quote.shipping > 0 && quote.tax > 0);
    await shot(page, "c", "2-removed");

    // The form is still filled: the order goes through.
    await page.locator("#place-order").click();
    const checkoutId = await waitForConfirmation(page);
    await assertConfirmationSteps(page, checkoutId);
    const levels = (await api("GET", `/api/inventory/${SCARCE}`)).body;
    assert.equal(levels.available, 1, "the scarce item was not sold");
    assertNoPageErrors(page);
  } finally {
    await setStock(SCARCE, before.on_hand);
    await page.context().close();
  }
});
