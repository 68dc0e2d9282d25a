// f. A 375 px wide phone: the catalog, product, cart, checkout and
// confirmation pages have no horizontal overflow, and the purchase works.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, newPage, shot, api, unique, uniqueEmail, eventually, setStock, APPROVE, text, fillCheckout, waitForQuote, waitForConfirmation, assertConfirmationSteps, waitForOrderStatus, assertNoPageErrors, EXP_YEAR, euro } from "./helper.mjs";

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

const WIDTH = 375;
let confirmationOverflow = "the purchase did not reach the confirmation";

/**
 * The page is no wider than the phone; else a screenshot, and which
 * elements stick out and which content makes them (found by holding the
 * outermost wide element to the screen and looking for what overflows it).
 */
async function assertNoOverflow(page, what) {
  const problem = await overflow(page, what);
  if (problem) assert.fail(problem);
}

/** Why `page` is wider than the phone (and a screenshot), or null. */
async function overflow(page, what) {
  const r = await page.evaluate((width) => {
    const name = (e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ""}${typeof e.className === "string" && e.className ? `.${e.className.trim().split(/\s+/).join(".")}` : ""}`;
    const wide = [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > width + 0.5 && getComputedStyle(e).position !== "fixed" && !e.closest(".visually-hidden"));
    // Hold every outermost wide element to the screen; what then overflows is the cause.
    const outers = wide.filter((e) => !wide.includes(e.parentElement));
    const saved = outers.map((e) => [e, e.getAttribute("style")]);
    for (const e of outers) {
      e.style.maxWidth = `${width - e.getBoundingClientRect().left}px`;
      e.style.boxSizing = "border-box";
    }
    const culprits = outers.flatMap((outer) => [...outer.querySelectorAll("*")])
      .filter((e) => e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0 && ![...e.children].some((c) => c.scrollWidth > c.clientWidth + 1))
      .map((e) => `${name(e)} needs ${e.scrollWidth}px, has ${e.clientWidth}px ("${e.textContent.trim().replace(/\s+/g, " ").slice(0, 80)}")`);
    for (const [e, style] of saved) if (style === null) e.removeAttribute("style"); else e.setAttribute("style", style);
    return { scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 4).map((e) => `${name(e)} (right ${Math.round(e.getBoundingClientRect().right)})`), culprits: culprits.slice(0, 4) };
  }, WIDTH);
  if (r.scrollWidth > WIDTH) {
    const path = await shot(page, "f", `overflow-${what.replace(/\W+/g, "-")}`);
    return (`${what}: document.documentElement.scrollWidth is ${r.scrollWidth} > ${WIDTH}; wide: ${r.wide.join(", ")}; overflowing: ${r.culprits.join("; ") || "?"} (screenshot ${path})`);
  }
  return null;
}

test("f. 375 px: no horizontal overflow, and the purchase works", { timeout: 120_000 }, async () => {
  const page = await newPage(browser, { viewport: { width: WIDTH, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const email = uniqueEmail("f-mobile");

  await page.goto(`${BASE}/`);
  await page.getByTestId("product-card").first().waitFor();
  await page.waitForFunction(() => !document.querySelector("#product-grid .skeleton") && !document.querySelector("[data-stock=unknown]"));
  await assertNoOverflow(page, "the catalog");
  // The header wraps (brand above the nav) but keeps its padding: the brand is not flush with the top edge.
  const brandTop = await page.evaluate(() => document.getElementById("brand").getBoundingClientRect().top - document.querySelector(".site-header").getBoundingClientRect().top);
  assert.ok(brandTop >= 6, `the brand sits ${brandTop}px below the top edge`);
  await shot(page, "f", "1-catalog");

  // Quick add from the card, then the product page for a second item.
  await page.locator('[data-testid=product-card][data-sku="APP-001"] [data-testid=add-to-cart]').click();
  await page.locator("#cart-count", { hasText: "1" }).waitFor();
  await page.locator('[data-testid=product-card][data-sku="APP-004"] [data-testid=product-link]').click();
  await page.waitForURL(/\/products\/APP-004$/);
  await page.locator("#add-to-cart:not([disabled])").waitFor();
  await assertNoOverflow(page, "the product page");
  await page.locator("#add-to-cart").click();
  await page.getByTestId("view-cart").waitFor();
  await page.locator("#cart-count", { hasText: "2" }).waitFor();
  await shot(page, "f", "2-product");

  await page.getByTestId("view-cart").click();
  await page.waitForURL(/\/cart$/);
  await page.locator('[data-testid=cart-line][data-sku="APP-004"]').waitFor();
  assert.equal(await page.getByTestId("cart-line").count(), 2);
  assert.equal(await text(page.locator("#cart-subtotal")), "€54.80");
  await assertNoOverflow(page, "the cart");
  await shot(page, "f", "3-cart");

  await page.locator("#to-checkout").click();
  await page.waitForURL(/\/checkout$/);
  await page.locator("#place-order:not([disabled])").waitFor();
  await assertNoOverflow(page, "the empty checkout");
  await fillCheckout(page, { email });
  await waitForQuote(page, { items: 5480 });
  await assertNoOverflow(page, "the filled checkout");
  await shot(page, "f", "4-checkout");
  await page.locator("#place-order").click();

  const checkoutId = await waitForConfirmation(page);
  await assertConfirmationSteps(page, checkoutId);
  // Paid: the page at its fullest (shipment, capture in the history);
  // asserted below, in the known-bug test.
  await waitForOrderStatus(page, "paid", 60_000);
  confirmationOverflow = await overflow(page, "the confirmation, paid");
  await shot(page, "f", "5-confirmation");
  assertNoPageErrors(page);
  await page.context().close();
});

// Beyond the catalog, cart and checkout: the pages after the purchase, with
// their long unbreakable tokens (order and payment ids in the status history,
// "Your order ord_<32 hex> …" in the mailbox), which must wrap at 375 px.
test("f. 375 px: the confirmation (paid) and the account page (orders, mailbox) have no horizontal overflow", { timeout: 60_000 }, async () => {
  const problems = [confirmationOverflow];
  const email = uniqueEmail("f-account");
  const password = "correct horse battery staple";
  assert.equal((await api("POST", "/api/customers", { body: { name: "Ada Lovelace", email, password } })).status, 201);
  const session = (await api("POST", "/api/customers/sessions", { body: { email, password } })).body;
  const cart = unique("f-cart");
  await setStock("BRW-007", 100); // no other scenario buys the scale
  await api("POST", `/api/carts/${cart}/items`, { body: { sku: "BRW-007", quantity: 1 } });
  const placed = await api("POST", "/api/checkout", {
    token: session.token,
    headers: { "idempotency-key": cart },
    body: { cart_id: cart, email, address: { name: "Ada Lovelace", line1: "Hauptstr. 1", city: "Berlin", postal_code: "10115", country: "DE" }, shipping: "standard", card: { number: APPROVE, exp_month: 12, exp_year: EXP_YEAR, cvc: "123" } },
  });
  assert.equal(placed.status, 201, JSON.stringify(placed.body));
  await eventually(async () => (await api("GET", `/api/orders/${placed.body.order_id}`, { token: session.token })).body.status === "paid", 30_000, "the order is paid");
  const page = await newPage(browser, { viewport: { width: WIDTH, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await page.addInitScript((s) => sessionStorage.setItem("shop.session", JSON.stringify(s)), session);
  await page.goto(`${BASE}/account`);
  await page.locator(`[data-testid=order-card][data-order-id="${placed.body.order_id}"]`).waitFor();
  await eventually(async () => (await page.locator("#mailbox [data-testid=message]").count()) >= 3 || (await page.locator("#mailbox-refresh").click(), false), 20_000, "the mailbox has the order's mails");
  problems.push(await overflow(page, "the account page"));
  await shot(page, "f", "6-account");
  const paidReasons = await page.locator(`[data-testid=order-card][data-order-id="${placed.body.order_id}"] [data-testid=history-entry][data-status="paid"]`)
    .evaluateAll((entries) => entries.map((e) => e.querySelector("[data-testid=history-reason]")?.textContent ?? e.textContent));
  await page.context().close();
  const found = problems.filter(Boolean);
  assert.deepEqual(found, [], found.join("\n"));
  // The order card's history speaks as a person would (no raw "5675 EUR captured (…)").
  assert.deepEqual(paidReasons, [`Payment of ${euro(placed.body.totals.grand_total)} taken`]);
});
