//! Applying events: the one path by which a booking changes.
//!
//! In one SQLite transaction: record the input in the inbox (a second delivery of the same
//! provider key is a no-op), route it to its booking, run the pure state machine, save the
//! booking, append the audit row, and queue the effects in the outbox. A crash anywhere
//! before the commit leaves nothing behind, so the relay redelivers and nothing is lost.

use coachdesk_domain::booking::{apply, BookingEvent, Effect};
use coachdesk_domain::provider::{self, Provider, ProviderEvent, Target};
use coachdesk_domain::read_back::Contradiction;
use coachdesk_domain::{Booking, BookingId};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::rows::{load_booking, save_booking};
use crate::session_types::terms_for_event_type;
use crate::{new_id, ts, Store, StoreError};

/// Where an input came from (kept on the inbox row for support).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Pulled from the relay.
    Relay,
    /// Read from a provider's API by reconciliation.
    Reconcile,
    /// Replayed by hand from the webhook log.
    Replay,
    /// The app itself: coach actions, timers, effect outcomes.
    App,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Relay => "relay",
            Self::Reconcile => "reconcile",
            Self::Replay => "replay",
            Self::App => "app",
        }
    }
}

/// What happened to one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub inbox_id: Option<i64>,
    /// The same provider key was already in the inbox: nothing changed.
    pub duplicate: bool,
    /// `applied`, `ignored` (stored, not acted on), `parked` (waiting for the payment it
    /// names), `foreign` (money on the account Coachdesk did not ask for), `refused`
    /// (Stripe's other mode), `unconfirmed` (its provider's API contradicted it), `failed`
    /// (unreadable), or `duplicate`.
    pub status: &'static str,
    pub booking_id: Option<BookingId>,
    pub note: Option<String>,
}

/// How deep forwarding may go: money facts travel one booking per hop down a chain of
/// reschedules, so this bounds the chain a fact crosses in one transaction (a guard
/// against a cycle, far above any real client's reschedules).
const MAX_FORWARD_DEPTH: usize = 32;

impl Store {
    /// Applies one raw provider body (a webhook, or an event read back from the API).
    pub fn apply_provider_event(
        &mut self,
        provider: Provider,
        body: &[u8],
        source: Source,
        now: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        let tx = self.conn.transaction()?;
        let applied = ingest(&tx, provider, body, source, None, now)?;
        tx.commit()?;
        Ok(applied)
    }

    /// Applies a batch of raw provider bodies in one transaction (the sync loop's unit).
    pub fn apply_provider_batch<'a>(
        &mut self,
        batch: impl IntoIterator<Item = (Provider, &'a [u8])>,
        source: Source,
        now: OffsetDateTime,
    ) -> Result<Vec<Applied>, StoreError> {
        self.apply_checked_batch(
            batch
                .into_iter()
                .map(|(provider, body)| (provider, body, None)),
            source,
            now,
        )
    }

    /// Applies a batch of bodies read back from their providers first, in one
    /// transaction: one the provider's API contradicted is kept as `unconfirmed`.
    pub fn apply_checked_batch<'a>(
        &mut self,
        batch: impl IntoIterator<Item = (Provider, &'a [u8], Option<&'a Contradiction>)>,
        source: Source,
        now: OffsetDateTime,
    ) -> Result<Vec<Applied>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut results = Vec::new();
        for (provider, body, contradiction) in batch {
            results.push(ingest(&tx, provider, body, source, contradiction, now)?);
        }
        tx.commit()?;
        Ok(results)
    }

    /// Applies a coach action. `action_id` is unique per click, so a double submission is
    /// one action. A refused action changes nothing and says why.
    pub fn apply_coach_action(
        &mut self,
        booking_id: &BookingId,
        action_id: &str,
        event: &BookingEvent,
        now: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        self.apply_app_event("coach", booking_id, action_id, event, now)
    }

    /// Applies a timer or an effect's outcome, deduplicated by `key`.
    pub fn apply_internal(
        &mut self,
        booking_id: &BookingId,
        key: &str,
        event: &BookingEvent,
        now: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        self.apply_app_event("internal", booking_id, key, event, now)
    }

    fn apply_app_event(
        &mut self,
        provider: &str,
        booking_id: &BookingId,
        key: &str,
        event: &BookingEvent,
        now: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        let tx = self.conn.transaction()?;
        if load_booking(&tx, booking_id)?.is_none() {
            return Err(StoreError::NotFound {
                what: "booking",
                id: booking_id.to_string(),
            });
        }
        let body = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let decision = Decision {
            status: "applied",
            note: None,
            booking_id: Some(booking_id.clone()),
            invitee_uuid: None,
        };
        let Some(inbox_id) = insert_inbox(
            &tx,
            provider,
            key,
            event.kind(),
            &body,
            Source::App,
            &decision,
            now,
        )?
        else {
            return Ok(duplicate());
        };
        apply_to_booking(
            &tx,
            booking_id,
            None,
            event,
            &format!("{provider}:{key}"),
            Some(inbox_id),
            now,
            0,
        )?;
        tx.commit()?;
        Ok(Applied {
            inbox_id: Some(inbox_id),
            duplicate: false,
            status: "applied",
            booking_id: Some(booking_id.clone()),
            note: None,
        })
    }

    /// Whether applying `body` now could change a booking, without writing anything: false
    /// for a body the inbox already holds (confirmed), one that cannot be read, and one
    /// that would only be logged (`ignored`, `foreign`, `refused`). The sync loop reads
    /// back from the provider only the events this says may act.
    pub fn may_act_on(&self, provider: Provider, body: &[u8]) -> Result<bool, StoreError> {
        let Ok(event) = provider::parse(provider, body) else {
            return Ok(false);
        };
        let known: bool = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM inbox
                 WHERE provider = ?1 AND provider_key = ?2 AND status <> 'unconfirmed'",
            )?
            .query_row(params![provider.as_str(), event.key], |_| Ok(()))
            .optional()?
            .is_some();
        if known {
            return Ok(false);
        }
        // `parked` may act later (when its booking arrives), so it counts.
        Ok(matches!(
            decide(&self.conn, &event)?.status,
            "applied" | "parked"
        ))
    }

    /// Runs a stored provider event again (admin replay). Merging is idempotent, so this
    /// can only fill in what was missed, never repeat an effect.
    pub fn replay_inbox(
        &mut self,
        inbox_id: i64,
        now: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        let tx = self.conn.transaction()?;
        let row: Option<(String, String, String)> = tx
            .query_row(
                "SELECT provider, body, status FROM inbox WHERE id = ?1",
                [inbox_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let Some((provider_name, body, status)) = row else {
            return Err(StoreError::NotFound {
                what: "stored event",
                id: inbox_id.to_string(),
            });
        };
        if status == UNCONFIRMED {
            // Its provider contradicted it: replaying would take its word after all.
            return Err(StoreError::Conflict(
                "This event was not confirmed by its provider's API, so it cannot be replayed."
                    .into(),
            ));
        }
        let Some(provider) = Provider::parse(&provider_name) else {
            return Err(StoreError::Conflict(
                "Only Stripe and Calendly events can be replayed.".into(),
            ));
        };
        let applied = match provider::parse(provider, body.as_bytes()) {
            Ok(event) => route_and_apply(&tx, inbox_id, &event, now)?,
            Err(err) => {
                mark(&tx, inbox_id, "failed", None, Some(&err.to_string()), now)?;
                failed(inbox_id, err.to_string())
            }
        };
        tx.commit()?;
        Ok(applied)
    }
}

fn duplicate() -> Applied {
    Applied {
        inbox_id: None,
        duplicate: true,
        status: "duplicate",
        booking_id: None,
        note: None,
    }
}

fn failed(inbox_id: i64, note: String) -> Applied {
    Applied {
        inbox_id: Some(inbox_id),
        duplicate: false,
        status: "failed",
        booking_id: None,
        note: Some(note),
    }
}

/// Records and applies one provider body. `contradiction`: what the provider's API said
/// against it when it was read back; such an event is kept as `unconfirmed`, never applied.
pub(crate) fn ingest(
    conn: &Connection,
    provider: Provider,
    body: &[u8],
    source: Source,
    contradiction: Option<&Contradiction>,
    now: OffsetDateTime,
) -> Result<Applied, StoreError> {
    let parsed = provider::parse(provider, body);
    let (key, kind) = match &parsed {
        Ok(event) => (event.key.clone(), event.kind.clone()),
        // Unreadable bodies are kept too, keyed by their hash, so nothing is lost.
        Err(_) => (
            format!("unreadable:{}", hex_digest(body)),
            "unreadable".to_owned(),
        ),
    };
    // Deciding only reads, so it runs first and the insert itself finds a duplicate (one
    // index probe instead of two).
    let decision = match &parsed {
        Ok(event) => decide(conn, event)?,
        Err(err) => Decision::failed(err.to_string()),
    };
    let decision = match contradiction {
        Some(contradiction) if decision.status == "applied" => Decision::unconfirmed(
            provider,
            contradiction,
            decision.booking_id,
            decision.invitee_uuid.is_some(),
        ),
        _ => decision,
    };
    // Valid UTF-8 (every JSON body) is borrowed as it is; anything else is kept readable.
    let text = match std::str::from_utf8(body) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    };
    let Some(inbox_id) = insert_inbox(
        conn,
        provider.as_str(),
        &key,
        &kind,
        &text,
        source,
        &decision,
        now,
    )?
    else {
        return Ok(duplicate());
    };
    match &parsed {
        Ok(event) => carry_out(conn, inbox_id, event, decision, now),
        Err(_) => Ok(decision.into_applied(inbox_id)),
    }
}

fn hex_digest(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Inserts the inbox row with its outcome already decided (one write per event). `None`
/// when the provider key is already in the inbox: nothing was written. The one exception:
/// a row kept `unconfirmed` is replaced by a confirmed event with the same key (the real
/// event whose id a forgery took first, or one read back again later), so a forgery can
/// never shadow the genuine event.
#[allow(clippy::too_many_arguments)]
fn insert_inbox(
    conn: &Connection,
    provider: &str,
    key: &str,
    kind: &str,
    body: &str,
    source: Source,
    decision: &Decision,
    now: OffsetDateTime,
) -> Result<Option<i64>, StoreError> {
    let now = ts(now);
    Ok(conn
        .prepare_cached(
            "INSERT INTO inbox (provider, provider_key, kind, body, source, status, booking_id,
                 error, received_at, applied_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
             ON CONFLICT (provider, provider_key) DO UPDATE SET
                 kind = excluded.kind, body = excluded.body, source = excluded.source,
                 status = excluded.status, booking_id = excluded.booking_id,
                 error = excluded.error, received_at = excluded.received_at,
                 applied_at = excluded.applied_at
             WHERE inbox.status = 'unconfirmed' AND excluded.status <> 'unconfirmed'
             RETURNING id",
        )?
        .query_row(
            params![
                provider,
                key,
                kind,
                body,
                source.as_str(),
                decision.status,
                decision.booking_id.as_ref().map(BookingId::as_str),
                decision.note,
                now
            ],
            |row| row.get(0),
        )
        .optional()?)
}

fn mark(
    conn: &Connection,
    inbox_id: i64,
    status: &str,
    booking_id: Option<&str>,
    error: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE inbox SET status = ?2, booking_id = COALESCE(?3, booking_id), error = ?4,
             applied_at = ?5 WHERE id = ?1",
    )?
    .execute(params![inbox_id, status, booking_id, error, ts(now)])?;
    Ok(())
}

/// Where an event goes.
enum Route {
    Existing(BookingId),
    New {
        invitee_uuid: Option<String>,
    },
    Park(&'static str),
    Ignore(&'static str),
    /// Money on the coach's Stripe account that Coachdesk did not ask for.
    Foreign(&'static str),
}

/// The note on a Stripe event that is not about Coachdesk's money.
pub const FOREIGN_NOTE: &str = "Not Coachdesk's: this payment was not made through Coachdesk (no booking, invitee or Coachdesk payment link), so it is only kept in the log.";
/// The status of an event its provider's API contradicted when it was read back.
pub const UNCONFIRMED: &str = "unconfirmed";
/// The start of an unconfirmed event's note.
pub const UNCONFIRMED_NOTE: &str = "Not applied: a signed webhook that the provider does not confirm (forged, or replayed out of date), so nothing was confirmed and no money moved.";
/// The note on a parked event whose payment never came.
pub const STALE_PARKED_NOTE: &str = "Not Coachdesk's: the payment this event names never reached Coachdesk, so it is only kept in the log.";
/// How long an event may wait for the payment it names before it is taken for a sale of
/// something else (Stripe retries a webhook for up to 3 days).
pub const PARKED_FOR_AT_MOST: time::Duration = time::Duration::days(3);

fn resolve(conn: &Connection, target: &Target) -> Result<Route, StoreError> {
    let find = |sql: &str, value: &str| -> Result<Option<String>, StoreError> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row([value], |row| row.get(0))
            .optional()?)
    };
    Ok(match target {
        Target::Booking(id) => match find("SELECT id FROM bookings WHERE id = ?1", id)? {
            Some(id) => Route::Existing(BookingId::from_stored(id)),
            None => Route::Park("it names a booking this database does not have"),
        },
        Target::Invitee(uri) => {
            let uuid = provider::uuid_of(uri);
            let found: Option<String> = conn
                .prepare_cached("SELECT id FROM bookings WHERE invitee_uri = ?1 OR invitee_uuid = ?2")?
                .query_row([uri.as_str(), uuid], |row| row.get(0))
                .optional()?;
            match found {
                Some(id) => Route::Existing(BookingId::from_stored(id)),
                None => Route::New {
                    invitee_uuid: Some(uuid.to_owned()),
                },
            }
        }
        Target::InviteeUuid(uuid) => {
            match find("SELECT id FROM bookings WHERE invitee_uuid = ?1", uuid)? {
                Some(id) => Route::Existing(BookingId::from_stored(id)),
                None => Route::New {
                    invitee_uuid: Some(uuid.clone()),
                },
            }
        }
        Target::PaymentIntent(pi) => match find(
            "SELECT booking_id FROM payments WHERE payment_intent = ?1
             ORDER BY carried DESC, at DESC LIMIT 1",
            pi,
        )? {
            Some(id) => Route::Existing(BookingId::from_stored(id)),
            None => Route::Park("waiting for the payment it refers to"),
        },
        Target::CheckoutSession {
            session,
            payment_link,
        } => match find(
            "SELECT booking_id FROM payments WHERE checkout_session = ?1 ORDER BY carried DESC LIMIT 1",
            session,
        )? {
            Some(id) => Route::Existing(BookingId::from_stored(id)),
            None => {
                let ours = match payment_link {
                    Some(link) => find(
                        "SELECT id FROM session_types WHERE stripe_payment_link_id = ?1",
                        link,
                    )?
                    .is_some(),
                    None => false,
                };
                if ours {
                    Route::New { invitee_uuid: None }
                } else {
                    Route::Foreign(FOREIGN_NOTE)
                }
            }
        },
        Target::None => Route::Ignore("nothing in it names a booking"),
    })
}

/// What will happen to a provider event, decided before anything is written.
struct Decision {
    status: &'static str,
    note: Option<String>,
    booking_id: Option<BookingId>,
    /// For a new booking: the invitee UUID it is known by so far.
    invitee_uuid: Option<String>,
}

impl Decision {
    fn failed(note: String) -> Self {
        Self::other("failed", note)
    }

    /// An event its provider's API contradicted: flagged, kept, not applied. It stays on
    /// the booking it names if that booking exists (`new`: it would have made one).
    fn unconfirmed(
        provider: Provider,
        contradiction: &Contradiction,
        booking_id: Option<BookingId>,
        new: bool,
    ) -> Self {
        let name = match provider {
            Provider::Stripe => "Stripe",
            Provider::Calendly => "Calendly",
        };
        Self {
            booking_id: booking_id.filter(|_| !new),
            ..Self::other(
                UNCONFIRMED,
                format!("{UNCONFIRMED_NOTE} {name}'s API answered otherwise: {contradiction}."),
            )
        }
    }

    fn other(status: &'static str, note: impl Into<String>) -> Self {
        Self {
            status,
            note: Some(note.into()),
            booking_id: None,
            invitee_uuid: None,
        }
    }

    fn into_applied(self, inbox_id: i64) -> Applied {
        Applied {
            inbox_id: Some(inbox_id),
            duplicate: false,
            status: self.status,
            booking_id: self.booking_id,
            note: self.note,
        }
    }
}

fn decide(conn: &Connection, event: &ProviderEvent) -> Result<Decision, StoreError> {
    if let Some(note) = other_mode(conn, event)? {
        return Ok(Decision::other("refused", note));
    }
    if event.event.is_none() {
        return Ok(Decision::other(
            "ignored",
            "Coachdesk does not act on this event type; it is kept for reference.",
        ));
    }
    Ok(match resolve(conn, &event.target)? {
        Route::Existing(id) => Decision {
            status: "applied",
            note: None,
            booking_id: Some(id),
            invitee_uuid: None,
        },
        Route::New { invitee_uuid } => Decision {
            status: "applied",
            note: None,
            booking_id: Some(BookingId::from_stored(new_id("bk"))),
            invitee_uuid,
        },
        Route::Park(note) => Decision::other("parked", note),
        Route::Ignore(note) => Decision::other("ignored", note),
        Route::Foreign(note) => Decision::other("foreign", note),
    })
}

/// Why a Stripe event of the other mode (live money reaching a test database, or the
/// reverse) is refused, if it is. A database with no mode claimed yet takes both.
fn other_mode(conn: &Connection, event: &ProviderEvent) -> Result<Option<String>, StoreError> {
    let Some(live) = event.livemode else {
        return Ok(None);
    };
    let mode: Option<String> = conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([crate::app_settings::MODE_SETTING], |row| row.get(0))
        .optional()?;
    let expects_live = match mode.as_deref() {
        Some("live") => true,
        Some(_) => false,
        None => return Ok(None),
    };
    Ok((live != expects_live).then(|| {
        let (event_mode, app_mode) = if live {
            ("live", "test")
        } else {
            ("test", "live")
        };
        format!(
            "Refused: a Stripe {event_mode}-mode event reached Coachdesk in {app_mode} mode; it is kept in the log and never applied."
        )
    }))
}

/// Applies a decided event to its booking (only `applied` decisions do anything).
fn carry_out(
    conn: &Connection,
    inbox_id: i64,
    event: &ProviderEvent,
    decision: Decision,
    now: OffsetDateTime,
) -> Result<Applied, StoreError> {
    if let (Some(booking_event), Some(booking_id), "applied") =
        (&event.event, &decision.booking_id, decision.status)
    {
        let cause = format!("{}:{}", event.provider.as_str(), event.key);
        apply_to_booking(
            conn,
            booking_id,
            decision.invitee_uuid.as_deref(),
            booking_event,
            &cause,
            Some(inbox_id),
            now,
            0,
        )?;
        if matches!(booking_event, BookingEvent::PaymentReported { .. }) {
            retry_parked(conn, now)?;
        }
    }
    Ok(decision.into_applied(inbox_id))
}

/// Decides and applies an event already in the inbox (replay, parked retries).
fn route_and_apply(
    conn: &Connection,
    inbox_id: i64,
    event: &ProviderEvent,
    now: OffsetDateTime,
) -> Result<Applied, StoreError> {
    let decision = decide(conn, event)?;
    mark(
        conn,
        inbox_id,
        decision.status,
        decision.booking_id.as_ref().map(BookingId::as_str),
        decision.note.as_deref(),
        now,
    )?;
    carry_out(conn, inbox_id, event, decision, now)
}

/// Parked events wait for the payment they name; a new payment may be it.
fn retry_parked(conn: &Connection, now: OffsetDateTime) -> Result<(), StoreError> {
    settle_stale_parked(conn, now)?;
    let parked: Vec<(i64, String, String)> = conn
        .prepare_cached("SELECT id, provider, body FROM inbox WHERE status = 'parked' ORDER BY id")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (inbox_id, provider_name, body) in parked {
        let Some(provider) = Provider::parse(&provider_name) else {
            continue;
        };
        let Ok(event) = provider::parse(provider, body.as_bytes()) else {
            continue;
        };
        if let Route::Existing(_) = resolve(conn, &event.target)? {
            route_and_apply(conn, inbox_id, &event, now)?;
        }
    }
    Ok(())
}

/// Events parked longer than [`PARKED_FOR_AT_MOST`] name a payment Coachdesk never saw:
/// a refund or dispute of another sale on the account. They become `foreign` (kept in
/// the log, out of the parked count the coach is alerted about). Returns how many.
pub(crate) fn settle_stale_parked(
    conn: &Connection,
    now: OffsetDateTime,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE inbox SET status = 'foreign', error = ?1
             WHERE status = 'parked' AND received_at < ?2",
        )?
        .execute(params![STALE_PARKED_NOTE, ts(now - PARKED_FOR_AT_MOST)])?)
}

impl Store {
    /// Takes events that waited too long for their payment for sales of something else
    /// (see [`PARKED_FOR_AT_MOST`]); reconciliation calls it. Returns how many.
    pub fn settle_stale_parked(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        settle_stale_parked(&self.conn, now)
    }
}

/// Fills in the session type's terms for a Calendly booking, if its event type is mapped.
fn with_terms(conn: &Connection, event: &BookingEvent) -> Result<BookingEvent, StoreError> {
    let mut event = event.clone();
    if let BookingEvent::InviteeCreated {
        schedule, terms, ..
    }
    | BookingEvent::InviteeCanceled {
        schedule, terms, ..
    } = &mut event
    {
        if terms.is_none() {
            if let Some(uri) = &schedule.event_type_uri {
                *terms = terms_for_event_type(conn, uri)?;
            }
        }
    }
    Ok(event)
}

/// Runs the state machine on one booking and writes everything it decided.
#[allow(clippy::too_many_arguments)]
fn apply_to_booking(
    conn: &Connection,
    booking_id: &BookingId,
    invitee_uuid: Option<&str>,
    event: &BookingEvent,
    cause: &str,
    inbox_id: Option<i64>,
    now: OffsetDateTime,
    depth: usize,
) -> Result<(), StoreError> {
    let existing = load_booking(conn, booking_id)?;
    let is_new = existing.is_none();
    let booking = existing.unwrap_or_else(|| Booking::new(booking_id.clone()));
    let event = with_terms(conn, event)?;
    let transition = apply(&booking, &event)?;
    let now_text = ts(now);
    save_booking(
        conn,
        (!is_new).then_some(&booking),
        &transition.booking,
        invitee_uuid,
        &now_text,
    )?;
    conn.prepare_cached(
        "INSERT INTO audit_log (booking_id, inbox_id, at, from_state, to_state, cause, event_kind, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        booking_id.as_str(),
        inbox_id,
        now_text,
        (!is_new).then(|| transition.from.as_str()),
        transition.to.as_str(),
        cause,
        event.kind(),
        transition.summary,
    ])?;
    for effect in &transition.effects {
        match effect {
            Effect::Forward { invitee_uri, event } if depth < MAX_FORWARD_DEPTH => {
                let (target, uuid) = match resolve(conn, &Target::Invitee(invitee_uri.clone()))? {
                    Route::Existing(id) => (id, None),
                    _ => (
                        BookingId::from_stored(new_id("bk")),
                        Some(provider::uuid_of(invitee_uri).to_owned()),
                    ),
                };
                let forwarded_cause = format!("{cause} (via the reschedule)");
                apply_to_booking(
                    conn,
                    &target,
                    uuid.as_deref(),
                    event,
                    &forwarded_cause,
                    inbox_id,
                    now,
                    depth + 1,
                )?;
            }
            Effect::Forward { .. } => {}
            effect => crate::outbox::enqueue(conn, booking_id, effect, now)?,
        }
    }
    Ok(())
}
