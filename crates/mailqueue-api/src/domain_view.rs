//! What the domain endpoints share: a domain as the API shows it (in
//! Resend's shape, its records included, never its private keys), the id
//! of a route, and the fields a create or an update parses.

use crate::email_view::timestamp;
use crate::error::ApiError;
use crate::named::PathName;
use mailqueue_core::domains::{DkimAlgorithm, Domain, RecordsConfig, TlsPolicy};
use mailqueue_core::{DomainId, FieldError};
use serde_json::{json, Value};

impl PathName for DomainId {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        raw.parse().map_err(|_| no_domain(raw))
    }
}

pub fn no_domain(raw: impl std::fmt::Display) -> ApiError {
    ApiError::NotFound(format!("No domain with id `{raw}` exists."))
}

/// Resend's `capabilities`: sending only (receiving is not built).
fn capabilities() -> Value {
    json!({"sending": "enabled", "receiving": "disabled"})
}

/// The domain as a list shows it: no records.
pub fn domain_list_item(d: &Domain) -> Value {
    json!({
        "id": d.id.to_string(),
        "name": d.name.as_str(),
        "status": d.status.as_str(),
        "created_at": timestamp(d.created_at),
        "region": d.region.as_str(),
        "open_tracking": d.open_tracking,
        "click_tracking": d.click_tracking,
        "capabilities": capabilities(),
    })
}

/// The domain with its records, as `POST /v1/domains` answers it (without
/// `object`, as Resend) and `GET /v1/domains/{id}` (with it).
pub fn domain_json(d: &Domain, records: &RecordsConfig, with_object: bool) -> Value {
    let mut v = domain_list_item(d);
    if with_object {
        v["object"] = json!("domain");
    }
    v["tls"] = json!(d.tls.as_str());
    if let Some(t) = &d.tracking_subdomain {
        v["tracking_subdomain"] = json!(t);
    }
    v["records"] = json!(d.dns_records(records));
    let signing = d.signing_key().map(|k| k.selector.as_str());
    v["dkim"] = json!(d
        .dkim_keys
        .iter()
        .map(|k| json!({
            "selector": k.selector,
            "algorithm": k.algorithm.as_str(),
            "status": k.status.as_str(),
            "signing": signing == Some(k.selector.as_str()),
            "created_at": timestamp(k.created_at),
        }))
        .collect::<Vec<_>>());
    v
}

/// `tls`: `opportunistic` or `enforced`.
pub fn tls(raw: &str) -> Result<TlsPolicy, FieldError> {
    TlsPolicy::parse(raw)
        .ok_or_else(|| FieldError::invalid("tls", "`tls` must be `opportunistic` or `enforced`."))
}

/// `dkim_algorithm` (ours): `rsa` (RSA-2048, the default) or `ed25519`.
pub fn algorithm(raw: &str) -> Result<DkimAlgorithm, FieldError> {
    DkimAlgorithm::parse(raw).ok_or_else(|| {
        FieldError::invalid(
            "dkim_algorithm",
            "`dkim_algorithm` must be `rsa` (RSA-2048) or `ed25519`.",
        )
    })
}

/// Resend's `capabilities` in a request: sending must stay enabled, and
/// receiving cannot be enabled here.
pub fn check_capabilities(raw: &Option<serde_json::Map<String, Value>>) -> Result<(), FieldError> {
    let Some(map) = raw else { return Ok(()) };
    for (name, value) in map {
        let ok = match (name.as_str(), value.as_str()) {
            ("sending", Some("enabled")) | ("receiving", Some("disabled")) => true,
            ("sending", Some("disabled")) => {
                return Err(FieldError::invalid(
                    "capabilities",
                    "A sending domain keeps `sending` enabled.",
                ))
            }
            ("receiving", Some("enabled")) => {
                return Err(FieldError::invalid(
                    "capabilities",
                    "mailqueue does not receive mail for domains; `receiving` stays disabled.",
                ))
            }
            _ => false,
        };
        if !ok {
            return Err(FieldError::invalid(
                "capabilities",
                "`capabilities` has `sending` and `receiving`, each `enabled` or `disabled`.",
            ));
        }
    }
    Ok(())
}

/// An optional `tracking_subdomain`: one DNS label.
pub fn tracking_subdomain(raw: Option<String>) -> Result<Option<String>, FieldError> {
    raw.map(|t| {
        let t = t.trim().to_ascii_lowercase();
        mailqueue_core::domains::check_label(&t)
            .map(|_| t)
            .map_err(|e| {
                FieldError::invalid("tracking_subdomain", format!("`tracking_subdomain`: {e}"))
            })
    })
    .transpose()
}
