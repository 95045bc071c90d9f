//! The controllers' side of webhooks, kept to three calls from the reconcilers: load a resource's
//! receiver keys from its Secret ([`refresh_receiver`]), keep its reteach subscriptions registered
//! ([`keep_subscriptions`]), and remove them when it is deleted ([`finalize`]). Problems here
//! never fail a sync: polling goes on, and a Warning Event says what to fix.

use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::context::Context;
use super::credentials::SecretReader;
use super::events::publish;
use super::ReconcileError;
use crate::api::{CertificateSync, EmployeeSync, WebhookSpec, MIN_WEBHOOK_TOKEN_LENGTH};
use crate::reteach::ReteachApi;
use crate::webhook::{plan_subscriptions, ReceiverKeys, ResourceKey, Source};

/// Finalizer of a CertificateSync whose reteach subscriptions the operator manages: they are
/// deleted before the resource goes.
pub const SUBSCRIPTIONS_FINALIZER: &str = "sync.reteach.io/reteach-subscriptions";

/// A kind that can be woken by webhooks.
pub trait Webhooked: Resource<DynamicType = ()> + ResourceExt {
    /// Who notifies it.
    const SOURCE: Source;
    /// `spec.webhook`.
    fn webhook(&self) -> Option<&WebhookSpec>;
}

impl Webhooked for EmployeeSync {
    const SOURCE: Source = Source::Personio;
    fn webhook(&self) -> Option<&WebhookSpec> {
        self.spec.webhook.as_ref()
    }
}

impl Webhooked for CertificateSync {
    const SOURCE: Source = Source::Reteach;
    fn webhook(&self) -> Option<&WebhookSpec> {
        self.spec.webhook.as_ref()
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

/// Keeps the reteach subscriptions of `sync` as its spec wants them: with `register: true`, its
/// target subscribed to each event once (a vanished one is re-created, one with an old token
/// deleted); without, none of ours, and the finalizer gone. Called when the receiver keys were
/// loaded (at most every few minutes).
pub async fn keep_subscriptions(ctx: &Context, sync: &CertificateSync, keys: &ReceiverKeys) {
    let Some(spec) = sync.spec.webhook.as_ref() else {
        return;
    };
    let key = key_of(sync);
    let outcome = match (spec.register, spec.url.as_deref()) {
        (false, url) => {
            if !has_finalizer(sync) {
                return;
            }
            let removed = match url {
                Some(url) => apply_plan(ctx, sync, &key.target(url, ""), None).await,
                None => Ok(0),
            };
            match removed {
                Ok(_) => set_finalizer(ctx, sync, false)
                    .await
                    .map(|()| 0)
                    .map_err(|e| e.to_string()),
                Err(message) => Err(message),
            }
        }
        (true, None) => Err("spec.webhook.register needs spec.webhook.url".to_string()),
        (true, Some(url)) => {
            let target = key.target(url, &keys.token);
            match set_finalizer(ctx, sync, true).await {
                Err(error) => Err(error.to_string()),
                Ok(()) => apply_plan(ctx, sync, &key.target(url, ""), Some(&target)).await,
            }
        }
    };
    match outcome {
        Ok(0) => {}
        Ok(created) => {
            let note = format!("registered {created} reteach subscription(s) for the webhook");
            tracing::info!(namespace = key.namespace, resource = key.name, "{note}");
            publish(
                ctx,
                sync,
                EventType::Normal,
                "SubscriptionsRegistered",
                &note,
            )
            .await;
        }
        Err(message) => {
            tracing::warn!(
                namespace = key.namespace,
                resource = key.name,
                "reteach subscriptions not in step: {message}"
            );
            let note = format!("reteach subscriptions not in step (polling goes on): {message}");
            publish(ctx, sync, EventType::Warning, "SubscriptionsFailed", &note).await;
        }
    }
}

/// Deletes the reteach subscriptions of a CertificateSync that is being deleted, then lets it go.
/// `None` when `sync` is not being deleted. When reteach cannot be reached (its EmployeeSync or
/// Secret already deleted), a Warning Event says so and the resource goes anyway: a stale
/// subscription only causes refused notifications, while a stuck deletion blocks GitOps.
pub async fn finalize(
    ctx: &Context,
    sync: &CertificateSync,
) -> Result<Option<Action>, ReconcileError> {
    if sync.meta().deletion_timestamp.is_none() {
        return Ok(None);
    }
    let key = key_of(sync);
    ctx.webhooks.receivers.close(&key);
    ctx.webhooks.triggers.clear(&key);
    if !has_finalizer(sync) {
        return Ok(Some(Action::await_change()));
    }
    let url = sync.spec.webhook.as_ref().and_then(|w| w.url.as_deref());
    if let Some(url) = url {
        if let Err(message) = apply_plan(ctx, sync, &key.target(url, ""), None).await {
            tracing::warn!(
                namespace = key.namespace,
                resource = key.name,
                "reteach subscriptions left behind: {message}"
            );
            let note = format!(
                "could not delete the reteach subscriptions (delete them in reteach by hand): {message}"
            );
            publish(
                ctx,
                sync,
                EventType::Warning,
                "SubscriptionsLeftBehind",
                &note,
            )
            .await;
        }
    }
    set_finalizer(ctx, sync, false).await?;
    Ok(Some(Action::await_change()))
}

fn has_finalizer(sync: &CertificateSync) -> bool {
    sync.finalizers()
        .iter()
        .any(|f| f == SUBSCRIPTIONS_FINALIZER)
}

/// Adds or removes our finalizer; the resourceVersion makes it fail rather than drop a finalizer
/// someone else added meanwhile.
async fn set_finalizer(
    ctx: &Context,
    sync: &CertificateSync,
    present: bool,
) -> Result<(), kube::Error> {
    if has_finalizer(sync) == present {
        return Ok(());
    }
    let mut finalizers: Vec<String> = sync
        .finalizers()
        .iter()
        .filter(|f| *f != SUBSCRIPTIONS_FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(SUBSCRIPTIONS_FINALIZER.to_string());
    }
    let api: Api<CertificateSync> =
        Api::namespaced(ctx.client.clone(), &sync.namespace().unwrap_or_default());
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": sync.resource_version(),
        }
    });
    api.patch(
        &sync.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Lists reteach's subscriptions and applies [`plan_subscriptions`]; returns how many were
/// created.
async fn apply_plan(
    ctx: &Context,
    sync: &CertificateSync,
    ours: &str,
    target: Option<&str>,
) -> Result<usize, String> {
    let reteach = reteach_client(ctx, sync).await?;
    let existing = reteach
        .list_subscriptions()
        .await
        .map_err(|e| e.to_string())?;
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
