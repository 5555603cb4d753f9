//! Which Calendly event type sells which session type (`event_type_mappings`).
//!
//! The apply path reads the same table when a booking arrives
//! (`session_types::terms_for_event_type`): a booking takes the price and refund policy of
//! the session type its event type is linked to *at that moment*, so relinking changes
//! new bookings only.

use coachdesk_views::{EventTypeLink, EventTypeRow, FieldError};
use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use crate::{ts, Store, StoreError};

/// An event type as Calendly lists it (the fields the mapping screen shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEventType {
    pub uri: String,
    pub name: String,
    pub slug: Option<String>,
    pub duration_minutes: Option<u32>,
    pub scheduling_url: Option<String>,
    pub active: bool,
}

/// One stored link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLink {
    pub event_type_uri: String,
    pub event_type_name: Option<String>,
    pub session_type_id: String,
    pub session_type_name: String,
}

impl Store {
    /// Every stored link, by event type name then URI.
    pub fn event_type_links(&self) -> Result<Vec<StoredLink>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT m.calendly_event_type_uri, m.event_type_name, s.id, s.name
             FROM event_type_mappings m JOIN session_types s ON s.id = m.session_type_id
             ORDER BY m.event_type_name, m.calendly_event_type_uri",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(StoredLink {
                event_type_uri: row.get(0)?,
                event_type_name: row.get(1)?,
                session_type_id: row.get(2)?,
                session_type_name: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Links an event type to a session type (moving it from any other), or unlinks it
    /// when `session_type_id` is `None`. Archived session types take no new links.
    pub fn link_event_type(&mut self, link: &EventTypeLink) -> Result<(), StoreError> {
        let uri = link.event_type_uri.trim();
        if !uri.starts_with("https://") && !uri.starts_with("http://") {
            return Err(StoreError::Invalid(vec![FieldError {
                field: "event_type_uri".into(),
                message:
                    "A Calendly event type is a URI such as https://api.calendly.com/event_types/…"
                        .into(),
            }]));
        }
        let Some(session_type_id) = link.session_type_id.as_deref() else {
            self.conn.execute(
                "DELETE FROM event_type_mappings WHERE calendly_event_type_uri = ?1",
                [uri],
            )?;
            return Ok(());
        };
        let archived: Option<bool> = self
            .conn
            .query_row(
                "SELECT archived FROM session_types WHERE id = ?1",
                [session_type_id],
                |row| row.get(0),
            )
            .optional()?;
        match archived {
            None => {
                return Err(StoreError::NotFound {
                    what: "session type",
                    id: session_type_id.to_owned(),
                })
            }
            Some(true) => {
                return Err(StoreError::Conflict(
                    "That session type is archived; pick one that is still sold.".to_owned(),
                ))
            }
            Some(false) => {}
        }
        self.conn.execute(
            "INSERT INTO event_type_mappings
                 (calendly_event_type_uri, session_type_id, event_type_name, scheduling_url,
                  mapped_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (calendly_event_type_uri) DO UPDATE SET
                 session_type_id = excluded.session_type_id,
                 event_type_name = coalesce(excluded.event_type_name, event_type_name),
                 scheduling_url = coalesce(excluded.scheduling_url, scheduling_url),
                 mapped_at = excluded.mapped_at",
            params![
                uri,
                session_type_id,
                link.event_type_name,
                link.scheduling_url
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| u.starts_with("https://")),
                ts(OffsetDateTime::now_utc())
            ],
        )?;
        Ok(())
    }

    /// The mapping screen's rows: Calendly's event types with their links, then links to
    /// event types Calendly no longer lists (kept: bookings of them still arrive).
    pub fn event_type_rows(
        &self,
        listed: &[ListedEventType],
    ) -> Result<Vec<EventTypeRow>, StoreError> {
        Ok(merge(listed, self.event_type_links()?))
    }
}

fn merge(listed: &[ListedEventType], links: Vec<StoredLink>) -> Vec<EventTypeRow> {
    let mut rows: Vec<EventTypeRow> = listed
        .iter()
        .map(|et| {
            let link = links.iter().find(|l| l.event_type_uri == et.uri);
            EventTypeRow {
                uri: et.uri.clone(),
                name: et.name.clone(),
                slug: et.slug.clone(),
                duration_minutes: et.duration_minutes,
                scheduling_url: et.scheduling_url.clone(),
                active: et.active,
                at_calendly: true,
                session_type_id: link.map(|l| l.session_type_id.clone()),
                session_type_name: link.map(|l| l.session_type_name.clone()),
                redirect: None,
            }
        })
        .collect();
    for link in links {
        if !listed.iter().any(|et| et.uri == link.event_type_uri) {
            rows.push(EventTypeRow {
                name: link
                    .event_type_name
                    .clone()
                    .unwrap_or_else(|| link.event_type_uri.clone()),
                uri: link.event_type_uri,
                slug: None,
                duration_minutes: None,
                scheduling_url: None,
                active: false,
                at_calendly: false,
                session_type_id: Some(link.session_type_id),
                session_type_name: Some(link.session_type_name),
                redirect: None,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_types::tests::{draft, money};

    const ET1: &str = "https://api.calendly.com/event_types/ET1";
    const ET2: &str = "https://api.calendly.com/event_types/ET2";

    fn listed(uri: &str, name: &str) -> ListedEventType {
        ListedEventType {
            uri: uri.into(),
            name: name.into(),
            slug: None,
            duration_minutes: Some(60),
            scheduling_url: Some(format!("https://calendly.com/coach/{name}")),
            active: true,
        }
    }

    fn link(uri: &str, st: Option<&str>) -> EventTypeLink {
        EventTypeLink {
            event_type_uri: uri.into(),
            event_type_name: Some("Coaching".into()),
            scheduling_url: Some(format!(
                "https://calendly.com/coach/{}",
                &uri[uri.len() - 3..]
            )),
            session_type_id: st.map(str::to_owned),
        }
    }

    #[test]
    fn links_are_listed_moved_and_removed() {
        let mut store = Store::open_in_memory().unwrap();
        let mut d = draft("A");
        d.calendly_event_type_uri = None;
        let a = store.insert_session_type(&d).unwrap();
        let b = store.insert_session_type(&draft("B")).unwrap(); // links ET1

        store.link_event_type(&link(ET2, Some(&a.id))).unwrap();
        let rows = store
            .event_type_rows(&[listed(ET1, "One"), listed(ET2, "Two")])
            .unwrap();
        assert_eq!(rows[0].session_type_id.as_deref(), Some(b.id.as_str()));
        assert_eq!(rows[1].session_type_name.as_deref(), Some("A"));
        assert_eq!(
            rows[1].scheduling_url.as_deref(),
            Some("https://calendly.com/coach/Two")
        );
        // A session type's booking page is its latest linked event type's.
        assert_eq!(
            store.session_type(&a.id).unwrap().booking_url.as_deref(),
            Some("https://calendly.com/coach/ET2")
        );

        // Moving ET1 to A: one link per event type, B keeps none.
        store.link_event_type(&link(ET1, Some(&a.id))).unwrap();
        let a_view = store.session_type(&a.id).unwrap();
        assert_eq!(a_view.event_type_uris, [ET2, ET1]);
        assert!(store
            .session_type(&b.id)
            .unwrap()
            .event_type_uris
            .is_empty());

        assert_eq!(
            store.session_type(&a.id).unwrap().booking_url.as_deref(),
            Some("https://calendly.com/coach/ET1")
        );

        store.link_event_type(&link(ET2, None)).unwrap();
        assert_eq!(store.event_type_links().unwrap().len(), 1);
    }

    #[test]
    fn the_apply_path_prices_bookings_by_the_link() {
        let mut store = Store::open_in_memory().unwrap();
        let mut d = draft("A");
        d.calendly_event_type_uri = None;
        d.price = money(8000, "EUR");
        let a = store.insert_session_type(&d).unwrap();
        store.link_event_type(&link(ET2, Some(&a.id))).unwrap();
        let terms = crate::session_types::terms_for_event_type(&store.conn, ET2)
            .unwrap()
            .expect("linked");
        assert_eq!(terms.session_type_id, a.id);
        assert_eq!(terms.price.minor, 8000);
        store.link_event_type(&link(ET2, None)).unwrap();
        assert!(crate::session_types::terms_for_event_type(&store.conn, ET2)
            .unwrap()
            .is_none());
    }

    #[test]
    fn links_kept_for_event_types_calendly_no_longer_lists() {
        let mut store = Store::open_in_memory().unwrap();
        let b = store.insert_session_type(&draft("B")).unwrap(); // links ET1
        let rows = store.event_type_rows(&[listed(ET2, "Two")]).unwrap();
        assert_eq!(rows.len(), 2);
        assert!(!rows[1].at_calendly);
        assert_eq!(rows[1].session_type_id.as_deref(), Some(b.id.as_str()));
    }

    #[test]
    fn archived_or_unknown_session_types_take_no_links() {
        let mut store = Store::open_in_memory().unwrap();
        let mut d = draft("A");
        d.calendly_event_type_uri = None;
        let a = store.insert_session_type(&d).unwrap();
        store.archive_session_type(&a.id).unwrap();
        assert!(matches!(
            store.link_event_type(&link(ET2, Some(&a.id))),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            store.link_event_type(&link(ET2, Some("st_missing"))),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.link_event_type(&link("event-type-2", Some(&a.id))),
            Err(StoreError::Invalid(_))
        ));
    }
}
