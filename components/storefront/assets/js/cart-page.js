// The cart page (cart.html): lines, quantity changes, removal, subtotal.
//
// Test ids:
//   #cart-lines [data-testid=cart-lines]      the lines (aria-busy while loading)
//   [data-testid=cart-line][data-sku=SKU]     one line
//     [data-testid=line-name]                 product name, a link to its page
//     [data-testid=line-unit-price]           unit price
//     [data-testid=line-quantity]             quantity input (1–99); a change is saved at once
//     [data-testid=line-remove]               removes the line
//     [data-testid=line-total]                quantity × unit price
//     [data-testid=line-stock]                a warning when fewer are available than wanted
//   #cart-empty [data-testid=cart-empty]      shown when the cart has no lines
//   #cart-item-count, #cart-subtotal          the summary
//   #to-checkout [data-testid=to-checkout]    link to /checkout (hidden when empty)
//   #cart-error [data-testid=cart-error]      errors, with [data-testid=cart-retry] for network errors
//   #cart-status                              screen-reader announcements of changes (aria-live)

import "./layout.js";
import { describeError } from "./api.js";
import { formatMoney } from "./money.js";
import { cartWithProducts, setQuantity, removeItem, getProduct } from "./cart.js";
import { getStock } from "./stock.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const list = $("cart-lines");
const errorBox = $("cart-error");
const status = $("cart-status");
let lines = [];

function showError(message, retry) {
  errorBox.replaceChildren(el("p", {}, message));
  if (retry) {
    const button = el("button", { type: "button", class: "btn btn-secondary", dataset: { testid: "cart-retry" } }, "Try again");
    button.addEventListener("click", () => {
      errorBox.hidden = true;
      retry();
    });
    errorBox.append(el("div", { class: "actions" }, button));
  }
  errorBox.hidden = false;
}

function renderSummary() {
  const count = lines.reduce((n, l) => n + l.quantity, 0);
  $("cart-item-count").textContent = String(count);
  const priced = lines.filter((l) => l.product);
  if (priced.length) {
    const currency = priced[0].product.price.currency;
    const subtotal = priced.reduce((sum, l) => sum + l.product.price.amount * l.quantity, 0);
    $("cart-subtotal").textContent = formatMoney(subtotal, currency);
  } else {
    $("cart-subtotal").textContent = count ? "–" : formatMoney(0, "EUR");
  }
  $("to-checkout").hidden = count === 0;
  $("cart-empty").hidden = count !== 0;
  list.hidden = count === 0;
}

function lineNode(line) {
  const { sku, product } = line;
  const name = product ? product.name : sku;
  const qty = el("input", {
    type: "number", id: `qty-${sku}`, min: 1, max: 99, step: 1, value: line.quantity, inputmode: "numeric",
    dataset: { testid: "line-quantity" }, "aria-describedby": `qty-${sku}-error`,
  });
  const qtyError = el("p", { class: "field-error", id: `qty-${sku}-error` });
  const remove = el("button", { type: "button", class: "btn btn-danger", dataset: { testid: "line-remove" }, "aria-label": `Remove ${name} from cart` }, "Remove");
  const total = el("span", { class: "line-total", dataset: { testid: "line-total" } }, product ? formatMoney(product.price.amount * line.quantity, product.price.currency) : "–");
  const stock = el("p", { class: "small", dataset: { testid: "line-stock" } });
  const node = el(
    "li",
    { class: "line", dataset: { testid: "cart-line", sku } },
    product ? el("img", { class: "line-img", src: product.image, alt: "", width: 96, height: 96 }) : el("div", { class: "line-img" }),
    el("div", { class: "line-info" },
      el("h3", {}, el("a", { href: `/products/${encodeURIComponent(sku)}`, dataset: { testid: "line-name" } }, name)),
      product
        ? el("span", { class: "small muted", dataset: { testid: "line-unit-price" } }, `${formatMoney(product.price)} each`)
        : el("span", { class: "small field-error" }, "This product is no longer sold; remove it to check out."),
      stock),
    el("div", { class: "line-controls" },
      el("div", { class: "field" }, el("label", { for: `qty-${sku}` }, "Quantity"), qty),
      remove, total, qtyError),
  );

  getStock(sku).then((level) => {
    if (level.available <= 0) stock.replaceChildren(el("span", { class: "stock stock-out" }, "Sold out: remove it to check out"));
    else if (level.available < line.quantity) stock.replaceChildren(el("span", { class: "stock stock-low" }, `Only ${level.available} available`));
    else stock.replaceChildren();
  }).catch(() => {});

  qty.addEventListener("change", async () => {
    const n = Number(qty.value);
    if (!Number.isInteger(n) || n < 1 || n > 99) {
      qtyError.textContent = "Enter a whole number from 1 to 99 (or remove the item).";
      qty.setAttribute("aria-invalid", "true");
      return;
    }
    qtyError.textContent = "";
    qty.setAttribute("aria-invalid", "false");
    qty.disabled = true;
    try {
      const cart = await setQuantity(sku, n);
      await apply(cart);
      status.textContent = `${name}: quantity ${n}.`;
      $(`qty-${sku}`)?.focus();
    } catch (error) {
      qty.disabled = false;
      qtyError.textContent = describeError(error);
      if (error.code === "not_in_cart") reload();
    }
  });
  remove.addEventListener("click", async () => {
    remove.disabled = true;
    const index = lines.findIndex((l) => l.sku === sku);
    try {
      const cart = await removeItem(sku);
      await apply(cart);
      status.textContent = `${name} removed from your cart.`;
      // Keep the keyboard where it was: the next line's remove button, or the summary.
      const buttons = list.querySelectorAll("[data-testid=line-remove]");
      (buttons[Math.min(index, buttons.length - 1)] || $("cart-empty").querySelector("a")).focus();
    } catch (error) {
      remove.disabled = false;
      if (error.code === "not_in_cart") return reload();
      showError(`Could not remove ${name}: ${describeError(error)}`);
    }
  });
  return node;
}

/** Shows the cart the API answered (products from the page's cache). */
async function apply(cart) {
  lines = await Promise.all(cart.lines.map(async (l) => {
    try {
      return { ...l, product: await getProduct(l.sku) };
    } catch {
      return { ...l, product: null };
    }
  }));
  list.replaceChildren(...lines.map(lineNode));
  renderSummary();
}

async function reload() {
  list.setAttribute("aria-busy", "true");
  try {
    const answer = await cartWithProducts();
    lines = answer.lines;
    list.replaceChildren(...lines.map(lineNode));
    renderSummary();
  } catch (error) {
    list.replaceChildren();
    showError(`Your cart could not be loaded. ${describeError(error)}`, reload);
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

reload();
