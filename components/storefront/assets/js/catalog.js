// The catalog page (index.html): search, category filter, pagination, product
// cards with price and live stock. The query lives in the URL (?q=&category=&page=&per_page=)
// so reload, back/forward and shared links show the same results.
//
// Test ids:
//   #search [data-testid=search]            the search box (q)
//   #category [data-testid=category]        category filter; options are the products' categories
//   #per-page [data-testid=per-page]        page size (12/24/48)
//   #search-submit                          applies the filters (typing also searches, debounced)
//   #result-status [data-testid=result-status]  "Showing 1–12 of 29 products" (aria-live)
//   #catalog-error                          an error loading the catalog, with a retry button (#catalog-retry)
//   #product-grid                           the list of cards
//   [data-testid=product-card][data-sku=SKU]  one product card
//     [data-testid=product-link]            its name, a link to /products/SKU
//     [data-testid=product-price]           its price, formatted for its currency
//     [data-testid=product-stock]           "In stock" / "Only 3 left" / "Sold out" (data-stock=in|low|out|unknown)
//     [data-testid=add-to-cart]             quick add of one unit (disabled when sold out)
//   #pagination: [data-testid=page-prev], [data-testid=page-next], [data-testid=page-N] (aria-current on the current one)

import "./layout.js";
import { api, describeError } from "./api.js";
import { formatMoney } from "./money.js";
import { addItem } from "./cart.js";
import { showStock } from "./stock.js";
import { el, debounce, titleCase } from "./dom.js";

const form = document.getElementById("catalog-filters");
const search = document.getElementById("search");
const category = document.getElementById("category");
const perPage = document.getElementById("per-page");
const grid = document.getElementById("product-grid");
const status = document.getElementById("result-status");
const errorBox = document.getElementById("catalog-error");
const pagination = document.getElementById("pagination");
const PER_PAGE = ["12", "24", "48"];

let state = readUrl();
let loadSeq = 0;

function readUrl() {
  const params = new URLSearchParams(location.search);
  const page = Math.max(1, parseInt(params.get("page"), 10) || 1);
  const pp = PER_PAGE.includes(params.get("per_page")) ? params.get("per_page") : "12";
  return { q: params.get("q") || "", category: params.get("category") || "", page, per_page: Number(pp) };
}

function writeUrl(push) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  if (state.category) params.set("category", state.category);
  if (state.page > 1) params.set("page", String(state.page));
  if (state.per_page !== 12) params.set("per_page", String(state.per_page));
  const url = `/${params.toString() ? `?${params}` : ""}`;
  if (url !== location.pathname + location.search) history[push ? "pushState" : "replaceState"](null, "", url);
}

function syncForm() {
  search.value = state.q;
  perPage.value = String(state.per_page);
  if (state.category && ![...category.options].some((o) => o.value === state.category)) {
    category.append(el("option", { value: state.category }, titleCase(state.category)));
  }
  category.value = state.category;
}

// Categories: the union of every product's `categories`, read once per visit.
async function loadCategories() {
  let categories = null;
  try {
    categories = JSON.parse(sessionStorage.getItem("shop.categories") || "null");
  } catch {
    categories = null;
  }
  if (!Array.isArray(categories)) {
    const found = new Set();
    for (let page = 1; page <= 20; page++) {
      const answer = await api(`/api/products?per_page=100&page=${page}`);
      answer.products.forEach((p) => p.categories.forEach((c) => found.add(c)));
      if (page * answer.per_page >= answer.total || answer.products.length === 0) break;
    }
    categories = [...found].sort();
    try {
      sessionStorage.setItem("shop.categories", JSON.stringify(categories));
    } catch {
      /* ignore */
    }
  }
  const selected = category.value;
  category.replaceChildren(el("option", { value: "" }, "All categories"), ...categories.map((c) => el("option", { value: c }, titleCase(c))));
  if (selected && !categories.includes(selected)) category.append(el("option", { value: selected }, titleCase(selected)));
  category.value = selected;
}

function card(product) {
  const stock = el("span", { class: "stock stock-unknown", dataset: { testid: "product-stock", stock: "unknown" } }, "Checking stock…");
  const add = el("button", { type: "button", class: "btn btn-secondary", dataset: { testid: "add-to-cart" }, "aria-label": `Add ${product.name} to cart` }, "Add to cart");
  const msg = el("span", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  add.addEventListener("click", async () => {
    add.disabled = true;
    try {
      await addItem(product.sku, 1);
      add.textContent = "Added ✓";
      msg.textContent = `${product.name} added to your cart.`;
      setTimeout(() => {
        add.textContent = "Add to cart";
        add.disabled = stock.dataset.stock === "out";
      }, 1500);
    } catch (error) {
      add.disabled = false;
      msg.textContent = `Could not add ${product.name}: ${describeError(error)}`;
      showError(`Could not add ${product.name} to the cart: ${describeError(error)}`);
    }
  });
  showStock(product.sku, stock).then((s) => {
    if (s.soldOut) {
      add.disabled = true;
      add.textContent = "Sold out";
    }
  });
  const href = `/products/${encodeURIComponent(product.sku)}`;
  return el(
    "li",
    { class: "product-card", dataset: { testid: "product-card", sku: product.sku } },
    el("img", { class: "product-img", src: product.image, alt: "", width: 400, height: 400, loading: "lazy", decoding: "async" }),
    el(
      "div",
      { class: "product-body" },
      el("h2", { class: "product-name" }, el("a", { href, dataset: { testid: "product-link" } }, product.name)),
      el("span", { class: "price", dataset: { testid: "product-price" } }, formatMoney(product.price)),
      el("div", { class: "card-foot" }, stock, add, msg),
    ),
  );
}

function pageButton(label, page, { current = false, testid, aria } = {}) {
  const button = el("button", { type: "button", class: current ? "btn" : "btn btn-secondary", dataset: { testid }, "aria-label": aria }, label);
  if (current) button.setAttribute("aria-current", "page");
  button.addEventListener("click", () => go({ page }, true, true));
  return button;
}

function renderPagination(total) {
  const pages = Math.max(1, Math.ceil(total / state.per_page));
  pagination.replaceChildren();
  if (pages <= 1) return;
  const prev = pageButton("‹ Previous", state.page - 1, { testid: "page-prev" });
  prev.disabled = state.page <= 1;
  const next = pageButton("Next ›", state.page + 1, { testid: "page-next" });
  next.disabled = state.page >= pages;
  const numbers = [];
  for (let p = 1; p <= pages; p++) {
    if (p === 1 || p === pages || Math.abs(p - state.page) <= 2) numbers.push(pageButton(String(p), p, { current: p === state.page, testid: `page-${p}`, aria: `Page ${p}` }));
    else if (numbers.length && numbers[numbers.length - 1].textContent !== "…") numbers.push(el("span", { "aria-hidden": "true" }, "…"));
  }
  pagination.append(prev, ...numbers, next);
}

function showError(message, retry) {
  errorBox.replaceChildren(el("p", {}, message));
  if (retry) {
    const button = el("button", { type: "button", class: "btn btn-secondary", id: "catalog-retry", dataset: { testid: "catalog-retry" } }, "Try again");
    button.addEventListener("click", retry);
    errorBox.append(el("div", { class: "actions" }, button));
  }
  errorBox.hidden = false;
}

async function load({ focusResults = false } = {}) {
  const seq = ++loadSeq;
  errorBox.hidden = true;
  grid.setAttribute("aria-busy", "true");
  status.textContent = "Loading products…";
  const params = new URLSearchParams({ page: String(state.page), per_page: String(state.per_page) });
  if (state.q) params.set("q", state.q);
  if (state.category) params.set("category", state.category);
  let answer;
  try {
    answer = await api(`/api/products?${params}`);
  } catch (error) {
    if (seq !== loadSeq) return;
    grid.setAttribute("aria-busy", "false");
    status.textContent = "";
    showError(`The catalog could not be loaded. ${describeError(error)}`, () => load());
    return;
  }
  if (seq !== loadSeq) return; // a newer search is on its way
  grid.setAttribute("aria-busy", "false");
  const { products, total } = answer;
  const pages = Math.max(1, Math.ceil(total / state.per_page));
  if (products.length === 0 && total > 0 && state.page > pages) {
    // Past the last page (an old link): show the last page instead.
    state.page = pages;
    writeUrl(false);
    return load();
  }
  if (products.length === 0) {
    grid.replaceChildren(
      el("li", { class: "card empty", dataset: { testid: "no-results" } },
        el("h2", {}, "No products match"),
        el("p", { class: "muted" }, state.q ? `Nothing found for “${state.q}”${state.category ? ` in ${titleCase(state.category)}` : ""}.` : "Nothing in this category yet."),
        el("a", { href: "/" }, "Show all products")),
    );
    status.textContent = "No products match.";
  } else {
    grid.replaceChildren(...products.map(card));
    const first = (state.page - 1) * state.per_page + 1;
    status.textContent = `Showing ${first}–${first + products.length - 1} of ${total} product${total === 1 ? "" : "s"}${state.q ? ` for “${state.q}”` : ""}${state.category ? ` in ${titleCase(state.category)}` : ""}.`;
  }
  renderPagination(total);
  if (focusResults) {
    status.setAttribute("tabindex", "-1");
    status.focus({ preventScroll: true });
    status.scrollIntoView({ block: "nearest" });
  }
}

function go(changes, push, focusResults = false) {
  state = { ...state, ...changes };
  writeUrl(push);
  load({ focusResults });
}

const liveSearch = debounce(() => {
  const q = search.value.trim();
  if (q !== state.q) go({ q, page: 1 }, false);
}, 350);
search.addEventListener("input", liveSearch);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  liveSearch.cancel();
  go({ q: search.value.trim(), category: category.value, per_page: Number(perPage.value), page: 1 }, true, true);
});
category.addEventListener("change", () => go({ category: category.value, page: 1 }, true));
perPage.addEventListener("change", () => go({ per_page: Number(perPage.value), page: 1 }, false));
window.addEventListener("popstate", () => {
  state = readUrl();
  syncForm();
  load();
});

syncForm();
load();
loadCategories().catch(() => {
  /* the filter keeps "All categories"; searching still works */
});
