// What every shopper page shares: the header's cart count and account link,
// the current page marked in the nav. Imported by each page's module.
//
// Test ids (in every page's header/footer):
//   #cart-count / [data-testid=cart-count]   the number of items in the cart
//   #nav-catalog, #nav-cart, #nav-account     the nav links
//   #account-label                            "Account" or "Sign in"
//   #footer-admin                             the link to /admin

import { cachedCount, getCart, CART_EVENT } from "./cart.js";
import { getSession } from "./session.js";
import { SIGNED_OUT_EVENT } from "./api.js";

function showCount(count) {
  const badge = document.getElementById("cart-count");
  if (!badge) return;
  badge.textContent = String(count);
  const label = document.getElementById("cart-count-label");
  if (label) label.textContent = count === 1 ? " item" : " items";
}

function showAccount() {
  const label = document.getElementById("account-label");
  if (label) label.textContent = getSession() ? "Account" : "Sign in";
}

function markCurrent() {
  const first = location.pathname.split("/")[1] || "";
  const current = { "": "nav-catalog", products: "nav-catalog", cart: "nav-cart", checkout: "nav-cart", account: "nav-account" }[first];
  const link = current && document.getElementById(current);
  if (link) link.setAttribute("aria-current", "page");
}

showCount(cachedCount());
showAccount();
markCurrent();
window.addEventListener(CART_EVENT, (event) => showCount(event.detail));
window.addEventListener(SIGNED_OUT_EVENT, showAccount);
// Another tab changed the cart or signed in/out.
window.addEventListener("storage", (event) => {
  if (event.key === "shop.cart_count") showCount(cachedCount());
});

/** Refreshes the count from the cart API (pages that load the cart anyway skip this). */
export function refreshCartCount() {
  getCart().catch(() => {});
}

export { showAccount };
