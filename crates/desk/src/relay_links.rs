//! What the relay's `/pay/{slug}` needs from the app, and what the coach needs to wire
//! Calendly's redirect to it.
//!
//! - [`payment_link_table`]: the table pushed to the relay (`PUT /v1/payment-links`): each
//!   session type sold through a current payment link, with its price and payment window,
//!   so a relay holding a Stripe restricted key makes each booking its own Checkout Session
//!   expiring at the booking's deadline (issue 11).
//! - [`redirect_checks`]: per linked Calendly event type, the exact redirect address to
//!   paste at Calendly and whether the relay has seen a client come through it (issue 13),
//!   from the visit counts the relay reports (`GET /v1/redirects`).
//!
//! Pure over the store's views and the relay's answer; the shell does the I/O.

use coachdesk_protocol::ipc::SessionTypeView;
use coachdesk_protocol::relay::{CheckoutTerms, PaymentLinkRoute, PaymentLinkTable, RedirectsPage};
use coachdesk_protocol::setup::{EventTypeRow, RedirectCheck, StripeStatus};

/// The relay's table: every session type not archived whose payment link sells its
/// current name and price, with its Checkout terms.
pub fn payment_link_table(types: &[SessionTypeView]) -> PaymentLinkTable {
    let mut links: Vec<PaymentLinkRoute> = types
        .iter()
        .filter(|t| !t.archived && t.stripe_status == StripeStatus::Ready)
        .filter_map(|t| {
            Some(PaymentLinkRoute {
                slug: t.slug.clone(),
                url: t.payment_link_url.clone()?,
                checkout: Some(CheckoutTerms {
                    name: t.name.clone(),
                    amount_minor: t.price_minor,
                    currency: t.currency.to_ascii_lowercase(),
                    payment_window_minutes: t.payment_window_minutes,
                }),
                booking_url: t.booking_url.clone(),
            })
        })
        .collect();
    links.sort_by(|a, b| a.slug.cmp(&b.slug));
    PaymentLinkTable { links }
}

/// The redirect address of a session type: the relay's `/pay/{slug}`.
pub fn redirect_url(relay_url: &str, slug: &str) -> String {
    format!("{}/pay/{slug}", relay_url.trim().trim_end_matches('/'))
}

/// What the relay said about redirect visits: its counts, or why it could not be asked.
pub type RedirectsSeen<'a> = Result<&'a RedirectsPage, String>;

/// Sets each linked row's [`RedirectCheck`]: the address to paste, and "seen" (with the
/// last visit), "not seen yet", or why that is not known. Rows not linked get none.
pub fn redirect_checks(
    rows: &mut [EventTypeRow],
    types: &[SessionTypeView],
    relay_url: &str,
    seen: RedirectsSeen<'_>,
) {
    for row in rows.iter_mut() {
        let Some(slug) = row
            .session_type_id
            .as_ref()
            .and_then(|id| types.iter().find(|t| &t.id == id))
            .map(|t| t.slug.as_str())
        else {
            row.redirect = None;
            continue;
        };
        row.redirect = Some(if relay_url.trim().is_empty() {
            RedirectCheck {
                url: String::new(),
                state: "unknown".to_owned(),
                message: "Enter the relay's address in Settings first: Calendly's redirect goes to the relay.".to_owned(),
            }
        } else {
            let url = redirect_url(relay_url, slug);
            match &seen {
                Err(why) => RedirectCheck {
                    url,
                    state: "unknown".to_owned(),
                    message: format!("Whether clients come through it is not known: {why}"),
                },
                Ok(page) => match page.redirects.iter().find(|r| r.slug == slug) {
                    Some(r) if r.visits > 0 => RedirectCheck {
                        url,
                        state: "seen".to_owned(),
                        message: format!(
                            "Redirect seen (last at {}; {} {}).",
                            readable_time(&r.last_at),
                            r.visits,
                            if r.visits == 1 { "visit" } else { "visits" }
                        ),
                    },
                    _ => RedirectCheck {
                        url,
                        state: "not_seen".to_owned(),
                        message: "No client has come through the redirect yet.".to_owned(),
                    },
                },
            }
        });
    }
}

/// `2026-12-05T17:20:31.123Z` as `2026-12-05 17:20 UTC`; anything else as it is.
fn readable_time(rfc3339: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let Ok(t) = time::OffsetDateTime::parse(rfc3339, &Rfc3339) else {
        return rfc3339.to_owned();
    };
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// A sentence for a relay that could not report its redirect visits.
pub fn relay_unanswered(error: &coachdesk_providers::ProviderError) -> String {
    use coachdesk_providers::ProviderError;
    let status = match error {
        ProviderError::Transient { status, .. } => *status,
        ProviderError::Permanent { status, .. } => Some(*status),
        ProviderError::BadBaseUrl { .. } => {
            return "the relay's address in Settings is not a valid URL.".to_owned()
        }
    };
    match status {
        Some(404) => "the relay is too old to count redirect visits; update it.".to_owned(),
        Some(401) => "the relay refused the app's token; check it in Settings.".to_owned(),
        _ => "the relay could not be reached.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coachdesk_protocol::relay::RedirectSeen;

    fn session_type(id: &str, slug: &str, status: StripeStatus) -> SessionTypeView {
        SessionTypeView {
            id: id.into(),
            slug: slug.into(),
            name: format!("Session {slug}"),
            duration_minutes: 60,
            price_minor: 9000,
            currency: "EUR".into(),
            price_display: "90.00 EUR".into(),
            refund_tiers: Vec::new(),
            calendly_event_type_uri: None,
            archived: false,
            stripe_status: status,
            payment_link_url: Some(format!("https://buy.stripe.com/{slug}")),
            event_type_uris: Vec::new(),
            payment_window_minutes: 90,
            booking_url: Some(format!("https://calendly.com/coach/{slug}")),
        }
    }

    fn row(uri: &str, session_type: Option<&str>) -> EventTypeRow {
        EventTypeRow {
            uri: uri.into(),
            name: uri.into(),
            slug: None,
            duration_minutes: Some(60),
            scheduling_url: None,
            active: true,
            at_calendly: true,
            session_type_id: session_type.map(str::to_owned),
            session_type_name: None,
            redirect: None,
        }
    }

    #[test]
    fn the_table_carries_price_and_window_of_current_links_only() {
        let mut archived = session_type("st-3", "old", StripeStatus::Ready);
        archived.archived = true;
        let types = [
            session_type("st-1", "coaching", StripeStatus::Ready),
            session_type("st-2", "intro", StripeStatus::Outdated),
            archived,
        ];
        let table = payment_link_table(&types);
        assert_eq!(table.links.len(), 1);
        let link = &table.links[0];
        assert_eq!(link.slug, "coaching");
        assert_eq!(link.url, "https://buy.stripe.com/coaching");
        assert_eq!(
            link.checkout,
            Some(CheckoutTerms {
                name: "Session coaching".into(),
                amount_minor: 9000,
                currency: "eur".into(),
                payment_window_minutes: 90,
            })
        );
        // The expired and cancelled pages link to it to book again.
        assert_eq!(
            link.booking_url.as_deref(),
            Some("https://calendly.com/coach/coaching")
        );
    }

    #[test]
    fn linked_rows_get_their_redirect_and_whether_it_was_seen() {
        let types = [
            session_type("st-1", "coaching", StripeStatus::Ready),
            session_type("st-2", "intro", StripeStatus::Ready),
        ];
        let mut rows = vec![
            row("et-1", Some("st-1")),
            row("et-2", Some("st-2")),
            row("et-3", None),
        ];
        let page = RedirectsPage {
            redirects: vec![RedirectSeen {
                slug: "coaching".into(),
                visits: 3,
                last_at: "2026-12-05T17:20:31.123Z".into(),
            }],
        };
        redirect_checks(&mut rows, &types, "https://relay.example.com/", Ok(&page));
        let seen = rows[0].redirect.clone().expect("linked");
        assert_eq!(seen.url, "https://relay.example.com/pay/coaching");
        assert_eq!(seen.state, "seen");
        assert_eq!(
            seen.message,
            "Redirect seen (last at 2026-12-05 17:20 UTC; 3 visits)."
        );
        let not_yet = rows[1].redirect.clone().expect("linked");
        assert_eq!(not_yet.url, "https://relay.example.com/pay/intro");
        assert_eq!(not_yet.state, "not_seen");
        assert_eq!(
            not_yet.message,
            "No client has come through the redirect yet."
        );
        assert_eq!(rows[2].redirect, None);

        redirect_checks(
            &mut rows,
            &types,
            "https://relay.example.com",
            Err("the relay could not be reached.".into()),
        );
        let unknown = rows[0].redirect.clone().expect("linked");
        assert_eq!(unknown.state, "unknown");
        assert_eq!(unknown.url, "https://relay.example.com/pay/coaching");
        assert!(unknown.message.ends_with("the relay could not be reached."));

        redirect_checks(&mut rows, &types, " ", Ok(&page));
        let no_relay = rows[0].redirect.clone().expect("linked");
        assert_eq!(
            (no_relay.url.as_str(), no_relay.state.as_str()),
            ("", "unknown")
        );
    }

    #[test]
    fn relay_failures_in_words() {
        let status = |s| coachdesk_providers::ProviderError::Transient {
            provider: "the relay",
            status: Some(s),
            message: String::new(),
            retry_after: None,
            source: None,
        };
        assert!(relay_unanswered(&status(404)).contains("too old"));
        assert!(relay_unanswered(&status(401)).contains("token"));
        assert!(relay_unanswered(&status(503)).contains("could not be reached"));
    }
}
