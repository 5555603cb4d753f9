//! The session-type form: its drafts validated (by the domain) before the store keeps
//! them, and the refund-policy preview it shows while the coach types.

use coachdesk_domain::session_type::{FieldProblem, SessionTypeInput, SessionTypeSpec};
use coachdesk_domain::{Money, RefundPolicy, RefundTier};
use coachdesk_protocol::ipc::{FieldError, SessionTypeDraft, SessionTypeView};
use coachdesk_protocol::setup::{PolicyPreview, PolicyPreviewRequest};
use coachdesk_store::{Store, StoreError};

use crate::error::capitalised;

/// Session types as the form sends them: validated here, kept by the store.
pub trait SessionTypeForms {
    /// Validates and stores a new session type.
    fn create_session_type(
        &mut self,
        draft: &SessionTypeDraft,
    ) -> Result<SessionTypeView, StoreError>;

    /// Validates and stores new values for a session type. Existing bookings keep the
    /// terms they were booked under.
    fn update_session_type(
        &mut self,
        id: &str,
        draft: &SessionTypeDraft,
    ) -> Result<SessionTypeView, StoreError>;
}

impl SessionTypeForms for Store {
    fn create_session_type(
        &mut self,
        draft: &SessionTypeDraft,
    ) -> Result<SessionTypeView, StoreError> {
        self.insert_session_type(&validate(draft)?)
    }

    fn update_session_type(
        &mut self,
        id: &str,
        draft: &SessionTypeDraft,
    ) -> Result<SessionTypeView, StoreError> {
        self.save_session_type(id, &validate(draft)?)
    }
}

/// The form as typed, checked by the domain: every field's problem at once.
fn validate(draft: &SessionTypeDraft) -> Result<SessionTypeSpec, StoreError> {
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
        payment_window_minutes: draft.payment_window_minutes,
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

/// The refund-policy preview of the session-type form: what a cancellation at the asked
/// notice, and at each tier's start, gives back out of the price. Pure: no database.
pub fn refund_policy_preview(request: &PolicyPreviewRequest) -> PolicyPreview {
    let problem = |message: String| PolicyPreview {
        sentence: None,
        tiers: Vec::new(),
        problem: Some(message),
    };
    let currency = match coachdesk_domain::Currency::parse(&request.currency) {
        Ok(currency) => currency,
        Err(e) => return problem(capitalised(&e.to_string())),
    };
    let price = match Money::parse_major(&request.price, currency) {
        Ok(price) => price,
        Err(_) if request.price.trim().is_empty() => {
            return problem("Enter a price to see what comes back.".to_owned())
        }
        Err(e) => return problem(capitalised(&e.to_string())),
    };
    let tiers = request
        .refund_tiers
        .iter()
        .map(|t| RefundTier {
            min_hours_before: t.min_hours_before,
            percent: t.percent,
        })
        .collect();
    let policy = match RefundPolicy::new(tiers) {
        Ok(policy) => policy,
        Err(e) => return problem(capitalised(&e.to_string())),
    };
    PolicyPreview {
        sentence: Some(policy.preview_sentence(price, request.hours_before)),
        tiers: policy
            .tiers()
            .iter()
            .map(|t| policy.preview_sentence(price, t.min_hours_before))
            .collect(),
        problem: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coachdesk_protocol::ipc::RefundTierDto;

    fn draft(name: &str) -> SessionTypeDraft {
        SessionTypeDraft {
            name: name.into(),
            duration_minutes: 60,
            price: "150.00".into(),
            currency: "EUR".into(),
            refund_tiers: vec![RefundTierDto {
                min_hours_before: 24,
                percent: 50,
            }],
            calendly_event_type_uri: None,
            payment_window_minutes: None,
        }
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
    fn the_policy_preview_states_the_money_or_the_problem() {
        let request = |price: &str, tiers: &[(u32, u8)], hours| PolicyPreviewRequest {
            price: price.into(),
            currency: "EUR".into(),
            refund_tiers: tiers
                .iter()
                .map(|&(min_hours_before, percent)| RefundTierDto {
                    min_hours_before,
                    percent,
                })
                .collect(),
            hours_before: hours,
        };
        let preview = refund_policy_preview(&request("150.00", &[(24, 50), (48, 100)], 30));
        assert_eq!(
            preview.sentence.as_deref(),
            Some("Cancelled 30 h before: 50% back, 75.00 EUR.")
        );
        assert_eq!(
            preview.tiers,
            [
                "Cancelled 48 h before: 100% back, 150.00 EUR.",
                "Cancelled 24 h before: 50% back, 75.00 EUR."
            ]
        );
        let bad = refund_policy_preview(&request("150.00", &[(48, 20), (24, 50)], 30));
        assert!(bad.sentence.is_none());
        assert!(
            bad.problem
                .as_deref()
                .is_some_and(|p| p.contains("earlier cancellation")),
            "{bad:?}"
        );
        let no_price = refund_policy_preview(&request("", &[(24, 50)], 30));
        assert_eq!(
            no_price.problem.as_deref(),
            Some("Enter a price to see what comes back.")
        );
    }
}
