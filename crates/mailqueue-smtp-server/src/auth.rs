//! AUTH PLAIN and LOGIN (RFC 4616, and the LOGIN draft every client
//! speaks): the user is `resend`, the password an API key. Failures are
//! counted per client address: after a few, each answer is slowed down;
//! after more, the address is cut off for a while, its connections closed
//! at once.

use base64::Engine;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The one user name, as Resend's SMTP service has it.
pub const USER: &str = "resend";

/// What a client presented.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A response that is not what the mechanism defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the AUTH response is not valid base64 of what the mechanism expects")]
pub struct MalformedResponse;

/// The text of one base64 response (a LOGIN user name or password).
pub fn decode_text(response: &str) -> Result<String, MalformedResponse> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response.trim())
        .map_err(|_| MalformedResponse)?;
    String::from_utf8(bytes).map_err(|_| MalformedResponse)
}

/// A PLAIN response: `authzid NUL authcid NUL password`, base64. An
/// authorization identity other than the user's own is refused.
pub fn decode_plain(response: &str) -> Result<Credentials, MalformedResponse> {
    let text = decode_text(response)?;
    let mut parts = text.split('\0');
    let (Some(authz), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MalformedResponse);
    };
    if !authz.is_empty() && authz != user {
        return Err(MalformedResponse);
    }
    Ok(Credentials {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// How to answer a client address, given its recent failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Welcome,
    /// Answer only after this pause.
    Slowed(Duration),
    /// Too many failures: close the connection.
    CutOff,
}

/// Failed authentications per client address, forgotten `window` after
/// the last one.
#[derive(Debug)]
pub struct AuthFailures {
    window: Duration,
    slow_after: u32,
    cut_after: u32,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Default for AuthFailures {
    /// Slowed after 3 failures in 15 minutes (one more second each, up to
    /// 5), cut off after 10.
    fn default() -> Self {
        Self::new(Duration::from_secs(15 * 60), 3, 10)
    }
}

impl AuthFailures {
    pub fn new(window: Duration, slow_after: u32, cut_after: u32) -> Self {
        Self {
            window,
            slow_after,
            cut_after,
            failures: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn standing(&self, ip: IpAddr) -> Standing {
        let now = Instant::now();
        let mut failures = self.lock();
        let Some(&(count, last)) = failures.get(&ip) else {
            return Standing::Welcome;
        };
        if now.duration_since(last) >= self.window {
            failures.remove(&ip);
            return Standing::Welcome;
        }
        if count >= self.cut_after {
            Standing::CutOff
        } else if count >= self.slow_after {
            let extra = u64::from(count - self.slow_after + 1).min(5);
            Standing::Slowed(Duration::from_secs(extra))
        } else {
            Standing::Welcome
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut failures = self.lock();
        if failures.len() > 100_000 {
            failures.retain(|_, (_, last)| now.duration_since(*last) < self.window);
        }
        let entry = failures.entry(ip).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.lock().remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn reads_plain_and_login_responses() {
        let c = decode_plain(&b64("\0resend\0re_key")).unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("resend", "re_key"));
        assert!(decode_plain(&b64("resend\0resend\0k")).is_ok());
        assert_eq!(
            decode_plain(&b64("admin\0resend\0k")),
            Err(MalformedResponse)
        );
        assert_eq!(decode_plain(&b64("resend\0k")), Err(MalformedResponse));
        assert_eq!(decode_plain("not base64!"), Err(MalformedResponse));
        assert_eq!(decode_text(&b64("resend")).unwrap(), "resend");
        assert!(!format!("{c:?}").contains("re_key"), "no password in logs");
    }

    #[tokio::test(start_paused = true)]
    async fn slows_then_cuts_off_then_forgets() {
        let failures = AuthFailures::new(Duration::from_secs(60), 2, 4);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            failures.failed(ip);
            seen.push(failures.standing(ip));
        }
        assert_eq!(
            seen,
            [
                Standing::Welcome,
                Standing::Slowed(Duration::from_secs(1)),
                Standing::Slowed(Duration::from_secs(2)),
                Standing::CutOff
            ]
        );
        assert_eq!(failures.standing(other), Standing::Welcome);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(failures.standing(ip), Standing::Welcome);
        failures.failed(other);
        failures.succeeded(other);
        assert_eq!(failures.standing(other), Standing::Welcome);
    }
}
