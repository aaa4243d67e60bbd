//! HTTP to the GCS JSON API: URLs, authorisation, timeouts, retries, and
//! the mapping of answers to `object_store` errors.

use object_store::gcp::GcpCredentialProvider;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use std::time::Duration;

pub(crate) const STORE: &str = "GCS";

/// Everything but RFC 3986's unreserved characters is escaped, `/` too:
/// the JSON API takes an object's whole name as one path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How often and how patiently a request is tried again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestRetries {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RequestRetries {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
        }
    }
}

impl RequestRetries {
    /// The pause after failed attempt `attempt` (1-based): doubling, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// A request's fate, for the retry loop.
pub(crate) enum Sent {
    Answered(Response),
    Transient(String),
}

#[derive(Debug)]
pub(crate) struct GcsClient {
    http: Client,
    base: String,
    bucket: String,
    credentials: GcpCredentialProvider,
    pub retry: RequestRetries,
}

/// Requests that carry no large body must finish within this.
pub(crate) const SHORT_TIMEOUT: Duration = Duration::from_secs(60);
/// A part of a resumable upload must be sent within this.
pub(crate) const PART_TIMEOUT: Duration = Duration::from_secs(300);

pub(crate) fn generic(e: impl std::fmt::Display) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: e.to_string().into(),
    }
}

impl GcsClient {
    pub fn new(
        base: &str,
        bucket: &str,
        credentials: GcpCredentialProvider,
    ) -> object_store::Result<Self> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A stalled download fails instead of hanging; a long one is fine.
            .read_timeout(Duration::from_secs(30))
            // A 308 answers a resumable upload; it is not a redirect.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(generic)?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            credentials,
            retry: RequestRetries::default(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `b/{bucket}/o`, the JSON API's path of the bucket's objects.
    fn objects_path(&self) -> String {
        format!("b/{}/o", utf8_percent_encode(&self.bucket, SEGMENT))
    }

    /// `b/{bucket}/o/{name}`, with the name as one segment.
    pub fn object_path(&self, name: &str) -> String {
        format!(
            "{}/{}",
            self.objects_path(),
            utf8_percent_encode(name, SEGMENT)
        )
    }

    pub fn objects_url(&self) -> String {
        format!("{}/storage/v1/{}", self.base, self.objects_path())
    }

    pub fn object_url(&self, name: &str) -> String {
        format!("{}/storage/v1/{}", self.base, self.object_path(name))
    }

    pub fn upload_url(&self) -> String {
        format!("{}/upload/storage/v1/{}", self.base, self.objects_path())
    }

    pub fn http(&self) -> &Client {
        &self.http
    }

    /// Adds the bearer token; an emulator's empty token adds nothing.
    async fn authorize(&self, request: RequestBuilder) -> object_store::Result<RequestBuilder> {
        let credential = self.credentials.get_credential().await?;
        Ok(if credential.bearer.is_empty() {
            request
        } else {
            request.bearer_auth(&credential.bearer)
        })
    }

    /// Sends once. Connection failures, timeouts, 408, 429 and 5xx answers
    /// are transient; any other answer is returned as it is.
    pub async fn send_once(&self, request: RequestBuilder) -> object_store::Result<Sent> {
        let request = self.authorize(request).await?;
        match request.send().await {
            Ok(answer) if is_transient(answer.status()) => Ok(Sent::Transient(format!(
                "{} {}",
                answer.status(),
                body_text(answer).await
            ))),
            Ok(answer) => Ok(Sent::Answered(answer)),
            Err(e) if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() => {
                Ok(Sent::Transient(error_chain(&e)))
            }
            Err(e) => Err(generic(error_chain(&e))),
        }
    }

    /// Sends `build`'s request, building it again for each attempt, and
    /// returns the first answer that is not transient, checked by `check`.
    pub async fn send(
        &self,
        path: &str,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> object_store::Result<Response> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(build(&self.http)).await? {
                Sent::Answered(answer) => return check(answer, path).await,
                Sent::Transient(why) if attempt >= self.retry.attempts => {
                    return Err(generic(format!(
                        "{path}: gave up after {attempt} attempts: {why}"
                    )))
                }
                Sent::Transient(why) => {
                    tracing::debug!(%path, attempt, %why, "retrying a GCS request");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                }
            }
        }
    }
}

fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

pub(crate) async fn body_text(answer: Response) -> String {
    let text = answer.text().await.unwrap_or_default();
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Successes and 308 (an unfinished resumable upload) pass; the rest
/// become the matching `object_store` error.
pub(crate) async fn check(answer: Response, path: &str) -> object_store::Result<Response> {
    let status = answer.status();
    if status.is_success() || status == StatusCode::PERMANENT_REDIRECT {
        return Ok(answer);
    }
    let source = format!("{status} {}", body_text(answer).await).into();
    let path = path.to_string();
    Err(match status {
        StatusCode::NOT_FOUND => object_store::Error::NotFound { path, source },
        StatusCode::PRECONDITION_FAILED => object_store::Error::Precondition { path, source },
        StatusCode::NOT_MODIFIED => object_store::Error::NotModified { path, source },
        StatusCode::UNAUTHORIZED => object_store::Error::Unauthenticated { path, source },
        StatusCode::FORBIDDEN => object_store::Error::PermissionDenied { path, source },
        _ => object_store::Error::Generic {
            store: STORE,
            source: format!("{path}: {source}").into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RequestRetries::default();
        assert_eq!(policy.backoff(1), Duration::from_millis(200));
        assert_eq!(policy.backoff(2), Duration::from_millis(400));
        assert_eq!(policy.backoff(4), Duration::from_millis(1600));
        assert_eq!(policy.backoff(30), Duration::from_secs(15));
    }

    #[test]
    fn object_names_are_one_path_segment() {
        let client = GcsClient::new(
            "http://127.0.0.1:1/",
            "b",
            std::sync::Arc::new(object_store::StaticCredentialProvider::new(
                object_store::gcp::GcpCredential {
                    bearer: String::new(),
                },
            )),
        )
        .unwrap();
        assert_eq!(
            client.object_url("postgresql/2024-01-15/a b+c.dump"),
            "http://127.0.0.1:1/storage/v1/b/b/o/postgresql%2F2024-01-15%2Fa%20b%2Bc.dump"
        );
    }
}
