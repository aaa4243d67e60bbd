//! The DNS records a sending domain asks its owner to publish, and what a
//! check of them decides. Names are relative to the domain, as Resend
//! shows them (`send`, `mq1._domainkey`).

use super::{DkimKey, Domain, VerificationStatus};
use serde::Serialize;

/// The DMARC policy suggested to a new domain: monitoring only, so that
/// publishing it can never cost mail.
pub const DMARC_RECOMMENDED: &str = "v=DMARC1; p=none;";

/// Resend's `record` of a DNS record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RecordKind {
    #[serde(rename = "DKIM")]
    Dkim,
    /// The return-path subdomain's MX and TXT (Resend calls both "SPF").
    #[serde(rename = "SPF")]
    Spf,
    /// Recommended, not required for verification.
    #[serde(rename = "DMARC")]
    Dmarc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum RecordType {
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "MX")]
    Mx,
}

/// What the server publishes for every domain: the host that receives
/// bounces, and the SPF mechanisms that allow the relay to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordsConfig {
    /// The MX of every return-path subdomain; without one, domains have
    /// no return-path records and their mail keeps its own sender.
    pub bounce_mx_host: Option<String>,
    /// The mechanisms of the return path's SPF record (`mx` by default:
    /// the bounce host sends too; `include:…` or `ip4:…` for a relay).
    pub spf_mechanisms: String,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            bounce_mx_host: None,
            spf_mechanisms: "mx".into(),
        }
    }
}

impl RecordsConfig {
    pub fn spf_value(&self) -> String {
        format!("v=spf1 {} ~all", self.spf_mechanisms.trim())
    }
}

/// One record to publish, with what the last check found of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    pub record: RecordKind,
    /// Relative to the domain.
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub value: String,
    pub ttl: &'static str,
    pub status: VerificationStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
}

/// A question for DNS: the records of one type at one absolute name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsQuery {
    pub name: String,
    pub record_type: RecordType,
}

/// What DNS answered to a [`DnsQuery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsAnswer {
    /// TXT: each record's strings joined; MX: each exchange, without its
    /// trailing dot.
    Found(Vec<String>),
    /// The name or the type does not exist.
    Missing,
    /// DNS could not be asked (timeout, SERVFAIL, refused): decide later.
    Unreachable(String),
}

/// The outcome of one check of a domain's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub status: VerificationStatus,
    pub dkim: Vec<VerificationStatus>,
    pub return_path_mx: VerificationStatus,
    pub return_path_spf: VerificationStatus,
    pub dmarc: VerificationStatus,
}

fn dkim_record(key: &DkimKey) -> (String, String) {
    (
        format!("{}._domainkey", key.selector),
        format!(
            "v=DKIM1; k={}; p={}",
            key.algorithm.as_str(),
            key.public_key
        ),
    )
}

impl Domain {
    /// The records to publish, as `GET /v1/domains/{id}` lists them.
    pub fn dns_records(&self, config: &RecordsConfig) -> Vec<DnsRecord> {
        let mut records: Vec<DnsRecord> = self
            .dkim_keys
            .iter()
            .map(|key| {
                let (name, value) = dkim_record(key);
                DnsRecord {
                    record: RecordKind::Dkim,
                    name,
                    record_type: RecordType::Txt,
                    value,
                    ttl: "Auto",
                    status: key.status,
                    priority: None,
                }
            })
            .collect();
        if let Some(host) = &config.bounce_mx_host {
            records.push(DnsRecord {
                record: RecordKind::Spf,
                name: self.custom_return_path.clone(),
                record_type: RecordType::Mx,
                value: host.clone(),
                ttl: "Auto",
                status: self.records.return_path_mx,
                priority: Some(10),
            });
            records.push(DnsRecord {
                record: RecordKind::Spf,
                name: self.custom_return_path.clone(),
                record_type: RecordType::Txt,
                value: config.spf_value(),
                ttl: "Auto",
                status: self.records.return_path_spf,
                priority: None,
            });
        }
        records.push(DnsRecord {
            record: RecordKind::Dmarc,
            name: "_dmarc".into(),
            record_type: RecordType::Txt,
            value: DMARC_RECOMMENDED.into(),
            ttl: "Auto",
            status: self.records.dmarc,
            priority: None,
        });
        records
    }

    /// The questions a check asks, by absolute name.
    pub fn dns_queries(&self, config: &RecordsConfig) -> Vec<DnsQuery> {
        self.dns_records(config)
            .into_iter()
            .map(|r| DnsQuery {
                name: format!("{}.{}", r.name, self.name),
                record_type: r.record_type,
            })
            .collect()
    }

    /// Decides each record's status and the domain's from DNS's answers
    /// (`answer` gives the answer to each of [`Domain::dns_queries`]).
    ///
    /// The domain is verified when its signing key's record and (with a
    /// bounce host) the return path's MX and SPF are; partially verified
    /// when some of them are; failed when none is and one is missing or
    /// wrong. When DNS could not be asked about the rest, it stays pending.
    /// DMARC is only recommended and never decides.
    pub fn decide_check(
        &self,
        config: &RecordsConfig,
        answer: impl Fn(&DnsQuery) -> DnsAnswer,
    ) -> Check {
        let status_of = |name: &str, t: RecordType, matches: &dyn Fn(&str) -> bool| {
            let query = DnsQuery {
                name: format!("{name}.{}", self.name),
                record_type: t,
            };
            match answer(&query) {
                DnsAnswer::Found(values) if values.iter().any(|v| matches(v)) => {
                    VerificationStatus::Verified
                }
                DnsAnswer::Found(_) | DnsAnswer::Missing => VerificationStatus::Failed,
                DnsAnswer::Unreachable(_) => VerificationStatus::TemporaryFailure,
            }
        };
        let dkim: Vec<VerificationStatus> = self
            .dkim_keys
            .iter()
            .map(|key| {
                let (name, _) = dkim_record(key);
                status_of(&name, RecordType::Txt, &|v| dkim_matches(v, key))
            })
            .collect();
        let not_asked = VerificationStatus::NotStarted;
        let (mx, spf) = match &config.bounce_mx_host {
            Some(host) => (
                status_of(&self.custom_return_path, RecordType::Mx, &|v| {
                    v.trim_end_matches('.').eq_ignore_ascii_case(host)
                }),
                status_of(&self.custom_return_path, RecordType::Txt, &|v| {
                    same_words(v, &config.spf_value())
                }),
            ),
            None => (not_asked, not_asked),
        };
        let dmarc = status_of("_dmarc", RecordType::Txt, &|v| {
            v.trim_start().to_ascii_lowercase().starts_with("v=dmarc1")
        });
        // The signing key decides, or the key a rotation adds while no key signs.
        let signing = self
            .dkim_keys
            .iter()
            .position(|k| k.active)
            .or((!dkim.is_empty()).then_some(0))
            .map(|i| dkim[i]);
        let required: Vec<VerificationStatus> = signing
            .into_iter()
            .chain([mx, spf].into_iter().filter(|s| *s != not_asked))
            .collect();
        let verified = required
            .iter()
            .filter(|s| **s == VerificationStatus::Verified)
            .count();
        let status = if !required.is_empty() && verified == required.len() {
            VerificationStatus::Verified
        } else if verified > 0 {
            VerificationStatus::PartiallyVerified
        } else if required.contains(&VerificationStatus::Failed) {
            VerificationStatus::Failed
        } else {
            VerificationStatus::Pending
        };
        Check {
            status,
            dkim,
            return_path_mx: mx,
            return_path_spf: spf,
            dmarc,
        }
    }

    /// Applies a check: the statuses, and a rotation's switch once the
    /// next key's record is seen (the old key is dropped; its record may
    /// then be removed from DNS once mail signed with it has arrived).
    pub fn apply_check(&mut self, check: &Check) {
        for (key, status) in self.dkim_keys.iter_mut().zip(&check.dkim) {
            key.status = *status;
        }
        self.records.return_path_mx = check.return_path_mx;
        self.records.return_path_spf = check.return_path_spf;
        self.records.dmarc = check.dmarc;
        self.status = check.status;
        let next_ready = self
            .dkim_keys
            .iter()
            .any(|k| !k.active && k.status == VerificationStatus::Verified);
        if next_ready {
            self.dkim_keys.retain(|k| !k.active);
            if let Some(next) = self.dkim_keys.first_mut() {
                next.active = true;
            }
        }
    }
}

/// Whether a TXT record publishes `key`: its `p=` is the key's, whatever
/// the spacing and the order of the tags.
fn dkim_matches(txt: &str, key: &DkimKey) -> bool {
    let mut p = None;
    let mut k = "rsa".to_string();
    for tag in txt.split(';') {
        let Some((name, value)) = tag.split_once('=') else {
            continue;
        };
        let value: String = value.split_whitespace().collect();
        match name.trim() {
            "p" => p = Some(value),
            "k" => k = value.to_ascii_lowercase(),
            _ => {}
        }
    }
    p.as_deref() == Some(key.public_key.as_str()) && k == key.algorithm.as_str()
}

fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        s.trim_matches('"')
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect()
    };
    words(a) == words(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domains::tests_support::{domain, key};
    use std::collections::HashMap;

    fn config() -> RecordsConfig {
        RecordsConfig {
            bounce_mx_host: Some("mx.mailqueue.test".into()),
            spf_mechanisms: "mx".into(),
        }
    }

    /// DNS publishing every record of `d` as asked, but for `overrides`.
    fn dns(d: &Domain, overrides: &[(&str, DnsAnswer)]) -> HashMap<String, DnsAnswer> {
        let mut zone: HashMap<String, DnsAnswer> = d
            .dns_records(&config())
            .into_iter()
            .map(|r| {
                let key = format!("{}.{} {:?}", r.name, d.name, r.record_type);
                (key, DnsAnswer::Found(vec![r.value]))
            })
            .collect();
        for (k, v) in overrides {
            zone.insert((*k).to_string(), v.clone());
        }
        zone
    }

    fn check(d: &Domain, zone: &HashMap<String, DnsAnswer>) -> Check {
        d.decide_check(&config(), |q| {
            zone.get(&format!("{} {:?}", q.name, q.record_type))
                .cloned()
                .unwrap_or(DnsAnswer::Missing)
        })
    }

    #[test]
    fn records_are_resends_shapes() {
        let records = domain().dns_records(&config());
        let json = serde_json::to_value(&records).unwrap();
        assert_eq!(json[0]["record"], "DKIM");
        assert_eq!(json[0]["name"], "mq1._domainkey");
        assert_eq!(json[0]["value"], "v=DKIM1; k=rsa; p=PUBmq1");
        assert_eq!(json[1]["type"], "MX");
        assert_eq!(json[1]["priority"], 10);
        assert_eq!(json[2]["value"], "v=spf1 mx ~all");
        assert_eq!(json[3]["name"], "_dmarc");
        assert!(json[0].get("priority").is_none());
        let without_bounces = domain().dns_records(&RecordsConfig::default());
        assert_eq!(without_bounces.len(), 2, "{without_bounces:?}");
    }

    #[test]
    fn every_required_record_verifies_the_domain() {
        let d = domain();
        let c = check(&d, &dns(&d, &[("_dmarc.acme.com Txt", DnsAnswer::Missing)]));
        assert_eq!(c.status, VerificationStatus::Verified);
        assert_eq!(c.dmarc, VerificationStatus::Failed, "only recommended");
    }

    #[test]
    fn a_wrong_or_missing_record_fails_alone() {
        let d = domain();
        let wrong = DnsAnswer::Found(vec!["v=DKIM1; k=rsa; p=SOMEONEELSE".into()]);
        let c = check(&d, &dns(&d, &[("mq1._domainkey.acme.com Txt", wrong)]));
        assert_eq!(c.dkim, vec![VerificationStatus::Failed]);
        assert_eq!(c.return_path_mx, VerificationStatus::Verified);
        assert_eq!(c.status, VerificationStatus::PartiallyVerified);
        let empty = HashMap::new();
        assert_eq!(check(&d, &empty).status, VerificationStatus::Failed);
        let down = DnsAnswer::Unreachable("SERVFAIL".into());
        let all_down: HashMap<String, DnsAnswer> = dns(&d, &[])
            .into_keys()
            .map(|k| (k, down.clone()))
            .collect();
        let c = check(&d, &all_down);
        assert_eq!(c.status, VerificationStatus::Pending);
        assert_eq!(c.return_path_spf, VerificationStatus::TemporaryFailure);
    }

    #[test]
    fn spacing_quoting_and_case_do_not_matter() {
        let d = domain();
        let c = check(
            &d,
            &dns(
                &d,
                &[
                    (
                        "mq1._domainkey.acme.com Txt",
                        DnsAnswer::Found(vec!["k=rsa;  v=DKIM1 ; p=PUB mq1".into()]),
                    ),
                    (
                        "send.acme.com Mx",
                        DnsAnswer::Found(vec!["MX.mailqueue.test.".into()]),
                    ),
                    (
                        "send.acme.com Txt",
                        DnsAnswer::Found(vec!["\"v=spf1  MX ~all\"".into()]),
                    ),
                ],
            ),
        );
        assert_eq!(c.status, VerificationStatus::Verified, "{c:?}");
    }

    #[test]
    fn a_rotation_switches_once_the_next_key_is_seen() {
        let mut d = domain();
        d.apply_check(&check(&d, &dns(&d, &[])));
        assert_eq!(d.signing_key().unwrap().selector, "mq1");
        d.dkim_keys.push(key("mq2", false));
        let unpublished = check(
            &d,
            &dns(&d, &[("mq2._domainkey.acme.com Txt", DnsAnswer::Missing)]),
        );
        assert_eq!(
            unpublished.status,
            VerificationStatus::Verified,
            "the old key still signs"
        );
        d.apply_check(&unpublished);
        assert_eq!(d.signing_key().unwrap().selector, "mq1");
        assert_eq!(d.dkim_keys.len(), 2);
        d.apply_check(&check(&d, &dns(&d, &[])));
        assert_eq!(d.dkim_keys.len(), 1);
        assert_eq!(d.signing_key().unwrap().selector, "mq2");
    }
}
