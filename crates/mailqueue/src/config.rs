//! Configuration: environment variables over a TOML file (`MAILQUEUE_CONFIG`)
//! over defaults. Unknown keys in the file and unknown `MAILQUEUE_*`
//! variables are refused, so a typo never goes unnoticed. The environment
//! is passed in, never read from a global, so tests build any config.

mod domains;
mod smtp;

pub use domains::DomainsConfig;
pub use smtp::{BounceConfig, SubmissionConfig};

use crate::settings::{find_by_env, find_by_key, Setting, SETTINGS};
use mailqueue_core::rate::RateLimits;
use mailqueue_core::retention::RetentionPolicy;
use mailqueue_core::webhooks::RetrySchedule;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown environment variable {0} (see the configuration table in the README)")]
    UnknownEnv(String),
    #[error("unknown key `{key}` in {file}")]
    UnknownKey { key: String, file: String },
    #[error("cannot read the config file {file}: {reason}")]
    File { file: String, reason: String },
    #[error("{source_name} is invalid: {reason}")]
    Invalid { source_name: String, reason: String },
}

/// A value that must not be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// What one `mailqueue serve` process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The API and the delivery workers (the embedded default).
    All,
    /// The API only: accepts and dispatches, sends nothing.
    Api,
    /// Delivery only; HTTP serves `/healthz`, `/readyz` and `/metrics`.
    Worker,
}

impl Role {
    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    pub fn delivers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Role::All),
            "api" => Ok(Role::Api),
            "worker" => Ok(Role::Worker),
            other => Err(format!("`{other}`: use all, api or worker")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The typed, validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub role: Role,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub database_max_connections: u32,
    pub redis_url: Option<Secret>,
    pub smtp_url: Option<Secret>,
    pub smtp_pool_size: Option<u32>,
    pub smtp_fleet_connections: Option<u32>,
    pub smtp_timeout: Duration,
    pub send_timeout: Duration,
    pub smtp_hello_name: Option<String>,
    pub worker_concurrency: usize,
    pub rate_limits: RateLimits,
    pub lease: Duration,
    pub retry_initial: Duration,
    pub retry_max_delay: Duration,
    pub retry_max_age: Duration,
    pub retry_jitter: f64,
    pub max_body_bytes: usize,
    pub http_header_timeout: Duration,
    pub http_body_timeout: Duration,
    pub http_body_deadline: Duration,
    pub http_max_connections: usize,
    /// `None`: no limit per client address.
    pub http_max_connections_per_client: Option<usize>,
    pub http_max_requests_per_key: usize,
    /// A second listener for `/healthz`, `/readyz` and `/metrics` only.
    pub health_listen: Option<SocketAddr>,
    pub max_batch: usize,
    pub message_id_domain: Option<String>,
    pub idempotency_ttl: Duration,
    pub auth_cache: Duration,
    pub shutdown_grace: Duration,
    pub rescue_interval: Duration,
    pub reconcile_interval: Duration,
    pub retention: RetentionPolicy,
    pub retention_interval: Duration,
    pub maintenance_lease: Duration,
    pub redis_prefix: String,
    pub webhooks: WebhookConfig,
    pub backup_dir: PathBuf,
    /// Whether `backup_dir` was set (environment or file) rather than left
    /// at its default: `wal-push` archives only where it was told to.
    pub backup_dir_named: bool,
    pub backup_s3_url: Option<String>,
    pub backup_gcs_url: Option<String>,
    pub gpg_recipients: Vec<String>,
    pub backup_lock_dir: PathBuf,
    /// Daily, weekly and monthly backups kept, per store.
    pub backup_postgres_keep: [u32; 3],
    pub backup_redis_keep: [u32; 3],
    pub backup_quota_bytes: Option<u64>,
    pub pushgateway_url: Option<String>,
    pub metrics_textfile: Option<PathBuf>,
    pub slack_webhook_url: Option<Secret>,
    pub log: String,
    pub log_format: LogFormat,
    pub submission: SubmissionConfig,
    pub bounces: Option<BounceConfig>,
    pub domains: DomainsConfig,
}

/// The webhook settings.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub allow_private: bool,
    pub timeout: Duration,
    pub retry_schedule: RetrySchedule,
    pub disable_after: Duration,
    pub concurrency: usize,
    pub endpoint_concurrency: usize,
    pub poll: Duration,
    pub secret_grace: Duration,
}

fn webhook_config(l: &Layers) -> Result<WebhookConfig, ConfigError> {
    let timeout = l.seconds("webhook_timeout_seconds")?;
    if timeout.is_zero() {
        return Err(ConfigError::Invalid {
            source_name: "MAILQUEUE_WEBHOOK_TIMEOUT_SECONDS".into(),
            reason: "must be above 0".into(),
        });
    }
    Ok(WebhookConfig {
        allow_private: l.get("webhook_allow_private")?,
        timeout,
        retry_schedule: l.get("webhook_retry_schedule")?,
        disable_after: l.seconds("webhook_disable_after_seconds")?,
        concurrency: l.positive("webhook_concurrency")?,
        endpoint_concurrency: l.positive("webhook_endpoint_concurrency")?,
        poll: l
            .seconds("webhook_poll_seconds")?
            .max(Duration::from_millis(10)),
        secret_grace: l.seconds("webhook_secret_grace_seconds")?,
    })
}

/// `daily,weekly,monthly`, e.g. `7,4,12`.
struct KeepCounts([u32; 3]);

impl FromStr for KeepCounts {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                "expected three numbers, daily,weekly,monthly (e.g. 7,4,12)".to_string()
            })?;
        match parts.as_slice() {
            [d, w, m] => Ok(Self([*d, *w, *m])),
            _ => Err("expected three numbers, daily,weekly,monthly (e.g. 7,4,12)".into()),
        }
    }
}

/// Where each value came from, for error messages.
struct Layers {
    values: HashMap<&'static str, (String, String)>,
}

impl Layers {
    fn load(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut values = HashMap::new();
        for s in SETTINGS {
            if let Some(d) = s.default {
                values.insert(s.key, (d.to_string(), format!("the default of {}", s.env)));
            }
        }
        if let Some(path) = env.get("MAILQUEUE_CONFIG").filter(|p| !p.is_empty()) {
            for (key, value) in read_file(Path::new(path))? {
                let setting = find_by_key(&key).ok_or_else(|| ConfigError::UnknownKey {
                    key: key.clone(),
                    file: path.clone(),
                })?;
                values.insert(setting.key, (value, format!("`{key}` in {path}")));
            }
        }
        for (name, value) in env {
            if name == "MAILQUEUE_CONFIG" {
                continue;
            }
            match find_by_env(name) {
                Some(setting) => {
                    values.insert(setting.key, (value.clone(), name.clone()));
                }
                None if name.starts_with("MAILQUEUE_") => {
                    return Err(ConfigError::UnknownEnv(name.clone()))
                }
                None => {}
            }
        }
        Ok(Self { values })
    }

    /// Whether `key` was given by the environment or the file.
    fn is_named(&self, key: &str) -> bool {
        self.values
            .get(key)
            .is_some_and(|(_, source)| !source.starts_with("the default of "))
    }

    fn raw(&self, key: &str) -> Option<(&str, &str)> {
        self.values
            .get(key)
            .map(|(v, src)| (v.as_str(), src.as_str()))
            .filter(|(v, _)| !v.trim().is_empty())
    }

    fn opt<T: FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.raw(key) {
            None => Ok(None),
            Some((value, source)) => {
                value
                    .trim()
                    .parse::<T>()
                    .map(Some)
                    .map_err(|e| ConfigError::Invalid {
                        source_name: source.to_string(),
                        reason: if is_secret(key) {
                            format!("{e}")
                        } else {
                            format!("`{value}`: {e}")
                        },
                    })
            }
        }
    }

    fn get<T: FromStr>(&self, key: &str) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.opt(key)?.ok_or_else(|| ConfigError::Invalid {
            source_name: key.to_string(),
            reason: "a value is required".into(),
        })
    }

    /// A number of days (fractions allowed); unset or `0` is `None`.
    fn days(&self, key: &str) -> Result<Option<chrono::Duration>, ConfigError> {
        let Some(days) = self.opt::<f64>(key)? else {
            return Ok(None);
        };
        if !(0.0..=1e6).contains(&days) {
            return Err(ConfigError::Invalid {
                source_name: self
                    .raw(key)
                    .map(|(_, s)| s.to_string())
                    .unwrap_or_default(),
                reason: format!("{days} is not a number of days"),
            });
        }
        let ms = (days * 86_400_000.0).round() as i64;
        Ok((ms > 0).then(|| chrono::Duration::milliseconds(ms)))
    }

    fn seconds(&self, key: &str) -> Result<Duration, ConfigError> {
        let secs: f64 = self.get(key)?;
        if !(0.0..=1e9).contains(&secs) {
            return Err(ConfigError::Invalid {
                source_name: self
                    .raw(key)
                    .map(|(_, s)| s.to_string())
                    .unwrap_or_default(),
                reason: format!("{secs} is not a number of seconds"),
            });
        }
        Ok(Duration::from_secs_f64(secs))
    }

    fn positive(&self, key: &str) -> Result<usize, ConfigError> {
        let n: usize = self.get(key)?;
        if n == 0 {
            return Err(ConfigError::Invalid {
                source_name: self
                    .raw(key)
                    .map(|(_, s)| s.to_string())
                    .unwrap_or_default(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(n)
    }
}

/// A key prefix: printable, and free of the braces of the hash tag.
fn redis_prefix(l: &Layers) -> Result<String, ConfigError> {
    let prefix: String = l.get("redis_prefix")?;
    if prefix.is_empty()
        || !prefix
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
    {
        return Err(ConfigError::Invalid {
            source_name: "MAILQUEUE_REDIS_PREFIX".into(),
            reason: format!("`{prefix}`: use printable characters without braces"),
        });
    }
    Ok(prefix)
}

/// Separate roles share their work through PostgreSQL and Redis.
fn check_role(
    role: Role,
    database_url: &Option<Secret>,
    redis_url: &Option<Secret>,
    source: &str,
) -> Result<(), ConfigError> {
    if role == Role::All || (database_url.is_some() && redis_url.is_some()) {
        return Ok(());
    }
    Err(ConfigError::Invalid {
        source_name: source.into(),
        reason: "the api and worker roles run as separate processes and need DATABASE_URL \
                 (PostgreSQL) and REDIS_URL (the shared dispatch queue)"
            .into(),
    })
}

fn is_secret(key: &str) -> bool {
    find_by_key(key).is_some_and(|s: &Setting| s.secret)
}

fn read_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        file: shown.clone(),
        reason: e.to_string(),
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::File {
            file: shown.clone(),
            reason: e.message().to_string(),
        })?;
    table
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(ConfigError::File {
                        file: shown.clone(),
                        reason: format!(
                            "`{k}` must be a string or a number, not {}",
                            other.type_str()
                        ),
                    })
                }
            };
            Ok((k, value))
        })
        .collect()
}

impl Config {
    /// The same configuration for another role (`mailqueue serve --role`),
    /// checked as if it had come from the environment.
    pub fn with_role(mut self, role: Role) -> Result<Self, ConfigError> {
        check_role(role, &self.database_url, &self.redis_url, "--role")?;
        self.role = role;
        Ok(self)
    }

    /// Builds the configuration from environment variables (and the file
    /// they may name).
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let l = Layers::load(env)?;
        let log_format = match l.get::<String>("log_format")?.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::Invalid {
                    source_name: "MAILQUEUE_LOG_FORMAT".into(),
                    reason: format!("`{other}`: use text or json"),
                })
            }
        };
        let jitter: f64 = l.get("retry_jitter")?;
        if !(0.0..=1.0).contains(&jitter) {
            return Err(ConfigError::Invalid {
                source_name: "MAILQUEUE_RETRY_JITTER".into(),
                reason: format!("{jitter} is not between 0 and 1"),
            });
        }
        let secret = |key| l.opt::<String>(key).map(|v| v.map(Secret));
        let bounces = smtp::bounce_config(&l)?;
        let send_timeout = l.seconds("send_timeout_seconds")?;
        let lease = l.seconds("lease_seconds")?;
        if send_timeout.is_zero() || lease <= send_timeout {
            return Err(ConfigError::Invalid {
                source_name: "MAILQUEUE_LEASE_SECONDS".into(),
                reason: format!(
                    "a lease of {}s cannot cover one send of up to {}s \
                     (MAILQUEUE_SEND_TIMEOUT_SECONDS, which must be above 0); the lease must be longer",
                    lease.as_secs_f64(),
                    send_timeout.as_secs_f64()
                ),
            });
        }
        let role: Role = l.get("role")?;
        let database_url = secret("database_url")?;
        let redis_url = secret("redis_url")?;
        check_role(role, &database_url, &redis_url, "MAILQUEUE_ROLE")?;
        let smtp_fleet_connections: Option<u32> = l.opt("smtp_fleet_connections")?;
        if smtp_fleet_connections.is_some() && redis_url.is_none() {
            return Err(ConfigError::Invalid {
                source_name: "MAILQUEUE_SMTP_FLEET_CONNECTIONS".into(),
                reason: "a fleet-wide cap needs REDIS_URL; one process is capped by \
                         MAILQUEUE_SMTP_POOL_SIZE"
                    .into(),
            });
        }
        Ok(Self {
            listen: l.get("listen")?,
            role,
            data_dir: l.get("data_dir")?,
            database_url,
            database_max_connections: l.positive("database_max_connections")? as u32,
            redis_url,
            smtp_url: secret("smtp_url")?,
            smtp_pool_size: l.opt("smtp_pool_size")?,
            smtp_fleet_connections,
            smtp_timeout: l.seconds("smtp_timeout_seconds")?,
            send_timeout,
            smtp_hello_name: l.opt("smtp_hello_name")?,
            worker_concurrency: l.positive("worker_concurrency")?,
            rate_limits: RateLimits {
                global: l.opt("rate_limit")?,
                domains: match l.raw("domain_rate_limits") {
                    None => Vec::new(),
                    Some((value, source)) => {
                        RateLimits::parse_domains(value).map_err(|reason| ConfigError::Invalid {
                            source_name: source.to_string(),
                            reason,
                        })?
                    }
                },
            },
            lease,
            retry_initial: l.seconds("retry_initial_seconds")?,
            retry_max_delay: l.seconds("retry_max_delay_seconds")?,
            retry_max_age: l.seconds("retry_max_age_seconds")?,
            retry_jitter: jitter,
            max_body_bytes: l.positive("max_body_bytes")?,
            http_header_timeout: l.seconds("http_header_timeout_seconds")?,
            http_body_timeout: l.seconds("http_body_timeout_seconds")?,
            http_body_deadline: l.seconds("http_body_deadline_seconds")?,
            http_max_connections: l.positive("http_max_connections")?,
            http_max_connections_per_client: Some(
                l.get::<usize>("http_max_connections_per_client")?,
            )
            .filter(|n| *n > 0),
            http_max_requests_per_key: l.positive("http_max_requests_per_key")?,
            health_listen: l.opt("health_listen")?,
            max_batch: l.positive("max_batch")?,
            message_id_domain: l.opt("message_id_domain")?,
            idempotency_ttl: l.seconds("idempotency_ttl_seconds")?,
            auth_cache: l.seconds("auth_cache_seconds")?,
            shutdown_grace: l.seconds("shutdown_grace_seconds")?,
            rescue_interval: l
                .seconds("rescue_interval_seconds")?
                .max(Duration::from_millis(10)),
            reconcile_interval: l
                .seconds("reconcile_interval_seconds")?
                .max(Duration::from_millis(10)),
            retention: RetentionPolicy::new(
                l.days("retention_days")?,
                l.days("content_retention_days")?,
            ),
            retention_interval: l
                .seconds("retention_interval_seconds")?
                .max(Duration::from_millis(10)),
            maintenance_lease: l
                .seconds("maintenance_lease_seconds")?
                .max(Duration::from_millis(100)),
            redis_prefix: redis_prefix(&l)?,
            webhooks: webhook_config(&l)?,
            backup_dir: l.get("backup_dir")?,
            backup_dir_named: l.is_named("backup_dir"),
            backup_s3_url: l.opt("backup_s3_url")?,
            backup_gcs_url: l.opt("backup_gcs_url")?,
            gpg_recipients: l
                .opt::<String>("gpg_recipient")?
                .map(|r| {
                    r.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            backup_lock_dir: l.opt("backup_lock_dir")?.unwrap_or_else(std::env::temp_dir),
            backup_postgres_keep: l.get::<KeepCounts>("backup_postgres_keep")?.0,
            backup_redis_keep: l.get::<KeepCounts>("backup_redis_keep")?.0,
            backup_quota_bytes: l.opt("backup_quota_bytes")?,
            pushgateway_url: l.opt("pushgateway_url")?,
            metrics_textfile: l.opt("metrics_textfile")?,
            slack_webhook_url: secret("slack_webhook_url")?,
            log: l.get("log")?,
            log_format,
            submission: smtp::submission_config(&l)?,
            domains: domains::domains_config(
                &l,
                bounces.as_ref().map(|b| b.return_paths.domain()),
            )?,
            bounces,
        })
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("mailqueue.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_describe_the_embedded_mode() {
        let c = Config::from_env(&env(&[("PATH", "/bin")])).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(c.sqlite_path(), PathBuf::from("./data/mailqueue.db"));
        assert!(c.database_url.is_none() && c.smtp_url.is_none());
        assert_eq!(c.retry_max_age, Duration::from_secs(48 * 3600));
    }

    #[test]
    fn retention_keeps_30_days_by_default_and_0_keeps_everything() {
        let c = Config::from_env(&env(&[])).unwrap();
        assert_eq!(c.retention.emails, Some(chrono::Duration::days(30)));
        assert_eq!(c.retention.contents, None);
        let c = Config::from_env(&env(&[
            ("MAILQUEUE_RETENTION_DAYS", "0"),
            ("MAILQUEUE_CONTENT_RETENTION_DAYS", "0"),
        ]))
        .unwrap();
        assert!(c.retention.keeps_everything());
        let c = Config::from_env(&env(&[
            ("MAILQUEUE_RETENTION_DAYS", "90"),
            ("MAILQUEUE_CONTENT_RETENTION_DAYS", "0.5"),
        ]))
        .unwrap();
        assert_eq!(c.retention.contents, Some(chrono::Duration::hours(12)));
        for bad in ["-1", "soon", "1e9"] {
            let e = Config::from_env(&env(&[("MAILQUEUE_RETENTION_DAYS", bad)]));
            assert!(e.is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("mq-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mailqueue.toml");
        std::fs::write(
            &file,
            "worker_concurrency = 8\nlisten = \"127.0.0.1:4000\"\n",
        )
        .unwrap();
        let c = Config::from_env(&env(&[
            ("MAILQUEUE_CONFIG", file.to_str().unwrap()),
            ("MAILQUEUE_LISTEN", "127.0.0.1:5000"),
        ]))
        .unwrap();
        assert_eq!(c.worker_concurrency, 8);
        assert_eq!(c.listen.port(), 5000);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values_with_their_source() {
        let e = Config::from_env(&env(&[("MAILQUEUE_WORKERS", "3")])).unwrap_err();
        assert!(e.to_string().contains("MAILQUEUE_WORKERS"), "{e}");
        let e = Config::from_env(&env(&[("MAILQUEUE_WORKER_CONCURRENCY", "many")])).unwrap_err();
        assert!(
            e.to_string().contains("MAILQUEUE_WORKER_CONCURRENCY"),
            "{e}"
        );
        let e = Config::from_env(&env(&[("MAILQUEUE_WORKER_CONCURRENCY", "0")])).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }

    #[test]
    fn a_lease_that_cannot_cover_one_send_is_refused() {
        for lease in ["0", "180", "10"] {
            let e = Config::from_env(&env(&[("MAILQUEUE_LEASE_SECONDS", lease)])).unwrap_err();
            assert!(e.to_string().contains("MAILQUEUE_LEASE_SECONDS"), "{e}");
        }
        let c = Config::from_env(&env(&[
            ("MAILQUEUE_LEASE_SECONDS", "10"),
            ("MAILQUEUE_SEND_TIMEOUT_SECONDS", "5"),
        ]))
        .unwrap();
        assert!(c.lease > c.send_timeout);
        let e = Config::from_env(&env(&[("MAILQUEUE_SEND_TIMEOUT_SECONDS", "0")])).unwrap_err();
        assert!(e.to_string().contains("above 0"), "{e}");
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = Config::from_env(&env(&[("DATABASE_URL", "postgres://u:hunter2@db/mq")])).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
