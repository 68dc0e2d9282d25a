// e. Keyboard only: the whole purchase from the catalog to the confirmation
// with page.keyboard (Tab, Shift+Tab, Enter, Space, typing, arrow keys in
// selects and radio groups), no mouse; every control reached shows a visible
// focus indicator (a non-none outline or box-shadow).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, newPage, shot, uniqueEmail, text, waitForQuote, waitForConfirmation, assertConfirmationSteps, assertNoPageErrors } from "./helper.mjs";

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

/** What has the focus: its id/testid/text, and whether the focus shows. */
function focused(page) {
  return page.evaluate(() => {
    const e = document.activeElement;
    if (!e || e === document.body) return { tag: "body" };
    const s = getComputedStyle(e);
    const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
    const shadow = s.boxShadow && s.boxShadow !== "none";
    return { tag: e.tagName.toLowerCase(), id: e.id, testid: e.dataset.testid || "", sku: e.closest("[data-sku]")?.dataset.sku || "", text: (e.textContent || "").trim().slice(0, 40), value: e.value, visible: Boolean(outline || shadow), style: `${s.outlineStyle} ${s.outlineWidth} / ${s.boxShadow}` };
  });
}

const seen = [];

/** Presses Tab (or Shift+Tab) until `matches(focused)`, at most `max` times; asserts the focus shows there. */
async function tabTo(page, what, matches, { shift = false, max = 60 } = {}) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press(shift ? "Shift+Tab" : "Tab");
    const f = await focused(page);
    if (matches(f)) {
      assert.ok(f.visible, `the focus on ${what} is visible (${f.style})`);
      seen.push(what);
      return f;
    }
  }
  assert.fail(`${max} presses of ${shift ? "Shift+Tab" : "Tab"} did not reach ${what} (now on ${JSON.stringify(await focused(page))})`);
}
const byId = (id) => (f) => f.id === id;

/** Arrow keys in a focused <select> until its value is `value`. */
async function arrowSelect(page, id, value, max = 60) {
  for (let i = 0; i < max; i++) {
    if ((await page.locator(`#${id}`).inputValue()) === value) return;
    await page.keyboard.press("ArrowDown");
  }
  assert.fail(`#${id} did not reach ${value} with ArrowDown`);
}

test("e. keyboard only: catalog to confirmation, focus always visible", { timeout: 120_000 }, async () => {
  const page = await newPage(browser);
  const email = uniqueEmail("e-keys");
  // A mouse click anywhere would fail the scenario.
  let mouse = 0;
  await page.exposeBinding("__mouse", () => mouse++);
  await page.addInitScript(() => document.addEventListener("mousedown", () => window.__mouse(), true));

  await page.goto(`${BASE}/`);
  await page.getByTestId("product-card").first().waitFor();

  // The skip link comes first and shows when focused.
  await page.keyboard.press("Tab");
  const skip = await focused(page);
  assert.match(skip.text, /Skip to content/, `the first Tab stop is the skip link: ${JSON.stringify(skip)}`);
  assert.ok(skip.visible, "the skip link shows its focus");

  // Search with the keyboard.
  await tabTo(page, "the search box", byId("search"));
  await page.keyboard.type("mug");
  await page.keyboard.press("Enter");
  await page.waitForURL(/[?&]q=mug/);
  await page.waitForFunction(() => /of \d+ product/.test(document.getElementById("result-status")?.textContent || "") && !document.querySelector("#product-grid .skeleton"));
  // Past the filters to the cards; one Shift+Tab back and forth on the way.
  await tabTo(page, "the category filter", byId("category"));
  await tabTo(page, "the search box (Shift+Tab)", byId("search"), { shift: true });
  await tabTo(page, "the Titanium Cup's link", (f) => f.testid === "product-link" && f.sku === "MUG-003");
  await shot(page, "e", "1-catalog-focus");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/products\/MUG-003$/);
  await page.locator("#add-to-cart:not([disabled])").waitFor();

  // Quantity 2 with the arrow key, then add.
  await tabTo(page, "the quantity", byId("quantity"));
  await page.keyboard.press("ArrowUp");
  assert.equal(await page.locator("#quantity").inputValue(), "2");
  await tabTo(page, "add to cart", byId("add-to-cart"));
  await page.keyboard.press("Enter");
  await page.getByTestId("view-cart").waitFor();
  assert.match(await text(page.getByTestId("add-status")), /2 ×/);
  await page.locator("#cart-count", { hasText: "2" }).waitFor();
  await tabTo(page, "the view-cart link", (f) => f.testid === "view-cart");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/cart$/);
  await page.locator('[data-testid=cart-line][data-sku="MUG-003"]').waitFor();
  assert.equal(await text(page.locator("#cart-subtotal")), "€69.80");
  await tabTo(page, "go to checkout", byId("to-checkout"));
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/checkout$/);
  await page.locator("#place-order:not([disabled])").waitFor();

  // The form, field by field.
  const fields = [["email", email], ["name", "Grace Hopper"], ["line1", "Unter den Linden 5"]];
  for (const [id, value] of fields) {
    await tabTo(page, `#${id}`, byId(id));
    await page.keyboard.type(value);
  }
  await tabTo(page, "#line2", byId("line2"));
  await tabTo(page, "#postal_code", byId("postal_code"));
  await page.keyboard.type("10117");
  await tabTo(page, "#city", byId("city"));
  await page.keyboard.type("Berlin");
  await tabTo(page, "#country", byId("country"));
  await arrowSelect(page, "country", "DE");
  // Standard is chosen; arrow to express and back.
  await tabTo(page, "the shipping speed", byId("speed-standard"));
  await page.keyboard.press("ArrowDown");
  assert.ok(await page.locator("#speed-express").isChecked(), "ArrowDown chooses express");
  await page.keyboard.press("ArrowUp");
  assert.ok(await page.locator("#speed-standard").isChecked(), "ArrowUp chooses standard again");
  const quote = await waitForQuote(page, { items: 6980 });
  assert.match(quote.rate, /19\s*%/);
  // The test card's "Use" button, with Space: fills the number, expiry and cvc.
  await tabTo(page, "the approving test card's button", (f) => f.testid === "use-card-approve");
  await page.keyboard.press("Space");
  assert.equal((await page.locator("#card-number").inputValue()).replace(/\s/g, ""), "4242424242424242");
  assert.equal((await focused(page)).id, "card-number", "the card number has the focus after Use");
  // Expiry with the arrow keys (Use picked a default already: pick 12 anyway).
  await tabTo(page, "the expiry month", byId("card-exp-month"));
  await arrowSelect(page, "card-exp-month", "12");
  await tabTo(page, "the expiry year", byId("card-exp-year"));
  await page.keyboard.press("ArrowDown");
  await tabTo(page, "the cvc", byId("card-cvc"));
  await page.keyboard.press("Control+A");
  await page.keyboard.type("737");
  await tabTo(page, "place order", byId("place-order"));
  await shot(page, "e", "2-checkout-focus");
  await page.keyboard.press("Enter");

  const checkoutId = await waitForConfirmation(page);
  await assertConfirmationSteps(page, checkoutId);
  await page.locator("#order-status[data-status]").waitFor();
  await shot(page, "e", "3-confirmation");
  assert.equal(mouse, 0, "no mouse was used");
  assertNoPageErrors(page);
  await page.context().close();
});
