//! Session types: create, edit, archive, list; and their Calendly event-type mapping.

use coachdesk_domain::session_type::{slugify, SessionTypeSpec};
use coachdesk_domain::{Money, RefundPolicy, RefundTier};
use coachdesk_views::{FieldError, RefundTierDto, SessionTypeView, StripeSetup, StripeStatus};
use rusqlite::{params, OptionalExtension, Row};
use time::OffsetDateTime;

use crate::{new_id, ts, Store, StoreError};

const COLUMNS: &str = "s.id, s.slug, s.name, s.duration_minutes, s.price_minor, s.currency, \
     s.refund_policy, s.archived, \
     (SELECT m.calendly_event_type_uri FROM event_type_mappings m WHERE m.session_type_id = s.id \
      ORDER BY m.mapped_at DESC LIMIT 1), \
     s.version, s.stripe_version, s.payment_link_url, \
     (SELECT group_concat(u, ' ') FROM (SELECT m.calendly_event_type_uri AS u \
      FROM event_type_mappings m WHERE m.session_type_id = s.id ORDER BY m.mapped_at, u)), \
     s.payment_window_minutes, \
     (SELECT m.scheduling_url FROM event_type_mappings m WHERE m.session_type_id = s.id \
      AND m.scheduling_url IS NOT NULL ORDER BY m.mapped_at DESC LIMIT 1)";

impl Store {
    /// Session types, newest first; archived ones only when asked.
    pub fn list_session_types(
        &self,
        include_archived: bool,
    ) -> Result<Vec<SessionTypeView>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM session_types s WHERE (?1 OR s.archived = 0) \
             ORDER BY s.archived, s.created_at DESC, s.id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([include_archived], view_from_row)?;
        rows.map(|row| row.map_err(StoreError::from).and_then(|r| r))
            .collect()
    }

    /// One session type by id.
    pub fn session_type(&self, id: &str) -> Result<SessionTypeView, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM session_types s WHERE s.id = ?1");
        self.conn
            .query_row(&sql, [id], view_from_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "session type",
                id: id.to_owned(),
            })?
    }

    /// Stores a new session type (validated by the caller: a domain spec).
    pub fn insert_session_type(
        &mut self,
        spec: &SessionTypeSpec,
    ) -> Result<SessionTypeView, StoreError> {
        let now = ts(OffsetDateTime::now_utc());
        let id = new_id("st");
        let tx = self.conn.transaction()?;
        let slug = unique_slug(&tx, &slugify(&spec.name), None)?;
        tx.execute(
            "INSERT INTO session_types (id, slug, name, duration_minutes, price_minor, currency,
                 refund_policy, created_at, updated_at, payment_window_minutes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
            params![
                id,
                slug,
                spec.name,
                spec.duration_minutes,
                spec.price.minor,
                spec.price.currency.code(),
                policy_json(&spec.refund_policy)?,
                now,
                spec.payment_window_minutes
            ],
        )?;
        map_event_type(&tx, &id, spec.calendly_event_type_uri.as_deref(), &now)?;
        tx.commit()?;
        self.session_type(&id)
    }

    /// Stores new values for a session type. Existing bookings keep the terms they were
    /// booked under.
    pub fn save_session_type(
        &mut self,
        id: &str,
        spec: &SessionTypeSpec,
    ) -> Result<SessionTypeView, StoreError> {
        self.session_type(id)?;
        let now = ts(OffsetDateTime::now_utc());
        let tx = self.conn.transaction()?;
        // A new name or price is a new version: Stripe prices cannot change, so the
        // payment link must be set up again (with keys of the new version).
        tx.execute(
            "UPDATE session_types SET name = ?2, duration_minutes = ?3, price_minor = ?4,
                 currency = ?5, refund_policy = ?6, updated_at = ?7, payment_window_minutes = ?8,
                 version = version + (name <> ?2 OR price_minor <> ?4 OR currency <> ?5)
             WHERE id = ?1",
            params![
                id,
                spec.name,
                spec.duration_minutes,
                spec.price.minor,
                spec.price.currency.code(),
                policy_json(&spec.refund_policy)?,
                now,
                spec.payment_window_minutes
            ],
        )?;
        map_event_type(&tx, id, spec.calendly_event_type_uri.as_deref(), &now)?;
        tx.commit()?;
        self.session_type(id)
    }

    /// Archives a session type: hidden from new sales, kept for its bookings.
    pub fn archive_session_type(&mut self, id: &str) -> Result<SessionTypeView, StoreError> {
        let changed = self.conn.execute(
            "UPDATE session_types SET archived = 1, updated_at = ?2 WHERE id = ?1",
            params![id, ts(OffsetDateTime::now_utc())],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "session type",
                id: id.to_owned(),
            });
        }
        self.session_type(id)
    }
}

/// What setting up a session type in Stripe needs: its name and price as of `version`,
/// and the objects already made for that version, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSetupPlan {
    pub session_type_id: String,
    pub name: String,
    pub price: Money,
    pub version: i64,
    pub archived: bool,
    /// Set when the product, price and link exist for this very version.
    pub existing: Option<StripeSetup>,
}

impl StripeSetupPlan {
    /// The prefix of the set-up's Idempotency-Keys: the same for a double click or a
    /// retry, new once the name or price changes.
    pub fn idempotency_prefix(&self) -> String {
        format!("coachdesk-{}-v{}", self.session_type_id, self.version)
    }
}

/// The Stripe objects made for a session type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeObjects {
    pub product_id: String,
    pub price_id: String,
    pub payment_link_id: String,
    pub payment_link_url: String,
}

impl Store {
    /// The session type's Stripe set-up plan.
    pub fn stripe_setup_plan(&self, id: &str) -> Result<StripeSetupPlan, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT name, price_minor, currency, version, archived, stripe_version,
                        stripe_product_id, stripe_price_id, stripe_payment_link_id, payment_link_url
                 FROM session_types WHERE id = ?1",
                [id],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, bool>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        (
                            row.get::<_, Option<String>>(6)?,
                            row.get::<_, Option<String>>(7)?,
                            row.get::<_, Option<String>>(8)?,
                            row.get::<_, Option<String>>(9)?,
                        ),
                    ))
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                what: "session type",
                id: id.to_owned(),
            })?;
        let (name, price_minor, currency, version, archived, stripe_version, objects) = row;
        let currency = coachdesk_domain::Currency::parse(&currency)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let existing = match (stripe_version == Some(version), objects) {
            (true, (Some(product_id), Some(price_id), Some(payment_link_id), Some(url))) => {
                Some(StripeSetup {
                    session_type_id: id.to_owned(),
                    status: StripeStatus::Ready,
                    product_id,
                    price_id,
                    payment_link_id,
                    payment_link_url: url,
                    already_set_up: true,
                    relay_note: None,
                })
            }
            _ => None,
        };
        Ok(StripeSetupPlan {
            session_type_id: id.to_owned(),
            name,
            price: Money::new(price_minor, currency),
            version,
            archived,
            existing,
        })
    }

    /// Stores the Stripe objects made for `version` of the session type. Refused when the
    /// name or price changed meanwhile (the objects sell the old one).
    pub fn record_stripe_setup(
        &mut self,
        id: &str,
        version: i64,
        objects: &StripeObjects,
    ) -> Result<StripeSetup, StoreError> {
        let changed = self.conn.execute(
            "UPDATE session_types SET stripe_product_id = ?3, stripe_price_id = ?4,
                 stripe_payment_link_id = ?5, payment_link_url = ?6, stripe_version = ?2,
                 updated_at = ?7
             WHERE id = ?1 AND version = ?2",
            params![
                id,
                version,
                objects.product_id,
                objects.price_id,
                objects.payment_link_id,
                objects.payment_link_url,
                ts(OffsetDateTime::now_utc())
            ],
        )?;
        if changed == 0 {
            self.session_type(id)?;
            return Err(StoreError::Conflict(
                "The name or price changed while Stripe was being set up; set it up again."
                    .to_owned(),
            ));
        }
        Ok(StripeSetup {
            session_type_id: id.to_owned(),
            status: StripeStatus::Ready,
            product_id: objects.product_id.clone(),
            price_id: objects.price_id.clone(),
            payment_link_id: objects.payment_link_id.clone(),
            payment_link_url: objects.payment_link_url.clone(),
            already_set_up: false,
            relay_note: None,
        })
    }
}

impl Store {
    /// The relay's `/pay/{slug}` table: every session type still sold whose payment link
    /// sells its current name and price.
    pub fn payment_link_routes(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT slug, payment_link_url FROM session_types
             WHERE archived = 0 AND stripe_version = version AND payment_link_url IS NOT NULL
             ORDER BY slug",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The terms a booking of this Calendly event type is sold under, if it is mapped.
pub(crate) fn terms_for_event_type(
    conn: &rusqlite::Connection,
    event_type_uri: &str,
) -> Result<Option<coachdesk_domain::booking::Terms>, StoreError> {
    {
        let row = conn
            .prepare_cached(
                "SELECT s.id, s.price_minor, s.currency, s.refund_policy, s.payment_window_minutes
                 FROM event_type_mappings m JOIN session_types s ON s.id = m.session_type_id
                 WHERE m.calendly_event_type_uri = ?1",
            )?
            .query_row([event_type_uri], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, u32>(4)?,
                ))
            })
            .optional()?;
        let Some((id, price_minor, currency, policy, window)) = row else {
            return Ok(None);
        };
        let currency = coachdesk_domain::Currency::parse(&currency)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(coachdesk_domain::booking::Terms {
            session_type_id: id,
            price: Money::new(price_minor, currency),
            policy: parse_policy(&policy)?,
            payment_window_minutes: window,
        }))
    }
}

/// `Ready` when the Stripe objects were made for the current version.
fn stripe_status(version: i64, stripe_version: Option<i64>) -> StripeStatus {
    match stripe_version {
        None => StripeStatus::NotSetUp,
        Some(v) if v == version => StripeStatus::Ready,
        Some(_) => StripeStatus::Outdated,
    }
}

fn map_event_type(
    tx: &rusqlite::Transaction<'_>,
    session_type_id: &str,
    uri: Option<&str>,
    now: &str,
) -> Result<(), StoreError> {
    if let Some(uri) = uri {
        let taken: Option<String> = tx
            .query_row(
                "SELECT s.name FROM event_type_mappings m JOIN session_types s ON s.id = m.session_type_id
                 WHERE m.calendly_event_type_uri = ?1 AND m.session_type_id <> ?2",
                [uri, session_type_id],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(other) = taken {
            return Err(StoreError::Invalid(vec![FieldError {
                field: "calendly_event_type_uri".into(),
                message: format!(
                    "This Calendly event type already sells \"{other}\"; unlink it there first."
                ),
            }]));
        }
        tx.execute(
            "INSERT INTO event_type_mappings (calendly_event_type_uri, session_type_id, mapped_at)
             VALUES (?1, ?2, ?3) ON CONFLICT (calendly_event_type_uri) DO NOTHING",
            [uri, session_type_id, now],
        )?;
    }
    Ok(())
}

fn unique_slug(
    tx: &rusqlite::Transaction<'_>,
    base: &str,
    except_id: Option<&str>,
) -> Result<String, StoreError> {
    let mut slug = base.to_owned();
    for n in 2.. {
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM session_types WHERE slug = ?1 AND id IS NOT ?2)",
            params![slug, except_id],
            |row| row.get(0),
        )?;
        if !taken {
            break;
        }
        slug = format!("{base}-{n}");
    }
    Ok(slug)
}

fn policy_json(policy: &RefundPolicy) -> Result<String, StoreError> {
    serde_json::to_string(policy.tiers()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn parse_policy(json: &str) -> Result<RefundPolicy, StoreError> {
    let tiers: Vec<RefundTier> =
        serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    RefundPolicy::new(tiers).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn view_from_row(row: &Row<'_>) -> rusqlite::Result<Result<SessionTypeView, StoreError>> {
    let currency: String = row.get(5)?;
    let price_minor: i64 = row.get(4)?;
    let policy: String = row.get(6)?;
    let id: String = row.get(0)?;
    let slug: String = row.get(1)?;
    let name: String = row.get(2)?;
    let duration_minutes: u32 = row.get(3)?;
    let archived: bool = row.get(7)?;
    let calendly_event_type_uri: Option<String> = row.get(8)?;
    let version: i64 = row.get(9)?;
    let stripe_version: Option<i64> = row.get(10)?;
    let payment_link_url: Option<String> = row.get(11)?;
    let event_type_uris: Option<String> = row.get(12)?;
    let payment_window_minutes: u32 = row.get(13)?;
    let booking_url: Option<String> = row.get(14)?;
    Ok((|| {
        let parsed = coachdesk_domain::Currency::parse(&currency)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let refund_tiers = parse_policy(&policy)?
            .tiers()
            .iter()
            .map(|t| RefundTierDto {
                min_hours_before: t.min_hours_before,
                percent: t.percent,
            })
            .collect();
        Ok(SessionTypeView {
            id,
            slug,
            name,
            duration_minutes,
            price_minor,
            price_display: Money::new(price_minor, parsed).to_string(),
            currency: parsed.code().to_owned(),
            refund_tiers,
            calendly_event_type_uri,
            archived,
            stripe_status: stripe_status(version, stripe_version),
            payment_link_url,
            payment_window_minutes,
            booking_url,
            event_type_uris: event_type_uris
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    })())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use coachdesk_domain::Currency;

    /// A session type as the desk validates it: 150.00 EUR, 100% back up to 48 h
    /// before, 50% up to 24 h, selling ET1.
    pub(crate) fn draft(name: &str) -> SessionTypeSpec {
        SessionTypeSpec {
            name: name.into(),
            duration_minutes: 60,
            price: money(15000, "EUR"),
            refund_policy: RefundPolicy::new(vec![tier(48, 100), tier(24, 50)]).unwrap(),
            calendly_event_type_uri: Some("https://api.calendly.com/event_types/ET1".into()),
            payment_window_minutes: 24 * 60,
        }
    }

    pub(crate) fn money(minor: i64, currency: &str) -> Money {
        Money::new(minor, Currency::parse(currency).unwrap())
    }

    fn tier(min_hours_before: u32, percent: u8) -> RefundTier {
        RefundTier {
            min_hours_before,
            percent,
        }
    }

    #[test]
    fn create_edit_archive_and_list() {
        let mut store = Store::open_in_memory().unwrap();
        let created = store.insert_session_type(&draft("Coaching call")).unwrap();
        assert_eq!(created.slug, "coaching-call");
        assert_eq!(created.price_display, "150.00 EUR");
        let second = store.insert_session_type(&{
            let mut d = draft("Coaching call");
            d.calendly_event_type_uri = None;
            d
        });
        assert_eq!(second.unwrap().slug, "coaching-call-2");

        let mut edited = draft("Deep dive");
        edited.price = money(15000, "JPY");
        let updated = store.save_session_type(&created.id, &edited).unwrap();
        assert_eq!(updated.price_display, "15000 JPY");
        assert_eq!(
            updated.slug, "coaching-call",
            "links already shared keep working"
        );

        store.archive_session_type(&created.id).unwrap();
        assert_eq!(store.list_session_types(false).unwrap().len(), 1);
        assert_eq!(store.list_session_types(true).unwrap().len(), 2);
    }

    #[test]
    fn an_event_type_sells_one_session_type() {
        let mut store = Store::open_in_memory().unwrap();
        store.insert_session_type(&draft("A")).unwrap();
        let Err(StoreError::Invalid(fields)) = store.insert_session_type(&draft("B")) else {
            panic!("mapped one event type twice");
        };
        assert_eq!(fields[0].field, "calendly_event_type_uri");
    }

    fn objects(n: u32) -> StripeObjects {
        StripeObjects {
            product_id: format!("prod_{n}"),
            price_id: format!("price_{n}"),
            payment_link_id: format!("plink_{n}"),
            payment_link_url: format!("https://buy.stripe.com/{n}"),
        }
    }

    #[test]
    fn a_new_name_or_price_needs_a_new_stripe_setup() {
        let mut store = Store::open_in_memory().unwrap();
        let st = store.insert_session_type(&draft("Call")).unwrap();
        assert_eq!(st.stripe_status, StripeStatus::NotSetUp);
        let plan = store.stripe_setup_plan(&st.id).unwrap();
        assert_eq!((plan.version, plan.price.minor), (1, 15000));
        assert_eq!(plan.idempotency_prefix(), format!("coachdesk-{}-v1", st.id));
        assert!(plan.existing.is_none());

        store.record_stripe_setup(&st.id, 1, &objects(1)).unwrap();
        let view = store.session_type(&st.id).unwrap();
        assert_eq!(view.stripe_status, StripeStatus::Ready);
        assert_eq!(
            view.payment_link_url.as_deref(),
            Some("https://buy.stripe.com/1")
        );
        let again = store.stripe_setup_plan(&st.id).unwrap();
        assert_eq!(
            again.existing.map(|e| e.payment_link_id).as_deref(),
            Some("plink_1")
        );

        // The refund policy alone is not sold by Stripe: still ready.
        let mut policy_only = draft("Call");
        policy_only.refund_policy = RefundPolicy::new(vec![tier(48, 100)]).unwrap();
        let view = store.save_session_type(&st.id, &policy_only).unwrap();
        assert_eq!(view.stripe_status, StripeStatus::Ready);
        assert_eq!(view.event_type_uris.len(), 1, "the link is kept");

        let mut dearer = draft("Call");
        dearer.price = money(18000, "EUR");
        let view = store.save_session_type(&st.id, &dearer).unwrap();
        assert_eq!(view.stripe_status, StripeStatus::Outdated);
        let plan = store.stripe_setup_plan(&st.id).unwrap();
        assert_eq!((plan.version, plan.price.minor), (2, 18000));
        assert!(plan.existing.is_none());
        assert!(matches!(
            store.record_stripe_setup(&st.id, 1, &objects(9)),
            Err(StoreError::Conflict(_))
        ));
        assert!(
            store.payment_link_routes().unwrap().is_empty(),
            "an outdated link sells the old price: not routed"
        );
        store.record_stripe_setup(&st.id, 2, &objects(2)).unwrap();
        assert_eq!(
            store.session_type(&st.id).unwrap().stripe_status,
            StripeStatus::Ready
        );
        assert_eq!(
            store.payment_link_routes().unwrap(),
            [("call".to_owned(), "https://buy.stripe.com/2".to_owned())]
        );
        store.archive_session_type(&st.id).unwrap();
        assert!(store.payment_link_routes().unwrap().is_empty());
    }

    #[test]
    fn unknown_ids_are_not_found() {
        let mut store = Store::open_in_memory().unwrap();
        assert!(matches!(
            store.archive_session_type("st_missing"),
            Err(StoreError::NotFound { .. })
        ));
    }
}
