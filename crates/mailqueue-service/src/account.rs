//! The account's configuration, as methods of the service: API keys,
//! webhooks and the suppression list. Front ends (the HTTP API) only read
//! the store; every change they ask for goes through here, at the
//! service's clock.

use crate::{api_keys, suppressions, webhooks, EmailService, ServiceError};
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission, ApiToken};
use mailqueue_core::store::{ApiKeyRecord, ApiKeySelector};
use mailqueue_core::suppression::{Suppression, SuppressionRef};
use mailqueue_core::webhooks::{Endpoint, Webhook, WebhookChange, WebhookEventType};
use mailqueue_core::{DomainId, EmailAddress, EventId, WebhookId};

impl EmailService {
    /// A new key with a fresh token, shown this once.
    pub async fn create_api_key(
        &self,
        name: &ApiKeyName,
        permission: ApiKeyPermission,
        domain_id: Option<DomainId>,
    ) -> Result<(ApiKeyRecord, ApiToken), ServiceError> {
        if let Some(id) = domain_id {
            self.domains()?.get(id).await?;
        }
        api_keys::create_api_key(self.store.as_ref(), name, permission, domain_id, self.now()).await
    }

    /// Revokes the active keys `key` selects; how many were revoked.
    pub async fn revoke_api_key(&self, key: &ApiKeySelector) -> Result<u64, ServiceError> {
        api_keys::revoke_api_key(self.store.as_ref(), key, self.now()).await
    }

    /// A new, enabled webhook with a fresh signing secret.
    pub async fn create_webhook(
        &self,
        endpoint: Endpoint,
        events: Vec<WebhookEventType>,
    ) -> Result<Webhook, ServiceError> {
        webhooks::create_webhook(self.store.as_ref(), endpoint, events, self.now()).await
    }

    /// The webhook as changed; `None` when there is no such webhook.
    pub async fn update_webhook(
        &self,
        id: WebhookId,
        change: &WebhookChange,
    ) -> Result<Option<Webhook>, ServiceError> {
        Ok(self.store.update_webhook(id, change).await?)
    }

    /// A new signing secret; the old ones keep signing for `grace`.
    pub async fn rotate_webhook_secret(
        &self,
        id: WebhookId,
        grace: chrono::Duration,
    ) -> Result<Option<Webhook>, ServiceError> {
        webhooks::rotate_webhook_secret(self.store.as_ref(), id, self.now(), grace).await
    }

    /// Deletes the webhook and its deliveries; whether it existed.
    pub async fn delete_webhook(&self, id: WebhookId) -> Result<bool, ServiceError> {
        Ok(self.store.delete_webhook(id).await?)
    }

    /// Sends the event to the webhook again, from now, with the whole
    /// schedule ahead of it; whether the delivery exists.
    pub async fn replay_webhook_delivery(
        &self,
        id: WebhookId,
        event: EventId,
    ) -> Result<bool, ServiceError> {
        Ok(self
            .store
            .replay_webhook_delivery(id, event, self.now())
            .await?)
    }

    /// Lists `addresses` by hand; the entry of each distinct address.
    pub async fn add_suppressions(
        &self,
        addresses: &[EmailAddress],
        reason: Option<String>,
    ) -> Result<Vec<Suppression>, ServiceError> {
        suppressions::add_manual_suppressions(self.store.as_ref(), addresses, reason, self.now())
            .await
    }

    /// Removes the named entries; for each, the entry removed, if any.
    pub async fn remove_suppressions(
        &self,
        entries: &[SuppressionRef],
    ) -> Result<Vec<Option<Suppression>>, ServiceError> {
        Ok(self.store.remove_suppressions(entries).await?)
    }
}
