//! The records the store reads out and the window shows: booking rows and pages, the
//! webhook log, metrics, session types, validation problems. Plain data (serde only), so
//! the store (which fills them from SQL, where filtering and paging are cheap) and the
//! IPC protocol (which re-exports them to the UI, wasm32) share one definition without
//! the store knowing any command.

use serde::{Deserialize, Serialize};

/// One invalid field of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name as in the draft struct (`name`, `price`, `refund_tiers`...).
    pub field: String,
    pub message: String,
}

/// One tier of a refund policy: cancelled at least `min_hours_before` the start, `percent` back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundTierDto {
    pub min_hours_before: u32,
    pub percent: u8,
}

/// A session type as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTypeView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub duration_minutes: u32,
    pub price_minor: i64,
    pub currency: String,
    /// The price formatted with the currency's own exponent, such as `150.00 EUR`.
    pub price_display: String,
    pub refund_tiers: Vec<RefundTierDto>,
    pub calendly_event_type_uri: Option<String>,
    pub archived: bool,
    /// Whether its Stripe product, price and payment link exist for the current price.
    #[serde(default)]
    pub stripe_status: StripeStatus,
    /// The Stripe payment link clients pay through, once set up.
    #[serde(default)]
    pub payment_link_url: Option<String>,
    /// Every Calendly event type linked to it (see the mapping screen).
    #[serde(default)]
    pub event_type_uris: Vec<String>,
    /// How long after booking the client has to pay before the slot is released.
    #[serde(default = "default_payment_window")]
    pub payment_window_minutes: u32,
    /// The scheduling page of its most recently linked Calendly event type, where a
    /// client whose booking lapsed can book again.
    #[serde(default)]
    pub booking_url: Option<String>,
}

fn default_payment_window() -> u32 {
    24 * 60
}

/// Filters for the bookings list; every field narrows the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BookingFilter {
    /// A state name as in [`BookingSummary::state`].
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub session_type_id: Option<String>,
    /// Matches client email, invitee URI, checkout session or payment intent id.
    #[serde(default)]
    pub search: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// Sessions starting on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Sessions starting on or before this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub to: Option<String>,
    /// How many matching bookings to skip (paging).
    #[serde(default)]
    pub offset: Option<u32>,
    /// Soonest session first (the dashboard's upcoming list) instead of latest first.
    #[serde(default)]
    pub soonest_first: Option<bool>,
}

/// One row of the bookings list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingSummary {
    pub id: String,
    /// `awaiting_payment`, `confirmed`, `payment_failed`, `expired`, `cancelled`,
    /// `refund_pending`, `refunded`, `rescheduled`, `no_show`, `completed`, `disputed`.
    pub state: String,
    pub needs_attention: Option<String>,
    pub client_name: Option<String>,
    pub client_email: Option<String>,
    pub session_type_name: Option<String>,
    pub start_time: Option<String>,
    pub paid_minor: i64,
    pub refunded_minor: i64,
    pub currency: Option<String>,
}

/// One row of a booking's audit timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub from_state: Option<String>,
    pub to_state: String,
    /// What caused it: a provider event key or a coach action.
    pub cause: String,
    /// A sentence saying what happened.
    pub summary: String,
}

/// A booking with its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingDetail {
    pub summary: BookingSummary,
    pub invitee_uri: Option<String>,
    pub payment_intent: Option<String>,
    pub audit: Vec<AuditEntry>,
    /// The actions its page offers now.
    #[serde(default)]
    pub actions: OfferedActions,
}

/// The coach actions a booking's page offers: the state machine's own answer for the
/// booking as it is now. Correcting the state by hand is always offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedActions {
    pub cancel: bool,
    /// A refund of part (or the rest) of what was paid.
    pub refund: bool,
    pub no_show: bool,
    /// Send the payment (or recovery) link again.
    pub resend_link: bool,
}

/// Filters for the webhook log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InboxFilter {
    /// `stripe`, `calendly`, `coach` or `internal`.
    #[serde(default)]
    pub provider: Option<String>,
    /// `applied`, `ignored`, `parked`, `failed`, `unconfirmed` (its provider's API said
    /// otherwise), `foreign` (money Coachdesk did not ask for) or
    /// `refused` (a Stripe event of the other mode).
    #[serde(default)]
    pub status: Option<String>,
    /// Matches the event key, its type or the booking id.
    #[serde(default)]
    pub search: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// The event type, or its start (`checkout.session` matches every Checkout event).
    #[serde(default)]
    pub kind: Option<String>,
    /// Received on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Received on or before this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub to: Option<String>,
}

/// One stored input (webhook, reconciliation read, coach action, timer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    pub id: i64,
    pub provider: String,
    pub key: String,
    pub kind: String,
    pub source: String,
    pub status: String,
    pub booking_id: Option<String>,
    /// Why it was ignored, parked or failed.
    pub note: Option<String>,
    pub received_at: String,
}

/// A stored input with its raw body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxPayload {
    pub entry: InboxEntry,
    pub body: String,
}

/// A booking that needs the coach, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionItem {
    pub booking_id: String,
    pub client_name: Option<String>,
    pub start_time: Option<String>,
    pub state: String,
    /// Codes such as `paid_twice`, `refund_failed`, `payment_for_unknown_booking`.
    pub codes: Vec<String>,
    pub message: String,
}

/// Business figures per day, counted from what happened (payments that succeeded, never
/// attempts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyMetrics {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub bookings: i64,
    pub paid: i64,
    pub payment_failures: i64,
    pub cancellations: i64,
    pub revenue_minor: i64,
    pub refunds_minor: i64,
}

/// The dashboard's business metrics over a period, for one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessMetrics {
    pub currency: String,
    pub days: Vec<DailyMetrics>,
    pub bookings: i64,
    /// Bookings paid / bookings made, 0..1.
    pub conversion_rate: f64,
    /// Payment attempts that succeeded / attempts that ended (succeeded or failed), 0..1.
    pub payment_success_rate: f64,
    /// Cancelled bookings / bookings made, 0..1.
    pub cancellation_rate: f64,
    /// Median minutes from booking to payment, if any were paid.
    pub median_minutes_to_payment: Option<i64>,
    pub revenue_minor: i64,
    pub refunds_minor: i64,
}

/// One page of the bookings list with the number of bookings the filter matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingPage {
    pub items: Vec<BookingSummary>,
    /// How many bookings match the filter in all (every page).
    pub total: u64,
    /// Index of the first item in the whole result.
    pub offset: u32,
    /// The page size used.
    pub limit: u32,
}

/// What the alerts are computed from, over the dashboard's period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertCounts {
    /// Stripe and Calendly events received in the period.
    pub webhooks: u64,
    /// Of those, the ones that could not be processed (`failed`).
    pub webhooks_failed: u64,
    /// Payment attempts that ended (succeeded or failed) in the period.
    pub payments_ended: u64,
    pub payments_failed: u64,
    /// Events waiting for a booking they name (parked), whenever received.
    pub parked: u64,
    /// Timer and effect outcomes the state machine could not apply (`failed`), in the period.
    pub internal_failed: u64,
    /// Signed webhooks their provider's API contradicted (`unconfirmed`: forged or
    /// replayed), in the period.
    #[serde(default)]
    pub unconfirmed: u64,
}

/// Where a session type stands with Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StripeStatus {
    /// No product, price or payment link yet.
    #[default]
    NotSetUp,
    /// The payment link sells the current name and price.
    Ready,
    /// The name or price changed since the set-up: set it up again.
    Outdated,
}

/// A session type's Stripe objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeSetup {
    pub session_type_id: String,
    pub status: StripeStatus,
    pub product_id: String,
    pub price_id: String,
    pub payment_link_id: String,
    /// The payment link clients pay through.
    pub payment_link_url: String,
    /// True when these objects already existed for this version (nothing new was made).
    pub already_set_up: bool,
    /// What the relay was told: its `/pay/{slug}` now redirects here, or why not.
    #[serde(default)]
    pub relay_note: Option<String>,
}

/// One Calendly event type with the session type it sells, if linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTypeRow {
    pub uri: String,
    pub name: String,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// The event type's scheduling page at Calendly.
    #[serde(default)]
    pub scheduling_url: Option<String>,
    /// Bookable at Calendly now.
    pub active: bool,
    /// Still listed by Calendly (false: only our stored link remembers it).
    pub at_calendly: bool,
    #[serde(default)]
    pub session_type_id: Option<String>,
    #[serde(default)]
    pub session_type_name: Option<String>,
    /// For a linked event type: the redirect to set at Calendly, and whether clients come
    /// through it.
    #[serde(default)]
    pub redirect: Option<RedirectCheck>,
}

/// Where the redirect goes at Calendly, in the coach's words (shown beside its address).
pub const WHERE_AT_CALENDLY: &str = "At Calendly, open the event type, then Booking page options (Confirmation page): choose \"Redirect to an external site\", paste this address and turn on \"Pass event details to your redirected page\".";

/// Calendly's redirect after booking for one event type, and what the relay saw of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectCheck {
    /// The address to paste at Calendly (the relay's `/pay/{slug}`); empty when no relay
    /// is configured.
    pub url: String,
    /// `seen`, `not_seen` (the relay counted no visit yet) or `unknown` (the relay could
    /// not be asked, or there is none).
    pub state: String,
    /// The state in a sentence, such as "Redirect seen: last at 2026-12-05 17:20 UTC".
    pub message: String,
}

/// Links (or, with `session_type_id: None`, unlinks) a Calendly event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTypeLink {
    pub event_type_uri: String,
    /// The event type's name, as Calendly showed it.
    #[serde(default)]
    pub event_type_name: Option<String>,
    /// The event type's scheduling page, as Calendly showed it (for "book again" links).
    #[serde(default)]
    pub scheduling_url: Option<String>,
    #[serde(default)]
    pub session_type_id: Option<String>,
}
