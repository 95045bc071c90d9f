//! The controllers' side of webhooks, kept to a few calls from the reconcilers: open a resource's
//! receiver ([`refresh_receiver`]; with `register: true` also straight from the watch cache,
//! [`open_from_watch`]), keep its registration upstream in step
//! ([`keep_registration`]: reteach subscriptions, a Personio webhook), and remove it when the
//! resource is deleted ([`finalize`]) or its `spec.webhook` is removed ([`retire_registration`]).
//! Problems here never fail a sync: polling goes on, and a Warning Event says what to fix.
//!
//! Nothing a resource names decides where notifications go or what is sent upstream: the target
//! is the administrator's `--webhook-public-url`, and every token the operator registers is
//! derived from the operator's own key (`webhook::identity`). A resource's `secretRef` only
//! supplies the tokens of a target registered by hand, and is only ever compared with.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::NamespaceResourceScope;
use kube::core::object::HasSpec;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;

use super::context::Context;
use super::events::publish;
use super::lifecycle::Scheduled;
use crate::api::{
    CertificateSync, CertificateSyncSpec, EmployeeSync, EmployeeSyncSpec, WebhookSpec,
    MIN_WEBHOOK_TOKEN_LENGTH,
};
use crate::credentials::SecretReader;
use crate::personio::PersonioApi;
use crate::reteach::ReteachApi;
use crate::webhook::{
    plan_registrations, DerivedSecrets, KeysFrom, ReceiverKeys, ResourceKey, Source,
};

pub use super::webhook_registration::{
    finalize, keep_registration, retire_registration, REGISTERED_URL_ANNOTATION,
};

/// Finalizer of a CertificateSync whose reteach subscriptions the operator manages: they are
/// deleted before the resource goes.
pub const SUBSCRIPTIONS_FINALIZER: &str = "sync.reteach.io/reteach-subscriptions";

/// Finalizer of an EmployeeSync whose Personio webhook the operator manages.
pub const PERSONIO_WEBHOOK_FINALIZER: &str = "sync.reteach.io/personio-webhook";

/// A kind that can be woken by webhooks (its suspension is [`Scheduled::suspended`]). What a
/// kind says is who notifies it and which EmployeeSync it borrows its connection from; the
/// finalizer and the registration upstream follow from the [`Source`].
#[async_trait]
pub trait Webhooked:
    Scheduled<Scope = NamespaceResourceScope>
    + ResourceExt
    + Clone
    + DeserializeOwned
    + HasSpec<Spec: HasWebhook>
    + std::fmt::Debug
    + Send
    + Sync
{
    /// Who notifies it.
    const SOURCE: Source;
    /// The finalizer guarding its registration upstream.
    const FINALIZER: &'static str = finalizer(Self::SOURCE);
    /// `spec.webhook`.
    fn webhook(&self) -> Option<&WebhookSpec> {
        self.spec().webhook()
    }
    /// The EmployeeSync whose connection and credentials it uses: itself, or the one a
    /// CertificateSync references (as read now).
    async fn employee_sync(&self, ctx: &Context) -> Result<Cow<'_, EmployeeSync>, String>;
    /// Names of the Secrets holding this resource's API credentials (for a CertificateSync, its
    /// EmployeeSync's): a webhook `secretRef` must never name one of them.
    async fn credential_secrets(&self, ctx: &Context) -> Result<Vec<String>, String> {
        let sync = self.employee_sync(ctx).await?;
        Ok(vec![
            sync.spec.personio.credentials_secret_ref.name.clone(),
            sync.spec.reteach.credentials_secret_ref.name.clone(),
        ])
    }
    /// Brings the upstream's registrations under `ours` in line with `target` (`None`: delete
    /// all of ours); returns how many were created.
    async fn register(
        &self,
        ctx: &Context,
        ours: &str,
        target: Option<(&str, &DerivedSecrets)>,
    ) -> Result<usize, String> {
        let (personio, reteach) = clients_of(ctx, &*self.employee_sync(ctx).await?).await?;
        match Self::SOURCE {
            Source::Personio => register_personio_webhook(personio.as_ref(), ours, target).await,
            Source::Reteach => {
                register_reteach_subscriptions(reteach.as_ref(), ours, target.map(|(url, _)| url))
                    .await
            }
        }
    }
}

/// A kind's spec, which may ask for webhooks (with kube's `HasSpec`, what gives a [`Webhooked`]
/// kind its `spec.webhook`).
pub trait HasWebhook {
    /// Its `webhook` block (`spec.webhook` of the resource).
    fn webhook(&self) -> Option<&WebhookSpec>;
}

impl HasWebhook for EmployeeSyncSpec {
    fn webhook(&self) -> Option<&WebhookSpec> {
        self.webhook.as_ref()
    }
}

impl HasWebhook for CertificateSyncSpec {
    fn webhook(&self) -> Option<&WebhookSpec> {
        self.webhook.as_ref()
    }
}

/// The finalizer guarding the registration of a resource `source` notifies.
const fn finalizer(source: Source) -> &'static str {
    match source {
        Source::Personio => PERSONIO_WEBHOOK_FINALIZER,
        Source::Reteach => SUBSCRIPTIONS_FINALIZER,
    }
}

#[async_trait]
impl Webhooked for EmployeeSync {
    const SOURCE: Source = Source::Personio;
    async fn employee_sync(&self, _ctx: &Context) -> Result<Cow<'_, EmployeeSync>, String> {
        Ok(Cow::Borrowed(self))
    }
}

#[async_trait]
impl Webhooked for CertificateSync {
    const SOURCE: Source = Source::Reteach;
    async fn employee_sync(&self, ctx: &Context) -> Result<Cow<'_, EmployeeSync>, String> {
        employee_sync_of(ctx, self).await.map(Cow::Owned)
    }
}

/// Brings the Personio webhooks under `ours` in line with `target`: one webhook for all
/// events, signed with our secret; returns how many were created.
async fn register_personio_webhook(
    personio: &dyn PersonioApi,
    ours: &str,
    target: Option<(&str, &DerivedSecrets)>,
) -> Result<usize, String> {
    let personio = personio.webhooks().map_err(|e| e.to_string())?;
    let existing = personio.list_webhooks().await.map_err(|e| e.to_string())?;
    let plan = plan_registrations(&existing, ours, target.map(|(url, _)| url));
    for id in &plan.delete {
        personio
            .delete_webhook(id)
            .await
            .map_err(|e| e.to_string())?;
    }
    let Some((url, secrets)) = target.filter(|_| !plan.create.is_empty()) else {
        return Ok(0);
    };
    let created = personio
        .create_webhook(url, &secrets.authorization, &plan.create)
        .await
        .map_err(|e| e.to_string())?;
    let id = match created {
        Some(id) => id,
        None => personio
            .list_webhooks()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|w| crate::webhook::normalize_url(&w.url) == crate::webhook::normalize_url(url))
            .map(|w| w.id)
            .ok_or("Personio did not list the webhook just created")?,
    };
    // A webhook whose signing secret is not ours would have its deliveries refused: it goes
    // again, and the next attempt creates it afresh.
    if let Err(error) = personio
        .set_webhook_signing_secret(&id, &secrets.signing_secret)
        .await
    {
        let _ = personio.delete_webhook(&id).await;
        return Err(format!(
            "could not set the webhook's signing secret: {error}"
        ));
    }
    Ok(1)
}

/// Brings the reteach subscriptions under `ours` in line with `target`: one subscription per
/// event; returns how many were created.
async fn register_reteach_subscriptions(
    reteach: &dyn ReteachApi,
    ours: &str,
    target: Option<&str>,
) -> Result<usize, String> {
    let reteach = reteach.subscriptions().map_err(|e| e.to_string())?;
    let existing = reteach
        .list_subscriptions()
        .await
        .map_err(|e| e.to_string())?;
    let plan = plan_registrations(&existing, ours, target);
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

/// The receiver key of `object`.
pub fn key_of<K: Webhooked>(object: &K) -> ResourceKey {
    ResourceKey::new(
        K::SOURCE,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
    )
}

/// The optional webhook part of a reconcile, before the due check: lets a deleted object go once
/// its upstream registration is removed (returns what to do then), refreshes its receiver, and
/// keeps or retires its registration. Nothing here depends on whether a run is due.
pub async fn before_due_check<K: Webhooked>(
    ctx: &Context,
    object: &K,
) -> Result<Option<kube::runtime::controller::Action>, super::ReconcileError> {
    if let Some(action) = finalize(ctx, object).await? {
        return Ok(Some(action));
    }
    refresh_receiver(ctx, object).await;
    keep_registration(ctx, object).await;
    retire_registration(ctx, object).await;
    Ok(None)
}

/// Opens the receiver of `object`: with `register: true` with the secrets derived from the
/// operator's key, else with the keys from its `secretRef` (refused when it names a credentials
/// Secret); refreshes them when older than `tunables.webhook_refresh` or the spec changed, and
/// closes it when `spec.webhook` is gone or the keys are unusable. One Warning Event per refresh
/// says what is wrong (an ignored `url` included).
pub async fn refresh_receiver<K: Webhooked>(ctx: &Context, object: &K) {
    let key = key_of(object);
    let receivers = &ctx.webhooks.receivers;
    let spec = object.webhook().filter(|_| ctx.tunables.webhooks_enabled);
    let Some(spec) = spec else {
        if receivers.close(&key) {
            ctx.webhooks.triggers.clear(&key);
        }
        return;
    };
    let now = ctx.clock.now();
    let generation = object.meta().generation;
    if receivers.is_fresh(&key, generation, now, ctx.tunables.webhook_refresh) {
        return;
    }
    warn_if_url_ignored(ctx, object, spec).await;
    let loaded = if spec.register {
        derived_keys(ctx, &key)
    } else {
        manual_keys(ctx, object, spec).await
    };
    match loaded {
        Ok(keys) => receivers.open(key, keys, generation, now, KeysFrom::Reconcile),
        Err(message) => {
            receivers.fail(key.clone(), generation, now);
            tracing::warn!(
                namespace = key.namespace,
                resource = key.name,
                "webhook receiver closed: {message}"
            );
            let note = format!("webhook receiver closed (polling goes on): {message}");
            publish(ctx, object, EventType::Warning, "WebhookUnavailable", &note).await;
        }
    }
}

/// Opens the receiver of a `register: true` resource as soon as the watch sees it, before any
/// reconcile (which the start-up spread may hold back for long): its keys need no I/O. Leaves
/// a receiver already opened for this generation alone; the next reconcile refreshes it and
/// reports problems.
pub fn open_from_watch<K: Webhooked>(ctx: &Context, object: &K) {
    let wanted = object
        .webhook()
        .filter(|spec| spec.register && ctx.tunables.webhooks_enabled);
    if wanted.is_none() || object.meta().deletion_timestamp.is_some() {
        return;
    }
    let key = key_of(object);
    if let Ok(keys) = derived_keys(ctx, &key) {
        let generation = object.meta().generation;
        let now = ctx.clock.now();
        let receivers = &ctx.webhooks.receivers;
        receivers.open(key, keys, generation, now, KeysFrom::Watch);
    }
}

/// The keys derived from the operator's key for `key`.
fn derived_keys(ctx: &Context, key: &ResourceKey) -> Result<ReceiverKeys, String> {
    ctx.tunables
        .webhook_keys
        .as_ref()
        .map(|ring| ring.receiver_keys(key))
        .ok_or_else(|| {
            "the operator has no webhook key; start it with --webhook-key-secret (the chart does)"
                .to_string()
        })
}

/// The keys of a target registered by hand, from the resource's `secretRef`.
async fn manual_keys<K: Webhooked>(
    ctx: &Context,
    object: &K,
    spec: &WebhookSpec,
) -> Result<ReceiverKeys, String> {
    let Some(reference) = spec.secret_ref.as_ref() else {
        return Err("spec.webhook.secretRef is required with register: false (your own tokens for a target you registered by hand); or set register: true and let the operator generate them".to_string());
    };
    let credentials = object.credential_secrets(ctx).await?;
    if credentials.contains(&reference.name) {
        return Err(credentials_as_tokens(&key_of(object), &reference.name));
    }
    let reader = SecretReader::new(ctx.client.clone(), &key_of(object).namespace);
    let keys = reader
        .webhook(reference, K::SOURCE)
        .await
        .map_err(|error| error.to_string())?;
    check_token(&keys.current.token)?;
    Ok(keys)
}

/// What to fix when a webhook `secretRef` names a Secret with API credentials.
fn credentials_as_tokens(key: &ResourceKey, secret: &str) -> String {
    format!(
        "spec.webhook.secretRef names Secret {}/{secret}, which holds API credentials of this \
         resource{}: its values must never serve as webhook tokens. Set register: true and let \
         the operator generate the tokens, or put your own in a Secret of their own (e.g. \
         `kubectl create secret generic {}-webhook -n {} --from-literal=token=$(openssl rand \
         -hex 32)`, labelled sync.reteach.io/credentials=true) and name that one",
        key.namespace,
        match key.source {
            Source::Personio => "",
            Source::Reteach => " (through its EmployeeSync)",
        },
        key.name,
        key.namespace,
    )
}

/// A Warning when the resource still sets the deprecated `spec.webhook.url` to somewhere else
/// than the operator's public URL (called once per refresh).
async fn warn_if_url_ignored<K: Webhooked>(ctx: &Context, object: &K, spec: &WebhookSpec) {
    let Some(url) = spec.url.as_deref() else {
        return;
    };
    let public = ctx.tunables.webhook_public_url.as_ref();
    if public.is_some_and(|public| public.same_as(url)) {
        return;
    }
    let goes = match public {
        Some(public) => format!(
            "notifications go to the operator's public URL {} (webhook.publicUrl)",
            public.as_str()
        ),
        None => "the operator has no public webhook URL (--webhook-public-url, Helm webhook.publicUrl), so nothing is registered".to_string(),
    };
    let note =
        format!("spec.webhook.url is deprecated and ignored: {goes}; remove url from the resource");
    publish(ctx, object, EventType::Warning, "WebhookUrlIgnored", &note).await;
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

/// The EmployeeSync a CertificateSync borrows its connection and credentials from.
async fn employee_sync_of(ctx: &Context, sync: &CertificateSync) -> Result<EmployeeSync, String> {
    let namespace = sync.namespace().unwrap_or_default();
    let api: Api<EmployeeSync> = Api::namespaced(ctx.client.clone(), &namespace);
    let reference = &sync.spec.employee_sync_ref.name;
    api.get_opt(reference)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("EmployeeSync {namespace}/{reference} not found"))
}

/// Both clients of `sync`, built by `upstream_clients`, which checks `sync` against the
/// allowlist before any of its Secrets is read.
async fn clients_of(
    ctx: &Context,
    sync: &EmployeeSync,
) -> Result<(Arc<dyn PersonioApi>, Arc<dyn ReteachApi>), String> {
    let namespace = sync.namespace().unwrap_or_default();
    super::upstreams::upstream_clients(ctx, &namespace, sync)
        .await
        .map_err(|failure| failure.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_a_credentials_secret_says_what_to_do_instead() {
        let key = ResourceKey::new(Source::Reteach, "academy", "certs");
        let message = credentials_as_tokens(&key, "reteach-api");
        assert!(message.contains("academy/reteach-api"), "{message}");
        assert!(message.contains("through its EmployeeSync"), "{message}");
        assert!(message.contains("register: true"), "{message}");
        assert!(message.contains("openssl rand -hex 32"), "{message}");
    }

    #[test]
    fn short_or_url_unsafe_tokens_are_refused() {
        assert!(check_token(&"a".repeat(32)).is_ok());
        assert!(check_token(&"a".repeat(31)).is_err());
        assert!(check_token(&format!("{}/", "a".repeat(32))).is_err());
        assert!(check_token(&format!("{}?x", "a".repeat(32))).is_err());
    }
}
