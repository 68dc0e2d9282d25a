//! The saga runner: does what the planner (`domain::next`) says, calling the
//! services through [`Services`] and writing every step's start and end to a
//! [`Journal`]. Both are traits so the runner is tested natively with fakes;
//! in the component they are the WIT imports (`services.rs`) and the SQLite
//! journal (`store.rs`).
//!
//! Entries are written in batches, one transaction each, at the points where
//! recovery needs them ([`Saga::flush`]): before the call of a step that has a
//! compensation ([`Step::journaled_before_call`]), when the event is stored,
//! and when the run ends. Everything else waits for the next batch: a read-only
//! step lost in a crash leaves nothing to undo, an idempotent step after the
//! order is simply run again, and a lost end entry reads as "running", which
//! recovery resolves as it does a crash during the call. A happy checkout so
//! writes five batches instead of twenty-odd transactions, and holds the
//! checkout database's write turn that much less.

use serde_json::{Value, json};
use shop_shared::event::{self, EventLine, OrderPlaced, OrderTotals};
use shop_shared::trace::{Kind, Span};
use shop_shared::{ApiError, Money, now_millis};

use crate::domain::{
    Card, DownstreamIds, Final, Mode, Next, OrderRequest, Outcome, PricedLine, SagaState, Speed,
    Status, Step, StepRecord, StoredError, empty_cart, goods_total, interrupted, next, plan,
    price_lines, totals,
};

/// What a product costs and weighs, from the catalog.
pub type CatalogPrice = (String, Money, u32);

/// The other services, as the saga needs them. Errors are already the
/// checkout's answers (status, code, message); "nothing to undo" is `Ok`.
pub trait Services {
    fn check_customer(&self, customer_id: &str) -> Result<(), ApiError>;
    /// The cart's `(sku, quantity)` lines.
    fn load_cart(&self, cart_id: &str) -> Result<Vec<(String, u32)>, ApiError>;
    fn prices(&self, skus: &[String]) -> Result<Vec<CatalogPrice>, ApiError>;
    /// `items` are `(weight_grams, quantity)`.
    fn quote_shipping(&self, items: &[(u32, u32)], country: &str, speed: Speed) -> Result<Money, ApiError>;
    /// The total tax on goods and shipping.
    fn quote_tax(&self, country: &str, goods: &Money, shipping: &Money) -> Result<Money, ApiError>;
    fn reserve(&self, reservation_id: &str, lines: &[(String, u32)], ttl_seconds: u32) -> Result<(), ApiError>;
    fn release(&self, reservation_id: &str) -> Result<(), ApiError>;
    /// The authorization's id.
    fn authorize(&self, idempotency_key: &str, amount: &Money, card: &Card) -> Result<String, ApiError>;
    fn void(&self, idempotency_key: &str, authorization_id: &str) -> Result<(), ApiError>;
    /// The id of the authorization made under `idempotency_key`, if any: how
    /// an authorization whose answer was lost (a crash between the call and
    /// its journal entry) is found to be voided.
    fn find_authorization(&self, idempotency_key: &str) -> Result<Option<String>, ApiError>;
    fn create_order(&self, order: &NewOrder) -> Result<(), ApiError>;
    fn order_exists(&self, order_id: &str) -> Result<bool, ApiError>;
    fn fail_order(&self, order_id: &str, reason: &str) -> Result<(), ApiError>;
    fn empty_cart(&self, cart_id: &str) -> Result<(), ApiError>;
}

/// The order checkout asks the orders service to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub id: String,
    pub checkout_id: String,
    pub request: OrderRequest,
    pub lines: Vec<PricedLine>,
    pub totals: crate::domain::Totals,
    pub authorization_id: String,
    pub reservation_id: String,
}

/// An event for the outbox: SPEC §5's envelope, stored by the shared
/// transactional outbox in checkout's own database.
pub type OutboxEvent = shop_shared::event::Envelope;

/// One thing the journal records about a checkout.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// The step is about to call; until its end is journaled, its effect is
    /// uncertain.
    Started { step: Step, position: usize, at: i64 },
    Ended { step: Step, outcome: Outcome, duration_ms: Option<i64>, error: Option<String> },
    Compensated { step: Step, at: i64, duration_ms: i64 },
    /// `order.placed`, into the outbox.
    Event(OutboxEvent),
    /// A compensation failed: the checkout waits in `compensating` for recovery.
    Stuck,
    /// The final answer, which every replay of the key gets.
    Finished { status: Status, order_id: Option<String>, response: StoredError },
}

/// Where the saga writes what happens.
pub trait Journal {
    /// Writes `entries`, in order, and the saga's `state` (which a step or a
    /// compensation may have learned from) in one transaction: all or none.
    /// Fails with 409 `checkout_in_progress` once another driver has taken
    /// the checkout over.
    fn write(&mut self, entries: &[Entry], state: &SagaState) -> Result<(), ApiError>;
}

/// Knobs from Spin variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub reservation_ttl_seconds: u32,
    /// Test-only fault injection: where to block for `pause_seconds`.
    pub pause: Option<Pause>,
    pub pause_seconds: u64,
}

/// Test-only fault injection (the `checkout_pause_after_step` variable): a
/// place where the saga blocks, so a test can kill the host right there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    pub step: Step,
    /// `"<step>:before_journal"`: right after the step's call returned, before
    /// its result is journaled (the journal says the step is running, the
    /// other service has done it). Plain `"<step>"`: right after the result
    /// is journaled.
    pub before_journal: bool,
}

impl Pause {
    const BEFORE_JOURNAL: &'static str = ":before_journal";

    pub fn parse(text: &str) -> Option<Pause> {
        let (name, before_journal) = match text.strip_suffix(Self::BEFORE_JOURNAL) {
            Some(name) => (name, true),
            None => (text, false),
        };
        Step::parse(name).map(|step| Pause { step, before_journal })
    }

    /// As the variable spells it; the log line a test waits for names it.
    pub fn name(self) -> String {
        let suffix = if self.before_journal { Self::BEFORE_JOURNAL } else { "" };
        format!("{}{suffix}", self.step.name())
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conclusion {
    /// Final: the answer is stored and every replay gets it.
    Finished(Status, StoredError),
    /// A compensation could not be done now, or the order's event could not
    /// be stored: this is the answer for the client (a failure, or the
    /// placed order), and recovery will finish the checkout.
    Pending(StoredError),
}

pub struct Saga<'a, S: Services, J: Journal> {
    services: &'a S,
    journal: &'a mut J,
    settings: &'a Settings,
    checkout_id: String,
    ids: DownstreamIds,
    request: OrderRequest,
    /// Only the request that started the checkout has it; recovery never
    /// needs it, because it never authorizes.
    card: Option<Card>,
    plan: Vec<Step>,
    records: Vec<StepRecord>,
    state: SagaState,
    mode: Mode,
    /// Entries not yet written: the next [`Saga::flush`] writes them.
    pending: Vec<Entry>,
}

impl<'a, S: Services, J: Journal> Saga<'a, S, J> {
    /// A new checkout, driven by its request.
    pub fn start(
        services: &'a S,
        journal: &'a mut J,
        settings: &'a Settings,
        checkout_id: &str,
        request: OrderRequest,
        card: Card,
    ) -> Self {
        Self::with(services, journal, settings, checkout_id, request, SagaState::default(), Vec::new(), Some(card), Mode::Live)
    }

    /// A checkout whose request is gone, from its journal.
    pub fn resume(
        services: &'a S,
        journal: &'a mut J,
        settings: &'a Settings,
        checkout_id: &str,
        request: OrderRequest,
        state: SagaState,
        records: Vec<StepRecord>,
    ) -> Self {
        Self::with(services, journal, settings, checkout_id, request, state, records, None, Mode::Recover)
    }

    #[allow(clippy::too_many_arguments)]
    fn with(
        services: &'a S,
        journal: &'a mut J,
        settings: &'a Settings,
        checkout_id: &str,
        request: OrderRequest,
        state: SagaState,
        records: Vec<StepRecord>,
        card: Option<Card>,
        mode: Mode,
    ) -> Self {
        Saga {
            services,
            journal,
            settings,
            checkout_id: checkout_id.to_owned(),
            ids: DownstreamIds::of(checkout_id),
            plan: plan(request.customer_id.is_some()),
            request,
            card,
            records,
            state,
            mode,
            pending: Vec::new(),
        }
    }

    /// Runs the saga until it is finished or must wait for recovery.
    pub fn run(self) -> Result<Conclusion, ApiError> {
        // One span for the run and one per step, so a trace shows the saga
        // (see shop_shared::trace); they do nothing natively.
        let mut span = Span::transaction(&format!("checkout {}", self.checkout_id), &self.checkout_id);
        let conclusion = self.run_steps();
        match &conclusion {
            Ok(Conclusion::Finished(status, _)) => span.attribute("shop.checkout.status", format!("{status:?}").to_lowercase()),
            Ok(Conclusion::Pending(_)) => span.attribute("shop.checkout.status", "pending"),
            Err(e) => span.fail(&e.to_string()),
        }
        conclusion
    }

    fn run_steps(mut self) -> Result<Conclusion, ApiError> {
        // A step is run once per run: one that must be run again (a failed
        // publish_order_placed) waits for the next recovery.
        let mut ran = Vec::new();
        loop {
            match next(&self.plan, &self.records, self.mode) {
                Next::Run(step) if ran.contains(&step) => return self.wait(),
                Next::Run(step) => {
                    ran.push(step);
                    self.run_step(step)?
                }
                Next::Wait => return self.wait(),
                Next::Resolve(step) => self.resolve(step)?,
                Next::Compensate(step) => {
                    if let Err(error) = self.compensate(step) {
                        eprintln!("checkout {}: compensating {} failed, recovery will retry: {error}", self.checkout_id, step.name());
                        self.pending.push(Entry::Stuck);
                        self.flush()?;
                        return Ok(Conclusion::Pending(self.failure()));
                    }
                }
                Next::Finish(Final::Completed) => {
                    let response = StoredError { status: 201, body: self.placed_body().to_string() };
                    self.finish(Status::Completed, Some(self.ids.order_id.clone()), &response)?;
                    return Ok(Conclusion::Finished(Status::Completed, response));
                }
                Next::Finish(Final::Failed) => {
                    let response = self.failure();
                    self.finish(Status::Failed, None, &response)?;
                    return Ok(Conclusion::Finished(Status::Failed, response));
                }
            }
        }
    }

    /// The order exists but its event is not stored yet: the client hears
    /// of the order, and the checkout stays unfinished for recovery.
    fn wait(&mut self) -> Result<Conclusion, ApiError> {
        eprintln!("checkout {}: order.placed is not stored yet; recovery will store it", self.checkout_id);
        self.flush()?;
        Ok(Conclusion::Pending(StoredError { status: 201, body: self.placed_body().to_string() }))
    }

    fn finish(&mut self, status: Status, order_id: Option<String>, response: &StoredError) -> Result<(), ApiError> {
        self.pending.push(Entry::Finished { status, order_id, response: response.clone() });
        self.flush()
    }

    /// Writes the pending entries, with the state as it is now. Entries a
    /// failed write did not store stay pending.
    fn flush(&mut self) -> Result<(), ApiError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.journal.write(&self.pending, &self.state)?;
        self.pending.clear();
        Ok(())
    }

    fn order_placed(&self) -> bool {
        self.records.iter().any(|r| r.step == Step::CreateOrder && r.outcome == Outcome::Ok)
    }

    fn failure(&self) -> StoredError {
        self.state.failure.clone().unwrap_or_else(|| (&interrupted(&self.checkout_id)).into())
    }

    fn run_step(&mut self, step: Step) -> Result<(), ApiError> {
        let started = now_millis();
        let position = self.plan.iter().position(|s| *s == step).unwrap_or(0);
        let mut span = Span::start(&format!("saga step {}", step.name()), Kind::Internal);
        span.attribute("shop.saga.step", step.name());
        self.pending.push(Entry::Started { step, position, at: started });
        self.records.push(StepRecord { step, outcome: Outcome::Running, compensated: false });
        if step.journaled_before_call() {
            self.flush()?;
        }
        let result = self.execute(step);
        if let Err(e) = &result {
            span.fail(&e.to_string());
        }
        self.pause_at(step, true)?;
        self.end_step(step, result, Some(now_millis() - started));
        self.pause_at(step, false)
    }

    /// Blocks if the fault injection names this place; a pause after a step
    /// first writes the step's end, as its name promises.
    fn pause_at(&mut self, step: Step, before_journal: bool) -> Result<(), ApiError> {
        let Some(pause) = self.settings.pause else { return Ok(()) };
        if pause != (Pause { step, before_journal }) {
            return Ok(());
        }
        if !before_journal {
            self.flush()?;
        }
        eprintln!(
            "checkout {}: paused after {} (checkout_pause_after_step) for {} s",
            self.checkout_id,
            pause.name(),
            self.settings.pause_seconds
        );
        std::thread::sleep(std::time::Duration::from_secs(self.settings.pause_seconds));
        Ok(())
    }

    fn end_step(&mut self, step: Step, result: Result<(), ApiError>, duration_ms: Option<i64>) {
        let outcome = if result.is_ok() { Outcome::Ok } else { Outcome::Failed };
        let error = result.err();
        if let Some(error) = &error {
            eprintln!("checkout {}: {} failed: {error}", self.checkout_id, step.name());
            // After the order exists a failure does not change the answer.
            if !self.order_placed() && self.state.failure.is_none() {
                self.state.failure = Some(error.into());
            }
        }
        let error = error.as_ref().map(|e| format!("{} {}", e.code, e.message));
        self.pending.push(Entry::Ended { step, outcome, duration_ms, error });
        if let Some(record) = self.records.iter_mut().find(|r| r.step == step) {
            record.outcome = outcome;
        }
    }

    /// A step whose end was never journaled (the host died during it).
    fn resolve(&mut self, step: Step) -> Result<(), ApiError> {
        let result = match step {
            // Whether the order exists decides the direction: ask.
            Step::CreateOrder => match self.services.order_exists(&self.ids.order_id)? {
                true => Ok(()),
                false => Err(interrupted(&self.checkout_id)),
            },
            // After the order: idempotent, so simply done again.
            Step::EmptyCart | Step::PublishOrderPlaced => self.execute(step),
            // Before the order: assume the call took effect; its compensation
            // is idempotent and treats "nothing to undo" as done.
            _ => Err(interrupted(&self.checkout_id)),
        };
        self.end_step(step, result, None);
        Ok(())
    }

    fn execute(&mut self, step: Step) -> Result<(), ApiError> {
        let services = self.services;
        let country = self.request.address.country.clone();
        match step {
            Step::CheckCustomer => match &self.request.customer_id {
                Some(id) => services.check_customer(id),
                None => Ok(()),
            },
            Step::LoadCart => {
                let lines = services.load_cart(&self.request.cart_id)?;
                if lines.is_empty() {
                    return Err(empty_cart().with("cart_id", self.request.cart_id.clone()));
                }
                self.state.cart_lines = lines;
                Ok(())
            }
            Step::PriceLines => {
                let skus: Vec<String> = self.state.cart_lines.iter().map(|(sku, _)| sku.clone()).collect();
                let prices = services.prices(&skus)?;
                self.state.lines = price_lines(&self.state.cart_lines, &prices)?;
                Ok(())
            }
            Step::QuoteShipping => {
                let items: Vec<(u32, u32)> = self.state.lines.iter().map(|l| (l.weight_grams, l.quantity)).collect();
                self.state.shipping = Some(services.quote_shipping(&items, &country, self.request.shipping)?);
                Ok(())
            }
            Step::ComputeTax => {
                let goods = goods_total(&self.state.lines)?;
                let shipping = self.state.shipping.clone().ok_or_else(|| missing("the shipping quote"))?;
                let tax = services.quote_tax(&country, &goods, &shipping)?;
                self.state.totals = Some(totals(&self.state.lines, &shipping, &tax)?);
                self.state.tax = Some(tax);
                Ok(())
            }
            Step::ReserveStock => {
                services.reserve(&self.ids.reservation_id, &self.state.cart_lines, self.settings.reservation_ttl_seconds)
            }
            Step::AuthorizePayment => {
                let card = self.card.as_ref().ok_or_else(|| missing("the card"))?;
                let totals = self.state.totals.as_ref().ok_or_else(|| missing("the totals"))?;
                let amount = Money::new(totals.grand_total, &totals.currency).map_err(ApiError::internal)?;
                let id = services.authorize(&self.ids.payment_key, &amount, card)?;
                self.state.authorization_id = Some(id);
                Ok(())
            }
            Step::CreateOrder => services.create_order(&self.new_order()?),
            Step::EmptyCart => services.empty_cart(&self.request.cart_id),
            Step::PublishOrderPlaced => {
                // Stored now, with what is pending: whether it was stored
                // is this step's outcome.
                self.pending.push(Entry::Event(self.order_placed_event()?));
                let stored = self.flush();
                if stored.is_err() {
                    self.pending.retain(|entry| !matches!(entry, Entry::Event(_)));
                }
                stored
            }
        }
    }

    fn compensate(&mut self, step: Step) -> Result<(), ApiError> {
        let started = now_millis();
        let mut span = Span::start(&format!("saga compensate {}", step.name()), Kind::Internal);
        span.attribute("shop.saga.step", step.name());
        let result = self.undo(step);
        if let Err(e) = &result {
            span.fail(&e.to_string());
        }
        result.map(|()| self.compensated(step, started))
    }

    fn undo(&mut self, step: Step) -> Result<(), ApiError> {
        match step {
            Step::ReserveStock => self.services.release(&self.ids.reservation_id)?,
            Step::AuthorizePayment => {
                // Without a journaled id the call may still have authorized
                // (its answer was lost in a crash, or it failed after
                // committing): the deterministic key finds it. A decline or
                // a key never used finds nothing, and nothing is to undo.
                let id = match &self.state.authorization_id {
                    Some(id) => Some(id.clone()),
                    None => {
                        let found = self.services.find_authorization(&self.ids.payment_key)?;
                        if let Some(id) = &found {
                            eprintln!(
                                "checkout {}: found authorization {id} under key {}; voiding it",
                                self.checkout_id, self.ids.payment_key
                            );
                        }
                        found
                    }
                };
                if let Some(id) = id {
                    self.services.void(&self.ids.void_key, &id)?;
                    // Journaled with the compensation: the timeline names
                    // the authorization that was voided.
                    self.state.authorization_id = Some(id);
                }
            }
            Step::CreateOrder => self.services.fail_order(&self.ids.order_id, "checkout failed; the saga was compensated")?,
            _ => {}
        }
        Ok(())
    }

    /// Compensations are idempotent, so theirs is written with the next
    /// batch: one lost in a crash is simply done again.
    fn compensated(&mut self, step: Step, started: i64) {
        let now = now_millis();
        self.pending.push(Entry::Compensated { step, at: now, duration_ms: now - started });
        if let Some(record) = self.records.iter_mut().find(|r| r.step == step) {
            record.compensated = true;
        }
    }

    fn new_order(&self) -> Result<NewOrder, ApiError> {
        Ok(NewOrder {
            id: self.ids.order_id.clone(),
            checkout_id: self.checkout_id.clone(),
            request: self.request.clone(),
            lines: self.state.lines.clone(),
            totals: self.state.totals.clone().ok_or_else(|| missing("the totals"))?,
            authorization_id: self.state.authorization_id.clone().ok_or_else(|| missing("the authorization"))?,
            reservation_id: self.ids.reservation_id.clone(),
        })
    }

    /// `201` `{"checkout_id", "order_id", "status", "totals"}`.
    fn placed_body(&self) -> Value {
        json!({
            "checkout_id": self.checkout_id,
            "order_id": self.ids.order_id,
            "status": Status::Completed.as_str(),
            "totals": self.state.totals,
        })
    }

    /// `order.placed`, its data exactly [`OrderPlaced`], under the id derived
    /// from the checkout (so running this step again, in recovery, yields the
    /// same event, stored once).
    fn order_placed_event(&self) -> Result<OutboxEvent, ApiError> {
        let request = &self.request;
        let data = OrderPlaced {
            order_id: self.ids.order_id.clone(),
            checkout_id: Some(self.checkout_id.clone()),
            customer_id: request.customer_id.clone(),
            email: request.email.clone(),
            reservation_id: self.ids.reservation_id.clone(),
            payment_authorization_id: self.state.authorization_id.clone(),
            lines: self.state.lines.iter().map(|l| EventLine { sku: l.sku.clone(), quantity: l.quantity }).collect(),
            totals: self.state.totals.as_ref().map(|t| OrderTotals {
                items: t.items,
                shipping: t.shipping,
                tax: t.tax,
                grand_total: t.grand_total,
                currency: t.currency.clone(),
            }),
            address: request.address.clone(),
            shipping: Some(request.shipping.as_str().to_owned()),
            access_token_digest: request.access_token_digest.clone(),
        };
        OutboxEvent::with_id(self.ids.event_id.clone(), event::ORDER_PLACED, &self.checkout_id, &data)
            .map_err(ApiError::internal)
    }
}

fn missing(what: &str) -> ApiError {
    ApiError::internal(format!("the saga reached a step without {what}"))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::domain::Totals;
    use shop_shared::Address;

    /// Services that answer from fixed data and remember the calls that
    /// change state.
    #[derive(Default)]
    struct Fake {
        cart: Vec<(String, u32)>,
        decline: Option<ApiError>,
        out_of_stock: bool,
        void_fails: bool,
        /// What payment holds under the authorize key, whatever checkout
        /// learned of it.
        lost_authorization: Option<String>,
        lookup_fails: bool,
        calls: RefCell<Vec<String>>,
        /// The calls again, with the journal's writes between them when the
        /// journal shares it.
        log: Log,
    }

    type Log = Rc<RefCell<Vec<String>>>;

    impl Fake {
        fn call(&self, what: String) {
            self.log.borrow_mut().push(what.clone());
            self.calls.borrow_mut().push(what);
        }
    }

    fn eur(amount: i64) -> Money {
        Money::new(amount, "EUR").unwrap()
    }

    impl Services for Fake {
        fn check_customer(&self, _: &str) -> Result<(), ApiError> {
            Ok(())
        }
        fn load_cart(&self, _: &str) -> Result<Vec<(String, u32)>, ApiError> {
            Ok(self.cart.clone())
        }
        fn prices(&self, skus: &[String]) -> Result<Vec<CatalogPrice>, ApiError> {
            Ok(skus.iter().map(|s| (s.clone(), eur(1000), 200)).collect())
        }
        fn quote_shipping(&self, _: &[(u32, u32)], _: &str, _: Speed) -> Result<Money, ApiError> {
            Ok(eur(500))
        }
        fn quote_tax(&self, _: &str, goods: &Money, shipping: &Money) -> Result<Money, ApiError> {
            Ok(eur((goods.amount + shipping.amount) / 5))
        }
        fn reserve(&self, id: &str, _: &[(String, u32)], _: u32) -> Result<(), ApiError> {
            if self.out_of_stock {
                return Err(ApiError::conflict("out_of_stock", "no"));
            }
            self.call(format!("reserve {id}"));
            Ok(())
        }
        fn release(&self, id: &str) -> Result<(), ApiError> {
            self.call(format!("release {id}"));
            Ok(())
        }
        fn authorize(&self, key: &str, amount: &Money, _: &Card) -> Result<String, ApiError> {
            if let Some(error) = &self.decline {
                return Err(error.clone());
            }
            self.call(format!("authorize {key} {}", amount.amount));
            Ok("pay_1".into())
        }
        fn void(&self, _: &str, id: &str) -> Result<(), ApiError> {
            if self.void_fails {
                return Err(ApiError::unavailable("payment_unavailable", "down"));
            }
            self.call(format!("void {id}"));
            Ok(())
        }
        fn find_authorization(&self, key: &str) -> Result<Option<String>, ApiError> {
            assert_eq!(key, "chk_1:authorize");
            if self.lookup_fails {
                return Err(ApiError::unavailable("payment_unavailable", "down"));
            }
            Ok(self.lost_authorization.clone())
        }
        fn create_order(&self, order: &NewOrder) -> Result<(), ApiError> {
            self.call(format!("create {}", order.id));
            Ok(())
        }
        fn order_exists(&self, _: &str) -> Result<bool, ApiError> {
            Ok(false)
        }
        fn fail_order(&self, id: &str, _: &str) -> Result<(), ApiError> {
            self.call(format!("fail {id}"));
            Ok(())
        }
        fn empty_cart(&self, id: &str) -> Result<(), ApiError> {
            self.call(format!("empty {id}"));
            Ok(())
        }
    }

    /// A journal in memory, with the same transitions as the SQLite one.
    #[derive(Default)]
    struct Memory {
        status: Option<Status>,
        steps: Vec<(Step, Outcome, bool)>,
        outbox: Vec<OutboxEvent>,
        response: Option<StoredError>,
        /// The state as last journaled.
        state: Option<SagaState>,
        /// Shared with [`Fake::log`]: writes and calls in the order they
        /// happened.
        log: Log,
    }

    impl Memory {
        fn sharing(log: &Log) -> Memory {
            Memory { log: log.clone(), ..Memory::default() }
        }

        /// A resumed saga's earlier steps are in the store, not here.
        fn step(&mut self, step: Step) -> &mut (Step, Outcome, bool) {
            match self.steps.iter().position(|s| s.0 == step) {
                Some(i) => &mut self.steps[i],
                None => {
                    self.steps.push((step, Outcome::Ok, false));
                    self.steps.last_mut().unwrap()
                }
            }
        }
    }

    impl Journal for Memory {
        fn write(&mut self, entries: &[Entry], state: &SagaState) -> Result<(), ApiError> {
            let mut written = Vec::new();
            for entry in entries {
                match entry {
                    Entry::Started { step, .. } => {
                        *self.step(*step) = (*step, Outcome::Running, false);
                        written.push(format!("started {}", step.name()));
                    }
                    Entry::Ended { step, outcome, .. } => {
                        self.step(*step).1 = *outcome;
                        written.push(format!("{} {}", outcome.as_str(), step.name()));
                    }
                    Entry::Compensated { step, .. } => {
                        self.step(*step).2 = true;
                        written.push(format!("compensated {}", step.name()));
                    }
                    Entry::Event(event) => {
                        self.outbox.push(event.clone());
                        written.push("event".into());
                    }
                    Entry::Stuck => {
                        self.status = Some(Status::Compensating);
                        written.push("stuck".into());
                    }
                    Entry::Finished { status, response, .. } => {
                        let from = self.status.unwrap_or(Status::Running);
                        assert!(from.can_become(*status), "{from:?} -> {status:?}");
                        self.status = Some(*status);
                        self.response = Some(response.clone());
                        written.push(format!("finished {}", status.as_str()));
                    }
                }
            }
            self.state = Some(state.clone());
            self.log.borrow_mut().push(format!("write [{}]", written.join(", ")));
            Ok(())
        }
    }

    fn request() -> OrderRequest {
        OrderRequest {
            access_token_digest: None,
            cart_id: "cart-1".into(),
            email: "a@b.de".into(),
            customer_id: None,
            address: Address {
                name: "A".into(),
                line1: "B".into(),
                line2: None,
                city: "C".into(),
                postal_code: "1".into(),
                country: "DE".into(),
            },
            shipping: Speed::Standard,
            card_last4: "4242".into(),
        }
    }

    fn card() -> Card {
        Card { number: "4242424242424242".into(), exp_month: 1, exp_year: 2030, cvc: "123".into() }
    }

    fn settings() -> Settings {
        Settings { reservation_ttl_seconds: 60, pause: None, pause_seconds: 0 }
    }

    fn run(fake: &Fake, journal: &mut Memory) -> Conclusion {
        let settings = settings();
        Saga::start(fake, journal, &settings, "chk_1", request(), card()).run().unwrap()
    }

    #[test]
    fn a_happy_checkout_places_the_order_and_writes_the_event() {
        let fake = Fake { cart: vec![("A".into(), 2)], ..Fake::default() };
        let mut journal = Memory::default();
        let Conclusion::Finished(Status::Completed, response) = run(&fake, &mut journal) else { panic!() };
        assert_eq!(response.status, 201);
        let body: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(body["order_id"], "ord_1");
        // 2 × 10.00 + 5.00 shipping + 20 % of both.
        let totals: Totals = serde_json::from_value(body["totals"].clone()).unwrap();
        assert_eq!((totals.items, totals.shipping, totals.tax, totals.grand_total), (2000, 500, 500, 3000));
        assert_eq!(
            *fake.calls.borrow(),
            ["reserve res_1", "authorize chk_1:authorize 3000", "create ord_1", "empty cart-1"]
        );
        assert_eq!(journal.outbox.len(), 1);
        let event = &journal.outbox[0];
        assert_eq!((event.kind.as_str(), event.correlation_id.as_str(), event.id.as_str()), ("order.placed", "chk_1", "evt_1"));
        assert_eq!(event.data["order_id"], "ord_1");
        assert!(journal.steps.iter().all(|s| s.1 == Outcome::Ok));
    }

    #[test]
    fn a_step_with_a_compensation_is_journaled_as_running_before_its_call_and_the_rest_waits_for_the_next_write() {
        let log = Log::default();
        let fake = Fake { cart: vec![("A".into(), 2)], log: log.clone(), ..Fake::default() };
        let mut journal = Memory::sharing(&log);
        run(&fake, &mut journal);
        assert_eq!(
            *log.borrow(),
            [
                "write [started load_cart, ok load_cart, started price_lines, ok price_lines, started quote_shipping, \
                 ok quote_shipping, started compute_tax, ok compute_tax, started reserve_stock]",
                "reserve res_1",
                "write [ok reserve_stock, started authorize_payment]",
                "authorize chk_1:authorize 3000",
                "write [ok authorize_payment, started create_order]",
                "create ord_1",
                // After the order a crash finds create_order running, asks
                // orders, and goes forward: emptying the cart again is harmless.
                "empty cart-1",
                "write [ok create_order, started empty_cart, ok empty_cart, started publish_order_placed, event]",
                "write [ok publish_order_placed, finished completed]",
            ]
        );
    }

    #[test]
    fn a_failed_checkout_writes_its_compensations_with_its_answer() {
        let log = Log::default();
        let decline = ApiError::new(402, "card_declined", "declined");
        let fake = Fake { cart: vec![("A".into(), 1)], decline: Some(decline), log: log.clone(), ..Fake::default() };
        let mut journal = Memory::sharing(&log);
        run(&fake, &mut journal);
        let log = log.borrow();
        assert_eq!(log[log.len() - 2..], [
            "release res_1",
            "write [failed authorize_payment, compensated authorize_payment, compensated reserve_stock, finished failed]",
        ]);
    }

    #[test]
    fn a_pause_after_a_step_comes_after_its_end_is_written() {
        let log = Log::default();
        let fake = Fake { cart: vec![("A".into(), 1)], log: log.clone(), ..Fake::default() };
        let mut journal = Memory::sharing(&log);
        let settings = Settings { pause: Pause::parse("reserve_stock"), ..settings() };
        Saga::start(&fake, &mut journal, &settings, "chk_1", request(), card()).run().unwrap();
        let log = log.borrow();
        let at = log.iter().position(|line| line == "reserve res_1").unwrap();
        assert_eq!(log[at + 1], "write [ok reserve_stock]");
        assert_eq!(log[at + 2], "write [started authorize_payment]");
    }

    #[test]
    fn the_order_placed_event_carries_exactly_the_shared_order_placed_data() {
        let fake = Fake { cart: vec![("A".into(), 2), ("B".into(), 1)], ..Fake::default() };
        let mut journal = Memory::default();
        run(&fake, &mut journal);
        let event = &journal.outbox[0];
        let placed: OrderPlaced = event.data_as().unwrap();
        assert_eq!(
            placed,
            OrderPlaced {
                access_token_digest: None,
                order_id: "ord_1".into(),
                checkout_id: Some("chk_1".into()),
                customer_id: None,
                email: "a@b.de".into(),
                reservation_id: "res_1".into(),
                payment_authorization_id: Some("pay_1".into()),
                lines: vec![
                    EventLine { sku: "A".into(), quantity: 2 },
                    EventLine { sku: "B".into(), quantity: 1 },
                ],
                totals: Some(OrderTotals {
                    items: 3000,
                    shipping: 500,
                    tax: 700,
                    grand_total: 4200,
                    currency: "EUR".into()
                }),
                address: request().address,
                shipping: Some("standard".into()),
            }
        );
        // Serialized back, it is the same JSON: nothing more, nothing less.
        assert_eq!(event.data, serde_json::to_value(&placed).unwrap());
        assert!(event.data.get("customer_id").is_none(), "a guest has no customer_id field");
        assert_eq!(event.version, 1);
        assert!(event.occurred_at.ends_with('Z'));
    }

    #[test]
    fn a_declined_card_releases_the_reservation_and_answers_402() {
        let decline = ApiError::new(402, "card_declined", "declined");
        let fake = Fake { cart: vec![("A".into(), 1)], decline: Some(decline), ..Fake::default() };
        let mut journal = Memory::default();
        let Conclusion::Finished(Status::Failed, response) = run(&fake, &mut journal) else { panic!() };
        assert_eq!(response.status, 402);
        assert!(response.body.contains("card_declined"));
        assert_eq!(*fake.calls.borrow(), ["reserve res_1", "release res_1"]);
        let reserve = journal.steps.iter().find(|s| s.0 == Step::ReserveStock).unwrap();
        assert_eq!((reserve.1, reserve.2), (Outcome::Ok, true));
        assert!(journal.outbox.is_empty());
    }

    #[test]
    fn an_empty_cart_fails_before_anything_changes() {
        let fake = Fake::default();
        let mut journal = Memory::default();
        let Conclusion::Finished(Status::Failed, response) = run(&fake, &mut journal) else { panic!() };
        assert_eq!(response.status, 422);
        assert!(response.body.contains("empty_cart"));
        assert!(fake.calls.borrow().is_empty());
    }

    #[test]
    fn out_of_stock_authorizes_nothing() {
        let fake = Fake { cart: vec![("A".into(), 1)], out_of_stock: true, ..Fake::default() };
        let mut journal = Memory::default();
        let Conclusion::Finished(Status::Failed, response) = run(&fake, &mut journal) else { panic!() };
        assert_eq!(response.status, 409);
        // The failed reservation is released in case it took effect.
        assert_eq!(*fake.calls.borrow(), ["release res_1"]);
    }

    #[test]
    fn recovery_of_an_authorized_checkout_voids_and_releases() {
        let fake = Fake { cart: vec![("A".into(), 1)], ..Fake::default() };
        let mut journal = Memory::default();
        let settings = settings();
        let state = SagaState { authorization_id: Some("pay_9".into()), ..SagaState::default() };
        let records: Vec<StepRecord> = plan(false)
            .into_iter()
            .take_while(|s| *s != Step::CreateOrder)
            .map(|step| StepRecord { step, outcome: Outcome::Ok, compensated: false })
            .collect();
        let conclusion = Saga::resume(&fake, &mut journal, &settings, "chk_1", request(), state, records).run().unwrap();
        let Conclusion::Finished(Status::Failed, response) = conclusion else { panic!("{conclusion:?}") };
        assert!(response.body.contains("checkout_interrupted"));
        assert_eq!(*fake.calls.borrow(), ["void pay_9", "release res_1"]);
    }

    #[test]
    fn a_void_that_fails_leaves_the_checkout_compensating_for_recovery() {
        let fake = Fake { cart: vec![("A".into(), 1)], void_fails: true, ..Fake::default() };
        let mut journal = Memory::default();
        let settings = settings();
        let state = SagaState { authorization_id: Some("pay_9".into()), ..SagaState::default() };
        let records = vec![
            StepRecord { step: Step::ReserveStock, outcome: Outcome::Ok, compensated: false },
            StepRecord { step: Step::AuthorizePayment, outcome: Outcome::Ok, compensated: false },
        ];
        let conclusion = Saga::resume(&fake, &mut journal, &settings, "chk_1", request(), state, records).run().unwrap();
        assert!(matches!(conclusion, Conclusion::Pending(_)), "{conclusion:?}");
        assert_eq!(journal.status, Some(Status::Compensating));
        assert!(fake.calls.borrow().is_empty(), "the reservation is released only after the void");
    }

    /// The journal of a checkout the host died in while authorizing: the
    /// stock is reserved, the authorize call started and its end (and the
    /// authorization id) never journaled.
    fn killed_while_authorizing() -> Vec<StepRecord> {
        vec![
            StepRecord { step: Step::ReserveStock, outcome: Outcome::Ok, compensated: false },
            StepRecord { step: Step::AuthorizePayment, outcome: Outcome::Running, compensated: false },
        ]
    }

    #[test]
    fn recovery_finds_an_authorization_whose_answer_was_lost_by_its_key_and_voids_it() {
        let fake = Fake { lost_authorization: Some("pay_lost".into()), ..Fake::default() };
        let mut journal = Memory::default();
        let settings = settings();
        let conclusion =
            Saga::resume(&fake, &mut journal, &settings, "chk_1", request(), SagaState::default(), killed_while_authorizing())
                .run()
                .unwrap();
        let Conclusion::Finished(Status::Failed, response) = conclusion else { panic!("{conclusion:?}") };
        assert!(response.body.contains("checkout_interrupted"));
        assert_eq!(*fake.calls.borrow(), ["void pay_lost", "release res_1"]);
        assert_eq!(
            journal.state.unwrap().authorization_id.as_deref(),
            Some("pay_lost"),
            "the timeline names the authorization that was voided"
        );
    }

    #[test]
    fn recovery_voids_nothing_when_the_lost_call_authorized_nothing() {
        let fake = Fake::default();
        let mut journal = Memory::default();
        let settings = settings();
        let conclusion =
            Saga::resume(&fake, &mut journal, &settings, "chk_1", request(), SagaState::default(), killed_while_authorizing())
                .run()
                .unwrap();
        assert!(matches!(conclusion, Conclusion::Finished(Status::Failed, _)), "{conclusion:?}");
        assert_eq!(*fake.calls.borrow(), ["release res_1"]);
    }

    #[test]
    fn a_lookup_that_fails_leaves_the_checkout_compensating_for_recovery() {
        let fake = Fake { lookup_fails: true, ..Fake::default() };
        let mut journal = Memory::default();
        let settings = settings();
        let conclusion =
            Saga::resume(&fake, &mut journal, &settings, "chk_1", request(), SagaState::default(), killed_while_authorizing())
                .run()
                .unwrap();
        assert!(matches!(conclusion, Conclusion::Pending(_)), "{conclusion:?}");
        assert_eq!(journal.status, Some(Status::Compensating));
        assert!(fake.calls.borrow().is_empty(), "the reservation is released only after the authorization is settled");
    }

    #[test]
    fn an_authorize_that_failed_after_authorizing_is_found_and_voided() {
        // payment committed, then its answer failed on the way back.
        let fake = Fake {
            cart: vec![("A".into(), 1)],
            decline: Some(ApiError::unavailable("payment_unavailable", "down")),
            lost_authorization: Some("pay_2".into()),
            ..Fake::default()
        };
        let mut journal = Memory::default();
        let Conclusion::Finished(Status::Failed, response) = run(&fake, &mut journal) else { panic!() };
        assert_eq!(response.status, 503);
        assert_eq!(*fake.calls.borrow(), ["reserve res_1", "void pay_2", "release res_1"]);
    }

    #[test]
    fn pauses_are_a_step_or_a_step_before_its_journal_entry() {
        assert_eq!(Pause::parse("reserve_stock"), Some(Pause { step: Step::ReserveStock, before_journal: false }));
        let before = Pause::parse("authorize_payment:before_journal").unwrap();
        assert_eq!(before, Pause { step: Step::AuthorizePayment, before_journal: true });
        assert_eq!(before.name(), "authorize_payment:before_journal");
        assert_eq!(Pause::parse("create_order").unwrap().name(), "create_order");
        for bad in ["", "nope", "authorize_payment:after", ":before_journal"] {
            assert_eq!(Pause::parse(bad), None, "{bad}");
        }
    }
}
