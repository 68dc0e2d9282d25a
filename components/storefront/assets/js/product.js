// The product page (products.html at /products/<sku>): details, stock, quantity, add to cart.
//
// Test ids:
//   #product [data-testid=product]          the product (data-sku once loaded)
//   #product-name, #product-price, #product-description, #product-sku, #product-image
//   #product-stock [data-testid=product-stock]  "In stock" / "Only 3 left" / "Sold out" (data-stock=in|low|out|unknown)
//   #quantity [data-testid=quantity]        how many to add (1 to 99, at most what is available)
//   #quantity-error                         why the quantity cannot be added
//   #add-to-cart [data-testid=add-to-cart]  adds to the cart (disabled while loading or sold out)
//   #add-status [data-testid=add-status]    "Added 2 × … to your cart. View cart" (aria-live); link [data-testid=view-cart]
//   #product-error [data-testid=product-error]  not found / could not load

import "./layout.js";
import { describeError } from "./api.js";
import { formatMoney } from "./money.js";
import { addItem, getProduct } from "./cart.js";
import { showStock } from "./stock.js";
import { el, titleCase } from "./dom.js";

const $ = (id) => document.getElementById(id);
const article = $("product");
const quantity = $("quantity");
const addButton = $("add-to-cart");
const addStatus = $("add-status");
const quantityError = $("quantity-error");
let available = null;
let product = null;

function skuFromPath() {
  const rest = location.pathname.split("/").slice(2).filter(Boolean);
  try {
    return rest.length === 1 ? decodeURIComponent(rest[0]).toUpperCase() : null;
  } catch {
    return null;
  }
}

function notFound(message) {
  article.hidden = true;
  const box = $("product-error");
  box.replaceChildren(el("h1", {}, "Product not found"), el("p", {}, message), el("p", {}, el("a", { href: "/" }, "Back to the catalog")));
  box.hidden = false;
  document.title = "Product not found · Ridgeline Supply";
}

async function load() {
  const sku = skuFromPath();
  if (!sku || !/^[A-Z0-9]([A-Z0-9-]{0,62}[A-Z0-9])?$/.test(sku)) return notFound("That is not a product address.");
  try {
    product = await getProduct(sku);
  } catch (error) {
    if (error.code === "product_not_found" || error.status === 404) return notFound(`We do not sell a product “${sku}”.`);
    const box = $("product-error");
    box.replaceChildren(el("p", {}, `The product could not be loaded. ${describeError(error)}`));
    const retry = el("button", { type: "button", class: "btn btn-secondary", dataset: { testid: "product-retry" } }, "Try again");
    retry.addEventListener("click", () => {
      box.hidden = true;
      load();
    });
    box.append(el("div", { class: "actions" }, retry));
    box.hidden = false;
    return;
  }
  article.dataset.sku = product.sku;
  document.title = `${product.name} · Ridgeline Supply`;
  $("crumb-name").textContent = product.name;
  $("product-name").textContent = product.name;
  $("product-price").textContent = formatMoney(product.price);
  $("product-description").textContent = product.description;
  $("product-sku").textContent = product.sku;
  $("product-weight").textContent = `${product.weight_grams} g shipping weight`;
  const image = $("product-image");
  image.src = product.image;
  image.alt = product.name;
  $("product-categories").replaceChildren(
    ...product.categories.map((c) => el("li", {}, el("a", { href: `/?category=${encodeURIComponent(c)}` }, titleCase(c)))),
  );
  addButton.disabled = false;
  const state = await showStock(product.sku, $("product-stock"));
  available = state.available;
  if (state.soldOut) {
    addButton.disabled = true;
    addButton.textContent = "Sold out";
    quantity.disabled = true;
  } else if (available != null) {
    quantity.max = String(Math.min(99, available));
  }
}

function checkQuantity() {
  const n = Number(quantity.value);
  let message = "";
  if (!Number.isInteger(n) || n < 1) message = "Enter a whole number, 1 or more.";
  else if (n > 99) message = "At most 99 per order line.";
  else if (available != null && n > available) message = `Only ${available} available.`;
  quantityError.textContent = message;
  quantity.setAttribute("aria-invalid", message ? "true" : "false");
  return message ? null : n;
}

quantity.addEventListener("input", () => {
  if (quantityError.textContent) checkQuantity();
});

$("add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!product || addButton.disabled) return;
  const n = checkQuantity();
  if (n == null) {
    quantity.focus();
    return;
  }
  addButton.disabled = true;
  addStatus.replaceChildren("Adding…");
  try {
    const cart = await addItem(product.sku, n);
    const line = cart.lines.find((l) => l.sku === product.sku);
    addStatus.replaceChildren(
      el("span", { class: "alert alert-ok", dataset: { testid: "add-ok" } },
        `Added ${n} × ${product.name} to your cart${line && line.quantity !== n ? ` (${line.quantity} in total)` : ""}. `,
        el("a", { href: "/cart", dataset: { testid: "view-cart" } }, "View cart")),
    );
  } catch (error) {
    const message = error.code === "invalid_quantity" ? `${describeError(error)} (a cart line holds 1 to 99).` : describeError(error);
    addStatus.replaceChildren(el("span", { class: "alert alert-error", dataset: { testid: "add-failed" } }, `Could not add to cart: ${message}`));
  } finally {
    addButton.disabled = false;
  }
});

load();
