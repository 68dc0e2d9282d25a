"""Shoppers for the shop, for Locust (https://locust.io).

Each simulated user is one shopper with a cart of their own: they browse the
product list, open products, search, add to the cart, look at it and now and
then check out with one of the payment service's test cards (README, "Test
cards"); a few cancel the order right away.

A test card's refusal is the outcome the shopper asked for, not a failure of
the shop: a 402 `card_declined` for the declined card counts as a success in
Locust's statistics and is tallied under "checkout outcomes" instead. Every
failure is named by its kind alone ("409 out_of_stock", "connection refused",
"timeout"), never with an id in it, so Locust's failure table has one row per
kind and endpoint.

    locust -f load/locustfile.py --host http://127.0.0.1:3000

`cargo xtask load` runs it headless, stocks the shop first and prints a summary
(load/README.md).
"""

import csv
import json
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter
from http import HTTPStatus

import gevent
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

# (number, weight, what the shop answers): mostly good cards, a few refusals.
# Any Luhn-valid number other than the three test cards is approved.
CARDS = [
    ("4242424242424242", 86, None),  # Visa, approved
    ("5555555555554444", 6, None),  # Mastercard, approved
    ("4000000000000002", 4, (402, "card_declined")),
    ("4000000000009995", 3, (402, "insufficient_funds")),
    ("4000000000000119", 1, (503, "payment_processor_error")),  # "try again"
]
GOOD_CARD = CARDS[0][0]
# Words of product names, and one the catalog lacks (an empty result).
SEARCHES = ["espresso", "mug", "grinder", "tent", "camp", "stove", "kettle", "bottle", "jacket", "filter", "tea"]
CATEGORIES = ["coffee", "brewing", "drinkware", "camping", "apparel"]
ADDRESS = {"name": "Ada", "line1": "Hauptstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}
# Share of placed orders cancelled right after checkout.
CANCEL_SHARE = 0.08

# Checkout outcomes over the whole run, printed and written at the end.
OUTCOMES = Counter()
# Skus seen in any listing, shared by all shoppers (the catalog is small).
SKUS = []


@events.init_command_line_parser.add_listener
def _arguments(parser):
    parser.add_argument(
        "--max-fail-ratio",
        type=float,
        default=0.01,
        env_var="SHOP_LOAD_MAX_FAIL_RATIO",
        help="Exit 1 when more than this share of requests failed unexpectedly (business outcomes excluded)",
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=5.0,
        env_var="SHOP_LOAD_PROGRESS_EVERY",
        help="Seconds between one-line progress reports in headless runs (0: none)",
    )
    parser.add_argument(
        "--no-stats-tables",
        action="store_true",
        env_var="SHOP_LOAD_NO_STATS_TABLES",
        help="Leave out Locust's own stats tables (cargo xtask load prints its summary from the CSV files)",
    )


@events.init.add_listener
def _init(environment, **_):
    options = environment.parsed_options
    if options is not None and options.no_stats_tables:
        logging.getLogger("locust.stats_logger").setLevel(logging.WARNING)


def _progress(environment, every):
    started = time.monotonic()
    while True:
        gevent.sleep(every)
        total = environment.stats.total
        share = 100.0 * total.num_failures / total.num_requests if total.num_requests else 0.0
        print(
            f"[{time.monotonic() - started:5.0f}s] users {environment.runner.user_count:>4}"
            f"  req/s {total.current_rps:7.1f}  requests {total.num_requests:>7}"
            f"  failures {total.num_failures} ({share:.2f}%)  orders {OUTCOMES['placed']}",
            flush=True,
        )


@events.test_start.add_listener
def _start(environment, **_):
    options = environment.parsed_options
    if options is not None and options.headless and options.progress_every > 0:
        gevent.spawn(_progress, environment, options.progress_every)


@events.quitting.add_listener
def _verdict(environment, **_):
    options = environment.parsed_options
    total = environment.stats.total
    if options is not None and options.csv_prefix:
        with open(f"{options.csv_prefix}_outcomes.csv", "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["Outcome", "Count"])
            out.writerows(_ordered_outcomes())
    if options is not None and not options.no_stats_tables:
        print("checkout outcomes: " + (", ".join(f"{v} {k}" for k, v in _ordered_outcomes()) or "none"))
    limit = options.max_fail_ratio if options is not None else 0.01
    if total.num_requests == 0:
        logging.error("no request was made")
        environment.process_exit_code = 1
    elif total.fail_ratio > limit:
        logging.error(f"{100 * total.fail_ratio:.2f}% of requests failed, more than {100 * limit:g}%")
        environment.process_exit_code = 1
    else:
        environment.process_exit_code = 0


def _ordered_outcomes():
    order = ["placed", "cancelled", "too late to cancel", "card_declined", "insufficient_funds",
             "payment_processor_error", "retried with another card", "failed"]
    return sorted(OUTCOMES.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))


def failure_kind(response):
    """What went wrong, in words that are the same for every request of the kind."""
    error = getattr(response, "error", None)
    if not response.status_code:
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, (ConnectionResetError, BrokenPipeError)):
            return "connection reset"
        if isinstance(error, (socket.timeout, TimeoutError, gevent.Timeout)):
            return "timeout"
        return type(error).__name__ if error is not None else "no response"
    status = response.status_code
    code = None
    try:
        code = (response.json() or {}).get("error", {}).get("code")
    except Exception:
        pass
    # The shop's error codes are short snake_case words; anything else
    # (an id, a message) would split the table.
    if isinstance(code, str) and 0 < len(code) <= 40 and code.replace("_", "").isalnum() and code.islower():
        return f"{status} {code}"
    try:
        return f"{status} {HTTPStatus(status).phrase.lower()}"
    except ValueError:
        return str(status)


class Shopper(FastHttpUser):
    # Think time between pages; the shop's storefront does a request or two
    # per page. Short, so that 50 users keep a small machine busy.
    wait_time = between(0.5, 1.5)
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self):
        self.new_cart()
        self.browse()

    def new_cart(self):
        # A fresh cart per shopper and per checkout: ids are never shared.
        self.cart_id = f"load-{uuid.uuid4().hex}"
        self.cart = Counter()

    def call(self, method, path, name, expected=(200,), **kwargs):
        """A request named `name`; its answer (parsed JSON or None) when its status is expected."""
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as r:
            if r.status_code in expected:
                r.success()
                try:
                    return r.status_code, r.json()
                except Exception:
                    return r.status_code, None
            r.failure(failure_kind(r))
            return r.status_code, None

    def random_sku(self):
        return random.choice(SKUS) if SKUS else "COF-001"

    @task(10)
    def browse(self):
        per_page = random.choice([12, 24])
        page = random.choice([1, 1, 1, 2, 3]) if per_page == 12 else random.choice([1, 1, 2])
        _, body = self.call(
            "GET", f"/api/products?page={page}&per_page={per_page}", "/api/products?page={page}&per_page={per_page}"
        )
        for product in (body or {}).get("products", []):
            if product.get("sku") not in SKUS:
                SKUS.append(product["sku"])

    @task(14)
    def view_product(self):
        sku = self.random_sku()
        self.call("GET", f"/api/products/{sku}", "/api/products/{sku}")

    @task(5)
    def search(self):
        if random.random() < 0.3:
            category = random.choice(CATEGORIES)
            self.call("GET", f"/api/products?category={category}", "/api/products?category={category}")
        else:
            q = random.choice(SEARCHES)
            self.call("GET", f"/api/products?q={q}&per_page=24", "/api/products?q={q}")

    @task(5)
    def add_to_cart(self):
        sku, quantity = self.random_sku(), random.choice([1, 1, 1, 2, 3])
        status, _ = self.call(
            "POST",
            f"/api/carts/{self.cart_id}/items",
            "/api/carts/{cart_id}/items",
            json={"sku": sku, "quantity": quantity},
        )
        if status == 200:
            self.cart[sku] += quantity

    @task(4)
    def view_cart(self):
        self.call("GET", f"/api/carts/{self.cart_id}", "/api/carts/{cart_id}")

    @task(2)
    def checkout(self):
        if not self.cart:
            self.add_to_cart()
            if not self.cart:
                return
        number, _, refusal = random.choices(CARDS, weights=[c[1] for c in CARDS])[0]
        placed = self.place_order(number, refusal)
        if placed is None and refusal is not None:
            # Refused as asked: the shopper tries again with another card.
            OUTCOMES["retried with another card"] += 1
            placed = self.place_order(GOOD_CARD, None)
        if placed is None:
            return
        self.new_cart()
        if random.random() < CANCEL_SHARE:
            self.cancel(placed)

    def place_order(self, number, refusal):
        """The placed order's answer, or None (refused as the test card asks, or failed)."""
        body = {
            "cart_id": self.cart_id,
            "email": "shopper@example.com",
            "address": ADDRESS,
            "shipping": random.choice(["standard", "standard", "standard", "express"]),
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
        headers = {"idempotency-key": f"load-{uuid.uuid4().hex}"}
        with self.client.post("/api/checkout", name="/api/checkout", json=body, headers=headers, catch_response=True) as r:
            code = None
            if r.status_code and r.status_code != 201:
                try:
                    code = r.json()["error"]["code"]
                except Exception:
                    pass
            if refusal is None and r.status_code == 201:
                r.success()
                OUTCOMES["placed"] += 1
                try:
                    return r.json()
                except Exception:
                    return {}
            if refusal is not None and (r.status_code, code) == refusal:
                # A business outcome: the card is refused as documented.
                r.success()
                OUTCOMES[code] += 1
                return None
            kind = failure_kind(r)
            if refusal is not None and r.status_code == 201:
                kind = "201 test card not refused"
            r.failure(kind)
            OUTCOMES["failed"] += 1
            return None

    def cancel(self, placed):
        order_id, token = placed.get("order_id"), placed.get("order_access_token")
        if not order_id or not token:
            return
        with self.client.post(
            f"/api/orders/{order_id}/cancel",
            name="/api/orders/{id}/cancel",
            json={"reason": "changed my mind"},
            headers={"authorization": f"Bearer {token}"},
            catch_response=True,
        ) as r:
            if r.status_code == 200:
                r.success()
                OUTCOMES["cancelled"] += 1
            elif failure_kind(r) == "409 illegal_transition":
                # It shipped already: too late, as the API says can happen.
                r.success()
                OUTCOMES["too late to cancel"] += 1
            else:
                r.failure(failure_kind(r))
