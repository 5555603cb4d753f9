//! The coach's "New sealing key": the relay keeps the coach's client data sealed for this
//! install's key (see `coachdesk_sync::relay::sealing`); a new one can be made at any time,
//! for instance after the computer was out of the coach's hands.

use coachdesk_protocol::ipc::CommandError;
use coachdesk_sync::{SecretError, SyncError, SyncHandle};

use crate::setup::error;

/// Makes and registers a new key; answers what happened in words.
pub async fn rotate_sealing_key(sync: Option<&SyncHandle>) -> Result<String, CommandError> {
    let Some(sync) = sync else {
        return Err(error(
            "conflict",
            "Sync is not running, so the relay cannot be given a new key. Connect the relay in \
             Settings and try again."
                .to_owned(),
        ));
    };
    match sync.rotate_sealing_key().await {
        Ok(waiting) => Ok(rotated(waiting)),
        Err(SyncError::Secret(SecretError::ReadOnly { .. })) => Err(error(
            "conflict",
            "This computer's secrets are read-only, so it cannot keep a sealing key: the relay \
             keeps its events readable for it."
                .to_owned(),
        )),
        Err(err) => Err(error(
            "relay",
            format!(
                "The relay was not given the new sealing key ({}). Nothing is lost: this \
                 computer registers its key again at its next pull.",
                coachdesk_sync::error_chain(&err)
            ),
        )),
    }
}

/// The sentence for a new key, given how many waiting events were sealed for the one before.
fn rotated(waiting: i64) -> String {
    let mut words = "A new sealing key is registered: the relay seals your clients' data for it \
                     from now on."
        .to_owned();
    if waiting > 0 {
        words.push_str(&format!(
            " {waiting} event{} waiting at the relay {} opened with the key before it.",
            if waiting == 1 { "" } else { "s" },
            if waiting == 1 { "is" } else { "are" }
        ));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_sync_the_coach_is_told_what_to_do() {
        let refused = rotate_sealing_key(None).await.expect_err("no sync");
        assert_eq!(refused.code, "conflict");
        assert!(
            refused.message.starts_with("Sync is not running"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn the_answer_counts_what_the_key_before_still_opens() {
        assert!(!rotated(0).contains("waiting"));
        assert!(
            rotated(1).ends_with(" 1 event waiting at the relay is opened with the key before it.")
        );
        assert!(rotated(3).contains(" 3 events waiting at the relay are opened"));
    }
}
