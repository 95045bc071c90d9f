//! The controllers' side of webhooks, kept to three calls from the reconcilers: load a resource's
//! receiver keys from its Secret ([`refresh_receiver`]), keep its registration upstream in step
//! ([`keep_registration`]: reteach subscriptions, a Personio webhook), and remove it when the
//! resource is deleted ([`finalize`]) or its `spec.webhook` is removed ([`retire_registration`]). Problems here
//! never fail a sync: polling goes on, and a Warning Event says what to fix.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::context::Context;
use super::credentials::SecretReader;
use super::events::publish;
use super::ReconcileError;
use crate::api::{CertificateSync, EmployeeSync, WebhookSpec, MIN_WEBHOOK_TOKEN_LENGTH};
use crate::reteach::ReteachApi;
use crate::webhook::{
    plan_personio_webhooks, plan_subscriptions, ReceiverKeys, ResourceKey, Source,
};

/// Finalizer of a CertificateSync whose reteach subscriptions the operator manages: they are
/// deleted before the resource goes.
pub const SUBSCRIPTIONS_FINALIZER: &str = "sync.reteach.io/reteach-subscriptions";

/// Finalizer of an EmployeeSync whose Personio webhook the operator manages.
pub const PERSONIO_WEBHOOK_FINALIZER: &str = "sync.reteach.io/personio-webhook";

/// The receiver base URL (`spec.webhook.url`) the operator registered upstream, written together
/// with the finalizer: a registration is found by its URL, so when `spec.webhook` is removed or
/// its `url` changes, this is how the operator still finds (and deletes) the old one.
pub const REGISTERED_URL_ANNOTATION: &str = "sync.reteach.io/webhook-registered-url";

/// A kind that can be woken by webhooks.
#[async_trait]
pub trait Webhooked:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + ResourceExt
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
{
    /// Who notifies it.
    const SOURCE: Source;
    /// The finalizer guarding its registration upstream.
    const FINALIZER: &'static str;
    /// `spec.webhook`.
    fn webhook(&self) -> Option<&WebhookSpec>;
    /// Brings the upstream's registrations under `ours` in line with `target` (`None`: delete
    /// all of ours); returns how many were created.
    async fn register(
        &self,
        ctx: &Context,
        ours: &str,
        target: Option<(&str, &ReceiverKeys)>,
    ) -> Result<usize, String>;
}

#[async_trait]
impl Webhooked for EmployeeSync {
    const SOURCE: Source = Source::Personio;
    const FINALIZER: &'static str = PERSONIO_WEBHOOK_FINALIZER;
    fn webhook(&self) -> Option<&WebhookSpec> {
        self.spec.webhook.as_ref()
    }
    async fn register(
        &self,
        ctx: &Context,
        ours: &str,
        target: Option<(&str, &ReceiverKeys)>,
    ) -> Result<usize, String> {
        let namespace = self.namespace().unwrap_or_default();
        let (personio, _) = super::employee::upstream_clients(ctx, &namespace, self)
            .await
            .map_err(|failure| failure.message().to_string())?;
        let existing = personio.list_webhooks().await.map_err(|e| e.to_string())?;
        let plan = plan_personio_webhooks(&existing, ours, target.map(|(url, _)| url));
        for id in &plan.delete {
            personio
                .delete_webhook(id)
                .await
                .map_err(|e| e.to_string())?;
        }
        let Some((url, keys)) = target.filter(|_| !plan.create.is_empty()) else {
            return Ok(0);
        };
        let token = keys.authorization.as_deref().unwrap_or_default();
        personio
            .create_webhook(url, token, &plan.create)
            .await
            .map_err(|e| e.to_string())?;
        Ok(1)
    }
}

#[async_trait]
impl Webhooked for CertificateSync {
    const SOURCE: Source = Source::Reteach;
    const FINALIZER: &'static str = SUBSCRIPTIONS_FINALIZER;
    fn webhook(&self) -> Option<&WebhookSpec> {
        self.spec.webhook.as_ref()
    }
    async fn register(
        &self,
        ctx: &Context,
        ours: &str,
        target: Option<(&str, &ReceiverKeys)>,
    ) -> Result<usize, String> {
        let reteach = reteach_client(ctx, self).await?;
        let existing = reteach
            .list_subscriptions()
            .await
            .map_err(|e| e.to_string())?;
        let target = target.map(|(url, _)| url);
        let plan = plan_subscriptions(&existing, ours, target);
        for id in &plan.delete {
            reteach
                .delete_subscription(id)
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(target) = target {
            for event in &plan.create {
                reteach
                    .create_subscription(target, event)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(plan.create.len())
    }
}

/// The receiver key of `object`.
pub fn key_of<K: Webhooked>(object: &K) -> ResourceKey {
    ResourceKey::new(
        K::SOURCE,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
    )
}

/// Opens the receiver of `object` with the keys from its Secret, refreshes them when they are
/// older than `tunables.webhook_refresh` or the spec changed, and closes it when
/// `spec.webhook` is gone or the Secret is unusable. Returns the keys when they were (re)loaded
/// now, `None` otherwise.
pub async fn refresh_receiver<K: Webhooked>(ctx: &Context, object: &K) -> Option<ReceiverKeys> {
    let key = key_of(object);
    let receivers = &ctx.webhooks.receivers;
    let spec = object.webhook().filter(|_| ctx.tunables.webhooks_enabled);
    let Some(spec) = spec else {
        if receivers.close(&key) {
            ctx.webhooks.triggers.clear(&key);
        }
        return None;
    };
    let now = ctx.clock.now();
    let generation = object.meta().generation;
    if receivers.is_fresh(&key, generation, now, ctx.tunables.webhook_refresh) {
        return None;
    }
    let reader = SecretReader::new(ctx.client.clone(), &key.namespace);
    let loaded = reader
        .webhook(&spec.secret_ref, K::SOURCE)
        .await
        .map_err(|error| error.to_string())
        .and_then(|keys| check_token(&keys.token).map(|()| keys));
    match loaded {
        Ok(keys) => {
            receivers.open(key, keys.clone(), generation, now);
            Some(keys)
        }
        Err(message) => {
            receivers.fail(key.clone(), generation, now);
            tracing::warn!(
                namespace = key.namespace,
                resource = key.name,
                "webhook receiver closed: {message}"
            );
            let note = format!("webhook receiver closed (polling goes on): {message}");
            publish(ctx, object, EventType::Warning, "WebhookUnavailable", &note).await;
            None
        }
    }
}

/// A path token must be long and URL-safe: it is the only secret of a reteach notification.
fn check_token(token: &str) -> Result<(), String> {
    let url_safe = token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
    if token.chars().count() < MIN_WEBHOOK_TOKEN_LENGTH || !url_safe {
        return Err(format!(
            "the webhook token must be at least {MIN_WEBHOOK_TOKEN_LENGTH} characters of A-Z a-z 0-9 - _ . ~ (e.g. `openssl rand -hex 32`)"
        ));
    }
    Ok(())
}

/// Keeps the upstream registration of `object` as its spec wants it: with `register: true`, its
/// receiver registered (reteach: the target subscribed to each event once; Personio: one enabled
/// webhook with the target and the Secret's `authorization` as its token), a vanished one
/// re-created, one with an old token deleted; without, none of ours, and the finalizer gone.
/// Called when the receiver keys were loaded (at most every `webhook_refresh`).
pub async fn keep_registration<K: Webhooked>(ctx: &Context, object: &K, keys: &ReceiverKeys) {
    let Some(spec) = object.webhook() else {
        return;
    };
    let outcome = match (spec.register, spec.url.as_deref()) {
        (false, url) => unregister(ctx, object, url).await.map(|()| 0),
        (true, None) => Err("spec.webhook.register needs spec.webhook.url".to_string()),
        (true, Some(url)) => register_at(ctx, object, url, keys).await,
    };
    report_registration(ctx, object, outcome).await;
}

/// Deletes the registration of a resource whose `spec.webhook` was removed while the operator
/// had registered it (the finalizer is still there), and drops the finalizer. Called on every
/// reconcile until it succeeds.
pub async fn retire_registration<K: Webhooked>(ctx: &Context, object: &K) {
    if object.webhook().is_some() || !has_finalizer(object) {
        return;
    }
    let outcome = unregister(ctx, object, None).await.map(|()| 0);
    report_registration(ctx, object, outcome).await;
}

/// Registers the receiver under `url`, after deleting a registration under an earlier URL.
async fn register_at<K: Webhooked>(
    ctx: &Context,
    object: &K,
    url: &str,
    keys: &ReceiverKeys,
) -> Result<usize, String> {
    let key = key_of(object);
    if let Some(old) = registered_url(object).filter(|old| *old != url) {
        object.register(ctx, &key.target(old, ""), None).await?;
    }
    set_registration(ctx, object, Some(url))
        .await
        .map_err(|e| e.to_string())?;
    let target = key.target(url, &keys.token);
    object
        .register(ctx, &key.target(url, ""), Some((&target, keys)))
        .await
}

/// Deletes the registration (found under the recorded URL, else `fallback`) and drops the
/// finalizer and the recorded URL.
async fn unregister<K: Webhooked>(
    ctx: &Context,
    object: &K,
    fallback: Option<&str>,
) -> Result<(), String> {
    if !has_finalizer(object) {
        return Ok(());
    }
    let key = key_of(object);
    if let Some(url) = registered_url(object).or(fallback) {
        object.register(ctx, &key.target(url, ""), None).await?;
    }
    set_registration(ctx, object, None)
        .await
        .map_err(|e| e.to_string())
}

/// Logs and publishes the outcome of a registration step.
async fn report_registration<K: Webhooked>(
    ctx: &Context,
    object: &K,
    outcome: Result<usize, String>,
) {
    let key = key_of(object);
    let upstream = key.source.as_str();
    match outcome {
        Ok(0) => {}
        Ok(created) => {
            let note = format!("registered {created} {upstream} webhook subscription(s)");
            tracing::info!(namespace = key.namespace, resource = key.name, "{note}");
            publish(ctx, object, EventType::Normal, "WebhookRegistered", &note).await;
        }
        Err(message) => {
            tracing::warn!(
                namespace = key.namespace,
                resource = key.name,
                "{upstream} webhook registration not in step: {message}"
            );
            let note =
                format!("{upstream} webhook registration not in step (polling goes on): {message}");
            publish(
                ctx,
                object,
                EventType::Warning,
                "WebhookRegistrationFailed",
                &note,
            )
            .await;
        }
    }
}

/// Deletes the upstream registration of an object that is being deleted, then lets it go.
/// `None` when `object` is not being deleted. When the upstream cannot be reached (its
/// EmployeeSync or Secret already deleted), a Warning Event says so and the resource goes anyway:
/// a stale registration only causes refused notifications, while a stuck deletion blocks GitOps.
pub async fn finalize<K: Webhooked>(
    ctx: &Context,
    object: &K,
) -> Result<Option<Action>, ReconcileError> {
    if object.meta().deletion_timestamp.is_none() {
        return Ok(None);
    }
    let key = key_of(object);
    ctx.webhooks.receivers.close(&key);
    ctx.webhooks.triggers.clear(&key);
    if !has_finalizer(object) {
        return Ok(Some(Action::await_change()));
    }
    let url = registered_url(object).or_else(|| object.webhook().and_then(|w| w.url.as_deref()));
    if let Some(url) = url {
        if let Err(message) = object.register(ctx, &key.target(url, ""), None).await {
            let upstream = key.source.as_str();
            tracing::warn!(
                namespace = key.namespace,
                resource = key.name,
                "{upstream} webhook registration left behind: {message}"
            );
            let note = format!(
                "could not delete the {upstream} webhook registration (delete it there by hand): {message}"
            );
            publish(
                ctx,
                object,
                EventType::Warning,
                "WebhookRegistrationLeftBehind",
                &note,
            )
            .await;
        }
    }
    set_registration(ctx, object, None).await?;
    Ok(Some(Action::await_change()))
}

fn has_finalizer<K: Webhooked>(object: &K) -> bool {
    object.finalizers().iter().any(|f| f == K::FINALIZER)
}

fn registered_url<K: Webhooked>(object: &K) -> Option<&str> {
    object
        .annotations()
        .get(REGISTERED_URL_ANNOTATION)
        .map(String::as_str)
}

/// Records a registration under `url` (our finalizer plus the URL annotation) or its end
/// (`None`: both removed), in one metadata patch; the resourceVersion makes it fail rather than
/// drop a finalizer someone else added meanwhile.
async fn set_registration<K: Webhooked>(
    ctx: &Context,
    object: &K,
    url: Option<&str>,
) -> Result<(), kube::Error> {
    if has_finalizer(object) == url.is_some() && registered_url(object) == url {
        return Ok(());
    }
    let mut finalizers: Vec<String> = object
        .finalizers()
        .iter()
        .filter(|f| *f != K::FINALIZER)
        .cloned()
        .collect();
    if url.is_some() {
        finalizers.push(K::FINALIZER.to_string());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "annotations": { REGISTERED_URL_ANNOTATION: url },
            "resourceVersion": object.resource_version(),
        }
    });
    api.patch(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// The reteach client of the EmployeeSync `sync` borrows its credentials from.
async fn reteach_client(
    ctx: &Context,
    sync: &CertificateSync,
) -> Result<Arc<dyn ReteachApi>, String> {
    let namespace = sync.namespace().unwrap_or_default();
    let api: Api<EmployeeSync> = Api::namespaced(ctx.client.clone(), &namespace);
    let reference = &sync.spec.employee_sync_ref.name;
    let employee_sync = api
        .get_opt(reference)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("EmployeeSync {namespace}/{reference} not found"))?;
    let (_, reteach) = super::employee::upstream_clients(ctx, &namespace, &employee_sync)
        .await
        .map_err(|failure| failure.message().to_string())?;
    Ok(reteach)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_url_unsafe_tokens_are_refused() {
        assert!(check_token(&"a".repeat(32)).is_ok());
        assert!(check_token(&"a".repeat(31)).is_err());
        assert!(check_token(&format!("{}/", "a".repeat(32))).is_err());
        assert!(check_token(&format!("{}?x", "a".repeat(32))).is_err());
    }
}
