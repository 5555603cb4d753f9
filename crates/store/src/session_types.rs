//! Session types: create, edit, archive, list; and their Calendly event-type mapping.

use coachdesk_domain::session_type::{slugify, FieldProblem, SessionTypeInput};
use coachdesk_domain::{Money, RefundPolicy, RefundTier};
use coachdesk_protocol::ipc::{FieldError, RefundTierDto, SessionTypeDraft, SessionTypeView};
use rusqlite::{params, OptionalExtension, Row};
use time::OffsetDateTime;

use crate::{new_id, ts, Store, StoreError};

const COLUMNS: &str = "s.id, s.slug, s.name, s.duration_minutes, s.price_minor, s.currency, \
     s.refund_policy, s.archived, \
     (SELECT m.calendly_event_type_uri FROM event_type_mappings m WHERE m.session_type_id = s.id \
      ORDER BY m.mapped_at DESC LIMIT 1)";

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

    /// Validates and stores a new session type.
    pub fn create_session_type(
        &mut self,
        draft: &SessionTypeDraft,
    ) -> Result<SessionTypeView, StoreError> {
        let spec = validate(draft)?;
        let now = ts(OffsetDateTime::now_utc());
        let id = new_id("st");
        let tx = self.conn.transaction()?;
        let slug = unique_slug(&tx, &slugify(&spec.name), None)?;
        tx.execute(
            "INSERT INTO session_types (id, slug, name, duration_minutes, price_minor, currency,
                 refund_policy, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![
                id,
                slug,
                spec.name,
                spec.duration_minutes,
                spec.price.minor,
                spec.price.currency.code(),
                policy_json(&spec.refund_policy)?,
                now
            ],
        )?;
        map_event_type(&tx, &id, spec.calendly_event_type_uri.as_deref(), &now)?;
        tx.commit()?;
        self.session_type(&id)
    }

    /// Validates and stores new values for a session type. Existing bookings keep the
    /// terms they were booked under.
    pub fn update_session_type(
        &mut self,
        id: &str,
        draft: &SessionTypeDraft,
    ) -> Result<SessionTypeView, StoreError> {
        let spec = validate(draft)?;
        self.session_type(id)?;
        let now = ts(OffsetDateTime::now_utc());
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE session_types SET name = ?2, duration_minutes = ?3, price_minor = ?4,
                 currency = ?5, refund_policy = ?6, updated_at = ?7 WHERE id = ?1",
            params![
                id,
                spec.name,
                spec.duration_minutes,
                spec.price.minor,
                spec.price.currency.code(),
                policy_json(&spec.refund_policy)?,
                now
            ],
        )?;
        tx.execute(
            "DELETE FROM event_type_mappings WHERE session_type_id = ?1",
            [id],
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

fn validate(
    draft: &SessionTypeDraft,
) -> Result<coachdesk_domain::session_type::SessionTypeSpec, StoreError> {
    let input = SessionTypeInput {
        name: &draft.name,
        duration_minutes: draft.duration_minutes,
        price: &draft.price,
        currency: &draft.currency,
        refund_tiers: draft
            .refund_tiers
            .iter()
            .map(|t| RefundTier {
                min_hours_before: t.min_hours_before,
                percent: t.percent,
            })
            .collect(),
        calendly_event_type_uri: draft.calendly_event_type_uri.as_deref(),
    };
    input.validate().map_err(|problems| {
        StoreError::Invalid(
            problems
                .into_iter()
                .map(|FieldProblem { field, message }| FieldError {
                    field: field.to_owned(),
                    message,
                })
                .collect(),
        )
    })
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
             VALUES (?1, ?2, ?3)",
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
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn draft(name: &str) -> SessionTypeDraft {
        SessionTypeDraft {
            name: name.into(),
            duration_minutes: 60,
            price: "150.00".into(),
            currency: "EUR".into(),
            refund_tiers: vec![
                RefundTierDto {
                    min_hours_before: 48,
                    percent: 100,
                },
                RefundTierDto {
                    min_hours_before: 24,
                    percent: 50,
                },
            ],
            calendly_event_type_uri: Some("https://api.calendly.com/event_types/ET1".into()),
        }
    }

    #[test]
    fn create_edit_archive_and_list() {
        let mut store = Store::open_in_memory().unwrap();
        let created = store.create_session_type(&draft("Coaching call")).unwrap();
        assert_eq!(created.slug, "coaching-call");
        assert_eq!(created.price_display, "150.00 EUR");
        let second = store.create_session_type(&{
            let mut d = draft("Coaching call");
            d.calendly_event_type_uri = None;
            d
        });
        assert_eq!(second.unwrap().slug, "coaching-call-2");

        let mut edited = draft("Deep dive");
        edited.price = "15000".into();
        edited.currency = "JPY".into();
        let updated = store.update_session_type(&created.id, &edited).unwrap();
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
    fn invalid_drafts_name_their_fields() {
        let mut store = Store::open_in_memory().unwrap();
        let mut bad = draft("");
        bad.price = "abc".into();
        let Err(StoreError::Invalid(fields)) = store.create_session_type(&bad) else {
            panic!("accepted an invalid draft");
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["name", "price"]);
        assert!(store.list_session_types(true).unwrap().is_empty());
    }

    #[test]
    fn an_event_type_sells_one_session_type() {
        let mut store = Store::open_in_memory().unwrap();
        store.create_session_type(&draft("A")).unwrap();
        let Err(StoreError::Invalid(fields)) = store.create_session_type(&draft("B")) else {
            panic!("mapped one event type twice");
        };
        assert_eq!(fields[0].field, "calendly_event_type_uri");
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
