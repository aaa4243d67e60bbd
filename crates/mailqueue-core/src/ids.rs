//! Identifiers. Emails use UUIDv7, so the identifier order follows creation
//! time and keyset pagination can run on the primary key alone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered identifier for something created at `now`.
            /// The 12 bits after the milliseconds carry the time below the
            /// millisecond (RFC 9562, method 3), so identifiers made in the
            /// same millisecond still sort in the order they were made.
            pub fn generate(now: DateTime<Utc>) -> Self {
                let ts = uuid::Timestamp::from_unix(
                    uuid::ContextV7::new().with_additional_precision(),
                    now.timestamp().max(0) as u64,
                    now.timestamp_subsec_nanos(),
                );
                Self(Uuid::new_v7(ts))
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// The identifier of an accepted email, returned by `POST /v1/emails`.
    EmailId
);
uuid_id!(
    /// The identifier of an API key (not the secret token itself).
    ApiKeyId
);
uuid_id!(
    /// The identifier of an email's event; also the webhook message id.
    EventId
);
uuid_id!(
    /// The request that holds an idempotency key. Each request that starts
    /// (or takes over) a key writes its own fence, and its emails and
    /// answer are committed only while the key still carries that fence,
    /// so a request taken over while it was stalled can no longer commit.
    IdempotencyFence
);
uuid_id!(
    /// The identifier of a webhook endpoint.
    WebhookId
);
uuid_id!(
    /// The identifier of a suppressed address.
    SuppressionId
);
uuid_id!(
    /// The identifier of a sending domain.
    DomainId
);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn ids_generated_later_sort_after_earlier_ones() {
        let now = Utc::now();
        let a = EmailId::generate(now);
        let b = EmailId::generate(now + Duration::milliseconds(2));
        assert!(a < b);
        assert!(
            a.to_string() < b.to_string(),
            "text order matches byte order"
        );
    }

    #[test]
    fn ids_made_within_one_millisecond_keep_their_order() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let ids: Vec<_> = (0..100)
            .map(|us| EmailId::generate(start + Duration::microseconds(us * 5)))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }

    #[test]
    fn ids_round_trip_through_text() {
        let id = EmailId::generate(Utc::now());
        assert_eq!(id.to_string().parse::<EmailId>().unwrap(), id);
        assert!("not-a-uuid".parse::<EmailId>().is_err());
    }
}
