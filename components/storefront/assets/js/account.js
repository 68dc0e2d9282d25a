// The account page (account.html): sign up, sign in, sign out; the shopper's
// orders (paginated) and mailbox; cancelling an order while it is `placed`;
// and the orders this browser placed as a guest (their access tokens are in
// localStorage), which can be opened and cancelled without an account.
//
// Test ids:
//   #signed-out / #signed-in              which half shows
//   #signin-form: #signin-email, #signin-password, #signin-submit, #signin-error
//       (429 too_many_attempts shows its Retry-After: data-code=too_many_attempts, #signin-retry-after counts down, data-seconds)
//   #signup-form: #signup-name, #signup-email, #signup-password, #signup-submit, #signup-error,
//       #signup-<field>-error next to the field the server named
//   #sign-out                              signs out (DELETE /api/customers/sessions/current)
//   #welcome                               "Signed in as Ada (ada@example.com)"
//   #account-alert                         notices (data-kind=signed-out|session-ended|error)
//   #orders [data-testid=order-card][data-order-id][data-status]  the shopper's orders, newest first
//       [data-testid=order-status], [data-testid=cancel-order] → [data-testid=confirm-cancel] / [data-testid=keep-order],
//       [data-testid=order-card-message]
//   #orders-pagination [data-testid=orders-prev|orders-next]
//   #mailbox [data-testid=message][data-type]  the mailbox; #mailbox-refresh
//   #guest-orders-section, #guest-orders [data-testid=order-card]  orders opened with order access tokens

import "./layout.js";
import { api, describeError, NetworkError, SIGNED_OUT_EVENT } from "./api.js";
import { getSession, setSession, clearSession, setCachedCustomer, getOrderTokens, forgetOrderToken } from "./session.js";
import { showAccount } from "./layout.js";
import { orderCard } from "./orders.js";
import { el, formatDate } from "./dom.js";

const $ = (id) => document.getElementById(id);
const PER_PAGE = 5;
let ordersPage = 1;
let countdown = null;

function notice(kind, cls, text) {
  const box = $("account-alert");
  box.className = `alert ${cls}`;
  box.dataset.kind = kind;
  box.textContent = text;
  box.hidden = !text;
}

function formError(box, error, message = describeError(error)) {
  box.dataset.code = error.code || "";
  box.replaceChildren(message);
  box.hidden = false;
}

function clock(seconds) {
  const s = Math.max(0, seconds);
  return s >= 60 ? `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")} minutes` : `${s} seconds`;
}

function render() {
  const session = getSession();
  $("signed-out").hidden = !!session;
  $("signed-in").hidden = !session;
  $("sign-out").hidden = !session;
  showAccount();
  if (session) {
    loadMe();
    loadOrders(1);
    loadMailbox();
  }
  loadGuestOrders();
}

// ---- sign in / sign up / sign out -----------------------------------------

async function signIn(email, password) {
  const session = await api("/api/customers/sessions", { method: "POST", body: { email, password } });
  setSession(session);
}

function startCountdown(seconds, submit, box) {
  clearInterval(countdown);
  let left = seconds;
  submit.disabled = true;
  const span = el("span", { id: "signin-retry-after", "aria-live": "off", dataset: { testid: "signin-retry-after", seconds: left } }, clock(left));
  box.replaceChildren("Too many failed sign-in attempts for this email. For your security, please wait ", span, " (Retry-After), then try again.");
  box.dataset.code = "too_many_attempts";
  box.hidden = false;
  countdown = setInterval(() => {
    left -= 1;
    span.textContent = clock(left);
    span.dataset.seconds = String(Math.max(0, left));
    if (left <= 0) {
      clearInterval(countdown);
      submit.disabled = false;
      box.replaceChildren("You can try again now.");
    }
  }, 1000);
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = $("signin-submit");
  const box = $("signin-error");
  if (submit.disabled) return;
  const email = $("signin-email").value.trim();
  const password = $("signin-password").value;
  if (!email || !password) {
    formError(box, {}, "Enter your email and password.");
    (!email ? $("signin-email") : $("signin-password")).focus();
    return;
  }
  box.hidden = true;
  submit.disabled = true;
  submit.textContent = "Signing in…";
  try {
    await signIn(email, password);
    $("signin-password").value = "";
    notice("signed-in", "alert-ok", "You are signed in.");
    render();
    $("account-heading").focus?.();
  } catch (error) {
    if (error.code === "too_many_attempts") {
      submit.textContent = "Sign in";
      return startCountdown(error.retryAfter ?? 60, submit, box);
    }
    formError(box, error, error.code === "invalid_credentials" ? "That email and password do not match an account." : describeError(error));
    $("signin-password").focus();
  } finally {
    if (!countdown || box.dataset.code !== "too_many_attempts") submit.disabled = false;
    submit.textContent = "Sign in";
  }
});

$("signup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = $("signup-submit");
  const box = $("signup-error");
  for (const f of ["name", "email", "password"]) {
    $(`signup-${f}-error`).textContent = "";
    $(`signup-${f}`).setAttribute("aria-invalid", "false");
  }
  box.hidden = true;
  const body = { name: $("signup-name").value.trim(), email: $("signup-email").value.trim(), password: $("signup-password").value };
  const fieldProblem = (f, message) => {
    $(`signup-${f}-error`).textContent = message;
    $(`signup-${f}`).setAttribute("aria-invalid", "true");
    $(`signup-${f}`).focus();
  };
  if (!body.name) return fieldProblem("name", "Enter your name.");
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(body.email)) return fieldProblem("email", "Enter an email address like name@example.com.");
  if (body.password.length < 10) return fieldProblem("password", "Use at least 10 characters.");
  submit.disabled = true;
  submit.textContent = "Creating your account…";
  try {
    await api("/api/customers", { method: "POST", body });
    await signIn(body.email, body.password);
    $("signup-password").value = "";
    notice("signed-in", "alert-ok", `Welcome, ${body.name}! Your account is ready and you are signed in.`);
    render();
  } catch (error) {
    const field = error.field && ["name", "email", "password"].includes(error.field) ? error.field : error.code === "email_taken" ? "email" : null;
    if (field) fieldProblem(field, error.code === "email_taken" ? "An account with this email exists already. Sign in instead." : describeError(error));
    else formError(box, error);
  } finally {
    submit.disabled = false;
    submit.textContent = "Create account";
  }
});

$("sign-out").addEventListener("click", async () => {
  const session = getSession();
  const button = $("sign-out");
  button.disabled = true;
  try {
    if (session) await api("/api/customers/sessions/current", { method: "DELETE", auth: "session" });
  } catch (error) {
    if (error instanceof NetworkError) {
      button.disabled = false;
      notice("error", "alert-error", `Could not sign out: ${describeError(error)}`);
      return;
    }
    /* 401: the session had ended anyway */
  }
  button.disabled = false;
  clearSession();
  notice("signed-out", "alert-info", "You are signed out.");
  render();
  $("signin-email").focus();
});

window.addEventListener(SIGNED_OUT_EVENT, () => {
  notice("session-ended", "alert-warn", "Your session has ended. Please sign in again.");
  render();
});

// ---- the signed-in shopper's data -------------------------------------------

async function loadMe() {
  try {
    const me = await api("/api/customers/me", { auth: "session" });
    setCachedCustomer(me);
    $("welcome").textContent = `Signed in as ${me.name} (${me.email}).`;
  } catch (error) {
    if (error.status !== 401) $("welcome").textContent = "Signed in.";
  }
}

async function loadOrders(page) {
  ordersPage = page;
  const status = $("orders-status");
  status.textContent = "Loading your orders…";
  try {
    const answer = await api(`/api/orders?page=${page}&per_page=${PER_PAGE}`, { auth: "session" });
    const list = $("orders");
    if (!answer.orders.length) {
      list.replaceChildren(el("p", { class: "card muted", dataset: { testid: "no-orders" } }, page > 1 ? "No more orders." : "You have no orders yet. ", page > 1 ? null : el("a", { href: "/" }, "Start shopping")));
    } else {
      list.replaceChildren(...answer.orders.map((order) => orderCard(order, { token: getSession()?.token, onChange: () => loadOrders(ordersPage) })));
    }
    const pages = Math.max(1, Math.ceil(answer.total / answer.per_page));
    status.textContent = answer.total ? `${answer.total} order${answer.total === 1 ? "" : "s"}${pages > 1 ? `, page ${page} of ${pages}` : ""}.` : "";
    const nav = $("orders-pagination");
    nav.replaceChildren();
    if (pages > 1) {
      const prev = el("button", { type: "button", class: "btn btn-secondary", dataset: { testid: "orders-prev" } }, "‹ Newer");
      prev.disabled = page <= 1;
      prev.addEventListener("click", () => loadOrders(page - 1));
      const next = el("button", { type: "button", class: "btn btn-secondary", dataset: { testid: "orders-next" } }, "Older ›");
      next.disabled = page >= pages;
      next.addEventListener("click", () => loadOrders(page + 1));
      nav.append(prev, el("span", { class: "small muted" }, `Page ${page} of ${pages}`), next);
    }
  } catch (error) {
    if (error.status === 401) return;
    status.textContent = `Could not load your orders: ${describeError(error)}`;
  }
}

async function loadMailbox() {
  const list = $("mailbox");
  try {
    const box = await api("/api/notifications", { auth: "session" });
    list.replaceChildren(...(box.messages.length
      ? box.messages.map((m) => el("li", { dataset: { testid: "message", type: m.type, orderId: m.order_id } },
        el("div", { class: "subject" }, m.subject),
        el("div", { class: "small muted" }, `${formatDate(m.sent_at)} · to ${m.to}`),
        el("div", { class: "small" }, m.body)))
      : [el("li", { class: "muted", dataset: { testid: "mailbox-empty" } }, "No messages yet.")]));
  } catch (error) {
    if (error.status === 401) return;
    list.replaceChildren(el("li", { class: "muted" }, `Could not load your mailbox: ${describeError(error)}`));
  }
}

$("mailbox-refresh").addEventListener("click", () => {
  loadMailbox();
  loadOrders(ordersPage);
});

// ---- a guest's orders, by their access tokens ---------------------------------

async function loadGuestOrders() {
  const tokens = getOrderTokens();
  const ids = Object.keys(tokens).sort((a, b) => String(tokens[b].saved_at).localeCompare(String(tokens[a].saved_at)));
  const section = $("guest-orders-section");
  section.hidden = ids.length === 0;
  if (!ids.length) return;
  const list = $("guest-orders");
  const cards = await Promise.all(ids.map(async (id) => {
    const token = tokens[id].token;
    try {
      const order = await api(`/api/orders/${encodeURIComponent(id)}`, { auth: token });
      return orderCard(order, { token, onChange: () => loadGuestOrders() });
    } catch (error) {
      if (error.status === 401 || error.status === 404) {
        forgetOrderToken(id); // the token no longer opens it
        return null;
      }
      return el("p", { class: "card small" }, `Order ${id}: ${describeError(error)}`);
    }
  }));
  const shown = cards.filter(Boolean);
  list.replaceChildren(...shown);
  section.hidden = shown.length === 0;
}

render();
