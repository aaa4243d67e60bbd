//! Every setting mailqueue reads, in one table: its key in the config file,
//! its environment variable, its default and what it means. The README's
//! configuration table is this table.

pub struct Setting {
    /// The key in the TOML file given by `MAILQUEUE_CONFIG`.
    pub key: &'static str,
    pub env: &'static str,
    pub default: Option<&'static str>,
    /// Never printed or logged.
    pub secret: bool,
    pub help: &'static str,
}

const fn s(
    key: &'static str,
    env: &'static str,
    default: Option<&'static str>,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        env,
        default,
        secret: false,
        help,
    }
}

const fn secret(key: &'static str, env: &'static str, help: &'static str) -> Setting {
    Setting {
        key,
        env,
        default: None,
        secret: true,
        help,
    }
}

pub const SETTINGS: &[Setting] = &[
    s("listen", "MAILQUEUE_LISTEN", Some("0.0.0.0:3000"), "Address of the HTTP API"),
    s("role", "MAILQUEUE_ROLE", Some("all"), "What `mailqueue serve` runs: `all` (API and delivery), `api`, or `worker` (delivery, with only `/healthz`, `/readyz` and `/metrics`); `api` and `worker` need `DATABASE_URL` and `REDIS_URL`"),
    s("data_dir", "MAILQUEUE_DATA_DIR", Some("./data"), "Embedded store (`mailqueue.db`) and outbox"),
    secret("database_url", "DATABASE_URL", "PostgreSQL URL; when set, PostgreSQL replaces SQLite"),
    s("database_max_connections", "MAILQUEUE_DATABASE_MAX_CONNECTIONS", Some("16"), "PostgreSQL pool size"),
    secret("redis_url", "REDIS_URL", "Redis URL of the dispatch queue shared by a fleet of API and worker processes; unset, the queue is in process"),
    secret("smtp_url", "MAILQUEUE_SMTP_URL", "Relay: `smtp://user:pass@host:port` (STARTTLS required; `?tls=opportunistic` without credentials), `smtps://` (TLS), `smtp+plain://` (no TLS); see [Security of the relay connection](#security-of-the-relay-connection); unset writes `.eml` files to `<data dir>/outbox`"),
    s("smtp_pool_size", "MAILQUEUE_SMTP_POOL_SIZE", None, "Connections kept open to the relay (default: worker concurrency)"),
    s("smtp_fleet_connections", "MAILQUEUE_SMTP_FLEET_CONNECTIONS", None, "Most connections to the relay for the whole fleet (needs `REDIS_URL`); a send that finds none free goes back to wait, without an attempt"),
    s("smtp_timeout_seconds", "MAILQUEUE_SMTP_TIMEOUT_SECONDS", Some("60"), "Timeout for connecting and for each SMTP command (no progress for this long fails the attempt, which is retried)"),
    s("send_timeout_seconds", "MAILQUEUE_SEND_TIMEOUT_SECONDS", Some("180"), "Longest one delivery attempt may take, connecting included; must be shorter than the lease"),
    s("smtp_hello_name", "MAILQUEUE_SMTP_HELLO_NAME", None, "EHLO name (default: the host name)"),
    s("worker_concurrency", "MAILQUEUE_WORKER_CONCURRENCY", Some("32"), "Most emails being sent at once by this process"),
    s("rate_limit", "MAILQUEUE_RATE_LIMIT", None, "Most sends per second for the whole fleet, e.g. `14/s` for SES (also `/min`, `/h`); emails over it wait, without an attempt"),
    s("domain_rate_limits", "MAILQUEUE_DOMAIN_RATE_LIMITS", None, "Limits by recipient domain, e.g. `gmail.com=20/s,yahoo.com=10/s`, shared by the fleet"),
    s("lease_seconds", "MAILQUEUE_LEASE_SECONDS", Some("300"), "How long a claimed email stays with its worker before another may take it; renewed while the worker lives, and longer than `MAILQUEUE_SEND_TIMEOUT_SECONDS`"),
    s("retry_initial_seconds", "MAILQUEUE_RETRY_INITIAL_SECONDS", Some("60"), "Delay before the first retry; doubles each time"),
    s("retry_max_delay_seconds", "MAILQUEUE_RETRY_MAX_DELAY_SECONDS", Some("3600"), "Longest delay between two attempts"),
    s("retry_max_age_seconds", "MAILQUEUE_RETRY_MAX_AGE_SECONDS", Some("172800"), "Give up this long after the first attempt (48 h)"),
    s("retry_jitter", "MAILQUEUE_RETRY_JITTER", Some("0.1"), "Random spread of each retry delay (0.1 = ±10%)"),
    s("max_body_bytes", "MAILQUEUE_MAX_BODY_BYTES", Some("41943040"), "Largest request body (40 MiB); larger gets 413"),
    s("http_header_timeout_seconds", "MAILQUEUE_HTTP_HEADER_TIMEOUT_SECONDS", Some("30"), "How long a client may take to send a request's headers, and how long an idle keep-alive connection stays open"),
    s("http_body_timeout_seconds", "MAILQUEUE_HTTP_BODY_TIMEOUT_SECONDS", Some("60"), "How long a request body may go without a byte arriving; then 408 and the connection is closed"),
    s("http_body_deadline_seconds", "MAILQUEUE_HTTP_BODY_DEADLINE_SECONDS", Some("300"), "Longest a whole request body may take to arrive, however steadily it trickles in; then 408 and the connection is closed"),
    s("http_max_connections", "MAILQUEUE_HTTP_MAX_CONNECTIONS", Some("1024"), "Most client connections served at once; further ones wait in the listen backlog, except a few kept for `/healthz`, `/readyz` and `/metrics` (other routes answer 503 on those)"),
    s("http_max_connections_per_client", "MAILQUEUE_HTTP_MAX_CONNECTIONS_PER_CLIENT", Some("256"), "Most connections from one client address at once; more are closed at once. Behind a proxy that puts every client behind one address, raise it or set `0` (no limit)"),
    s("http_max_requests_per_key", "MAILQUEUE_HTTP_MAX_REQUESTS_PER_KEY", Some("256"), "Most requests of one API key in progress at once, body reading included; more get 429 `rate_limit_exceeded`"),
    s("health_listen", "MAILQUEUE_HEALTH_LISTEN", None, "A second address serving only `/healthz`, `/readyz` and `/metrics`, with connections of its own, for probes that must answer while the API is saturated (e.g. `0.0.0.0:3001`)"),
    s("submission_listen", "MAILQUEUE_SUBMISSION_LISTEN", None, "SMTP submission with STARTTLS (e.g. `0.0.0.0:587`), in Resend's SMTP dialect: AUTH PLAIN or LOGIN as user `resend` with an API key as the password; roles `all` and `api` only"),
    s("submission_tls_listen", "MAILQUEUE_SUBMISSION_TLS_LISTEN", None, "SMTP submission over implicit TLS (e.g. `0.0.0.0:465`)"),
    s("submission_tls_cert", "MAILQUEUE_SUBMISSION_TLS_CERT", None, "The submission listeners' certificate chain, a PEM file"),
    s("submission_tls_key", "MAILQUEUE_SUBMISSION_TLS_KEY", None, "The key of that certificate, a PEM file"),
    s("submission_allow_plaintext_auth", "MAILQUEUE_SUBMISSION_ALLOW_PLAINTEXT_AUTH", Some("false"), "Offer AUTH without TLS (530 5.7.0 otherwise); for loopback clients only"),
    s("submission_hostname", "MAILQUEUE_SUBMISSION_HOSTNAME", None, "The name in the submission greeting (default: the machine's host name)"),
    s("submission_command_timeout_seconds", "MAILQUEUE_SUBMISSION_COMMAND_TIMEOUT_SECONDS", Some("300"), "How long a submission client may take to send a command"),
    s("submission_data_timeout_seconds", "MAILQUEUE_SUBMISSION_DATA_TIMEOUT_SECONDS", Some("180"), "How long a submission client may pause while sending a message"),
    s("submission_max_connections_per_client", "MAILQUEUE_SUBMISSION_MAX_CONNECTIONS_PER_CLIENT", Some("20"), "Submission connections open at once from one client address; more get 421"),
    s("bounce_domain", "MAILQUEUE_BOUNCE_DOMAIN", None, "Late bounces and complaints: every email is sent from a return address at this domain (`b-<email id>-<mac>@bounces.example.com`), whose MX is mailqueue (see docs/bounces.md)"),
    secret("bounce_secret", "MAILQUEUE_BOUNCE_SECRET", "The key of the return addresses' MACs (at least 16 characters, the same on every process); needed with `MAILQUEUE_BOUNCE_DOMAIN`"),
    s("inbound_listen", "MAILQUEUE_INBOUND_LISTEN", None, "The bounce domain's MX (e.g. `0.0.0.0:25`): takes DSNs and complaints for return addresses only, no AUTH; roles `all` and `api`"),
    s("inbound_messages_per_minute", "MAILQUEUE_INBOUND_MESSAGES_PER_MINUTE", Some("600"), "Messages the bounce domain's MX takes from one client address per minute; more get 450 4.7.1"),
    secret("secret_key", "MAILQUEUE_SECRET_KEY", "Seals the DKIM private keys of sending domains (AES-256-GCM; at least 32 characters, the same on every process, kept apart from backups); required to create domains on PostgreSQL"),
    s("require_verified_domain", "MAILQUEUE_REQUIRE_VERIFIED_DOMAIN", Some("false"), "Refuse a `from` whose domain is not a verified sending domain (403 at the API, 550 5.7.1 at SMTP `MAIL FROM`); `true` is recommended in production"),
    s("dns_servers", "MAILQUEUE_DNS_SERVERS", None, "DNS servers that domain checks ask, e.g. `127.0.0.1:5353,10.0.0.2` (default: the system's resolvers)"),
    s("bounce_mx_host", "MAILQUEUE_BOUNCE_MX_HOST", None, "The MX of every sending domain's return-path subdomain: the host where `MAILQUEUE_INBOUND_LISTEN` is reachable (default: `MAILQUEUE_BOUNCE_DOMAIN`; with neither, domains have no return-path records)"),
    s("domain_spf_mechanisms", "MAILQUEUE_DOMAIN_SPF_MECHANISMS", Some("mx"), "The mechanisms of each return-path subdomain's SPF record (`v=spf1 <these> ~all`): the addresses your relay sends from, e.g. `include:_spf.relay.example` or `ip4:203.0.113.7`"),
    s("max_batch", "MAILQUEUE_MAX_BATCH", Some("100"), "Most emails in one batch request"),
    s("message_id_domain", "MAILQUEUE_MESSAGE_ID_DOMAIN", None, "Domain of generated Message-IDs (default: the sender's domain)"),
    s("idempotency_ttl_seconds", "MAILQUEUE_IDEMPOTENCY_TTL_SECONDS", Some("86400"), "How long idempotency keys are kept"),
    s("auth_cache_seconds", "MAILQUEUE_AUTH_CACHE_SECONDS", Some("10"), "How long a verified API key is trusted before it is checked again"),
    s("shutdown_grace_seconds", "MAILQUEUE_SHUTDOWN_GRACE_SECONDS", Some("30"), "On SIGTERM, how long sends in flight may take to finish"),
    s("rescue_interval_seconds", "MAILQUEUE_RESCUE_INTERVAL_SECONDS", Some("15"), "How often expired leases are looked for"),
    s("maintenance_lease_seconds", "MAILQUEUE_MAINTENANCE_LEASE_SECONDS", Some("15"), "How long the process running the fleet's maintenance (rescuer, reconciler) holds it; another takes over this long after it dies"),
    s("redis_prefix", "MAILQUEUE_REDIS_PREFIX", Some("mailqueue"), "Prefix of every Redis key (one hash tag, so Redis Cluster works); several installations may share a Redis with different prefixes"),
    s("reconcile_interval_seconds", "MAILQUEUE_RECONCILE_INTERVAL_SECONDS", Some("300"), "How often the queue is rebuilt from the store"),
    s("webhook_allow_private", "MAILQUEUE_WEBHOOK_ALLOW_PRIVATE", Some("false"), "Whether webhook endpoints may reach private, loopback, link-local and other internal addresses (refused by default, when a webhook is created or changed and again when a delivery connects)"),
    s("webhook_timeout_seconds", "MAILQUEUE_WEBHOOK_TIMEOUT_SECONDS", Some("15"), "Longest one webhook delivery may take, connecting included; a slower endpoint's attempt fails and is retried"),
    s("webhook_retry_schedule", "MAILQUEUE_WEBHOOK_RETRY_SCHEDULE", Some("5s,5m,30m,2h,5h,10h,10h"), "Delays between the attempts of a webhook delivery (`ms`, `s`, `m`, `h`, `d`); the first attempt is immediate, and after the last delay's attempt the delivery has failed"),
    s("webhook_disable_after_seconds", "MAILQUEUE_WEBHOOK_DISABLE_AFTER_SECONDS", Some("432000"), "A webhook whose every delivery has failed for this long (5 days) is disabled, with `disabled_reason`; its deliveries wait until it is enabled again"),
    s("webhook_concurrency", "MAILQUEUE_WEBHOOK_CONCURRENCY", Some("64"), "Most webhook deliveries in flight at once in this process"),
    s("webhook_endpoint_concurrency", "MAILQUEUE_WEBHOOK_ENDPOINT_CONCURRENCY", Some("16"), "Most requests in flight at once to one webhook from one process (which holds at most four times as many of its deliveries under lease), so a slow endpoint cannot hold every slot"),
    s("webhook_poll_seconds", "MAILQUEUE_WEBHOOK_POLL_SECONDS", Some("1"), "How often an idle worker looks for webhook deliveries (a busy one looks again as soon as one ends)"),
    s("webhook_secret_grace_seconds", "MAILQUEUE_WEBHOOK_SECRET_GRACE_SECONDS", Some("86400"), "After a signing secret is rotated, how long the old one keeps signing alongside the new one"),
    s("retention_days", "MAILQUEUE_RETENTION_DAYS", Some("30"), "Finished emails (sent, failed, cancelled) are deleted this many days after they finished, with their contents, attachments, attempts, events and idempotency keys; `0` keeps them; fractions allowed"),
    s("content_retention_days", "MAILQUEUE_CONTENT_RETENTION_DAYS", None, "Bodies and attachment bytes of finished emails are dropped after this many days, before the rest (the email then has `content_purged_at`); unset or `0`: kept as long as the email"),
    s("retention_interval_seconds", "MAILQUEUE_RETENTION_INTERVAL_SECONDS", Some("300"), "How often the maintenance leader looks for emails past retention (a pass works in batches of 500 and pauses between them, longer while the leader is delivering)"),
    s("backup_dir", "MAILQUEUE_BACKUP_DIR", Some("./backups"), "Local backup destination (the default one)"),
    s("backup_s3_url", "MAILQUEUE_BACKUP_S3_URL", None, "`s3://bucket/prefix` for `-u s3`; credentials and `AWS_ENDPOINT_URL` from the standard `AWS_*` variables"),
    s("backup_gcs_url", "MAILQUEUE_BACKUP_GCS_URL", None, "`gs://bucket/prefix` for `-u gcs`; standard Google credentials, or `STORAGE_EMULATOR_HOST` for an emulator"),
    s("gpg_recipient", "GPG_RECIPIENT", None, "OpenPGP recipients of encrypted backups (`-e`), comma-separated; their public keys must be in gpg's keyring"),
    s("backup_lock_dir", "MAILQUEUE_BACKUP_LOCK_DIR", None, "Where backup locks live (default: the system's temporary directory)"),
    s("backup_postgres_keep", "MAILQUEUE_BACKUP_POSTGRES_KEEP", Some("7,4,12"), "Grandfather-father-son retention of PostgreSQL backups: daily,weekly,monthly"),
    s("backup_redis_keep", "MAILQUEUE_BACKUP_REDIS_KEEP", Some("3,2,3"), "The same for Redis backups"),
    s("backup_quota_bytes", "MAILQUEUE_BACKUP_QUOTA_BYTES", None, "Storage allowed for backups, exported for the quota alert"),
    s("pushgateway_url", "MAILQUEUE_PUSHGATEWAY_URL", None, "Push backup metrics to this Prometheus Pushgateway"),
    s("metrics_textfile", "MAILQUEUE_METRICS_TEXTFILE", None, "Write backup metrics to this node-exporter textfile (`*.prom`)"),
    secret("slack_webhook_url", "SLACK_WEBHOOK_URL", "Slack incoming webhook for `-n` notifications"),
    s("log", "MAILQUEUE_LOG", Some("info,sqlx=warn"), "Log filter, e.g. `info` or `info,mailqueue_delivery=debug`"),
    s("log_format", "MAILQUEUE_LOG_FORMAT", Some("text"), "`text` or `json`"),
];

pub fn find_by_env(env: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.env == env)
}

pub fn find_by_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

#[cfg(test)]
mod tests {
    use super::SETTINGS;

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!("../../../README.md");
        for s in SETTINGS {
            assert!(
                readme.contains(&format!("| `{}` | `{}` |", s.env, s.key)),
                "README lacks {}",
                s.env
            );
        }
    }

    #[test]
    fn keys_and_variables_are_unique() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert!(a.key != b.key && a.env != b.env, "{} / {}", a.key, b.key);
            }
        }
    }
}
