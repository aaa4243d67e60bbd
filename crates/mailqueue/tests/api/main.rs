//! Integration tests: the real application on a real store, spoken to over
//! HTTP, delivering to a real SMTP server. All in one test binary.

#![allow(clippy::unwrap_used)]

mod helpers;
mod processes;

mod alert_rules;
mod api_keys;
mod backup_postgres;
mod backup_redis;
mod backup_runs;
mod backup_sqlite;
mod bad_input;
mod binary;
mod binary_faults;
mod bounces;
mod cli_help;
mod delivery;
mod delivery_relay_faults;
mod delivery_wire;
mod deploy_manifests;
mod deployment;
mod domains;
mod domains_backup;
mod dr_drill;
mod emails_batch;
mod emails_change;
mod emails_create;
mod emails_read;
mod embedded_store;
mod event_counts;
mod events;
mod faults_delivery;
mod faults_store;
mod fleet;
mod fleet_rates;
mod http_limits;
mod idempotency;
mod operations;
mod pitr;
mod pitr_faults;
mod resend_sdk;
mod retention;
mod startup_checks;
mod submission;
mod suppressions;
mod webhooks_api;
mod webhooks_delivery;
mod write_readiness;
