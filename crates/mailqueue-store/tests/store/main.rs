//! The store conformance suite: every test runs against SQLite and against
//! a fresh PostgreSQL database.

#![allow(clippy::unwrap_used)]

mod domains;
mod emails;
mod events;
mod keys;
mod leases;
mod older;
mod retention;
mod support;
mod suppressions;
mod upgrade;
mod webhooks;
mod written;

macro_rules! conformance {
    ($($module:ident :: $name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { crate::$module::$name(mailqueue_testkit::StoreKind::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { crate::$module::$name(mailqueue_testkit::StoreKind::Postgres).await } )*
        }
    };
}

conformance!(
    domains::domains_are_stored_whole_and_named_once,
    domains::a_domain_write_from_an_old_read_is_refused,
    domains::domains_are_found_when_their_check_is_due,
    domains::an_api_key_keeps_its_domain,
    emails::insert_then_get_returns_every_field,
    emails::a_failed_insert_stores_nothing_of_the_call,
    emails::claims_only_due_pending_emails_once,
    emails::claimed_emails_carry_their_attachments,
    emails::a_submitted_message_is_stored_and_claimed_whole,
    events::a_late_report_writes_its_events_and_suppressions,
    events::an_unclassified_report_is_kept_whole,
    emails::outcomes_move_emails_and_are_recorded,
    emails::a_stale_outcome_cannot_overwrite_a_newer_claim,
    emails::expired_leases_are_rescued_or_given_up,
    emails::release_returns_a_holders_emails,
    emails::reschedule_cancel_and_retry_follow_the_state_machine,
    emails::lists_newest_first_with_keyset_pages,
    emails::pending_emails_pages_through_everything_pending,
    emails::queue_stats_count_pending_and_find_the_oldest,
    leases::leases_are_renewed_only_while_held,
    leases::deferred_claims_go_back_without_an_attempt,
    leases::a_sent_outcome_is_kept_after_its_lease_was_lost,
    leases::a_sent_email_carries_no_error,
    leases::outcomes_of_emails_that_do_not_exist_are_ignored,
    leases::a_refused_group_fails_alone,
    events::each_change_writes_its_event,
    events::interrupted_and_deferred_attempts,
    events::refused_recipients_bounce_alone_and_are_suppressed,
    events::every_recipient_suppressed_ends_the_email,
    written::every_change_reports_the_events_it_wrote,
    suppressions::suppressions_are_added_once_listed_and_removed,
    keys::api_keys_are_found_by_hash_until_revoked,
    keys::api_key_permissions_round_trip,
    keys::keys_made_before_permissions_have_full_access,
    keys::idempotency_keys_follow_their_lifecycle,
    webhooks::webhooks_are_created_listed_changed_and_deleted,
    webhooks::deliveries_are_claimed_once_retried_and_fenced,
    webhooks::claims_are_bounded_per_webhook_and_expired_leases_retaken,
    webhooks::account_events_are_delivered_with_their_change_and_retained,
    retention::only_old_finished_emails_are_deleted_with_what_hangs_off_them,
    retention::content_retention_drops_bodies_and_attachment_bytes_only,
    retention::a_purge_during_delivery_loses_nothing,
    retention::old_unclassified_reports_are_deleted,
    retention::stale_statistics_are_refreshed,
    upgrade::rows_of_the_previous_schema_read_as_the_current_store_has_them,
    upgrade::attempts_claimed_before_0012_keep_their_numbers,
);
