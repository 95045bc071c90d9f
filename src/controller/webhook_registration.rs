//! Keeping a resource's upstream registration in step (reteach subscriptions, one Personio
//! webhook): registered only under the administrator's public URL with tokens derived from the
//! operator's key, compared by meaning, at most one per resource, none while suspended, checked
//! once per refresh period and after a failure with per-resource exponential backoff, every
//! error scrubbed of the secrets before it reaches a log line or an Event.

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::Api;
use serde_json::json;

use super::context::Context;
use super::events::publish;
use super::webhook::{key_of, Webhooked};
use super::ReconcileError;
use crate::webhook::{scrub, ReceiverKeys, ResourceKey};

/// The receiver base URL the operator registered upstream, written together with the finalizer:
/// a registration is found by its URL, so when `spec.webhook` is removed or the operator's public
/// URL changes, this is how the operator still finds (and deletes) the old one.
pub const REGISTERED_URL_ANNOTATION: &str = "sync.reteach.io/webhook-registered-url";

/// Keeps the upstream registration of `object` as its spec wants it, when its check is due:
/// with `register: true`, its receiver registered under the operator's public URL (reteach: the
/// target subscribed to each event once; Personio: one enabled webhook with the derived token and
/// signing secret), a vanished one re-created, one under another URL or token deleted; without,
/// none of ours, and the finalizer gone. Nothing while the resource is suspended.
pub async fn keep_registration<K: Webhooked>(ctx: &Context, object: &K) {
    let Some(spec) = object.webhook() else {
        return;
    };
    // `spec.suspend`: nothing is registered meanwhile.
    if !ctx.tunables.webhooks_enabled || object.suspended() {
        return;
    }
    let key = key_of(object);
    let (now, generation) = (ctx.clock.now(), object.meta().generation);
    if !ctx.webhooks.registrations.due(&key, generation, now) {
        return;
    }
    let outcome = if spec.register {
        register_here(ctx, object, &key).await
    } else {
        unregister(ctx, object, None).await.map(|()| 0)
    };
    schedule(ctx, &key, generation, outcome.is_ok());
    report_registration(ctx, object, outcome).await;
}

/// Deletes the registration of a resource whose `spec.webhook` was removed while the operator
/// had registered it (the finalizer is still there), and drops the finalizer; retried with
/// backoff until it succeeds.
pub async fn retire_registration<K: Webhooked>(ctx: &Context, object: &K) {
    if object.webhook().is_some() || !has_finalizer(object) {
        return;
    }
    let key = key_of(object);
    let (now, generation) = (ctx.clock.now(), object.meta().generation);
    if !ctx.webhooks.registrations.due(&key, generation, now) {
        return;
    }
    let outcome = unregister(ctx, object, None).await.map(|()| 0);
    schedule(ctx, &key, generation, outcome.is_ok());
    report_registration(ctx, object, outcome).await;
}

fn schedule(ctx: &Context, key: &ResourceKey, generation: Option<i64>, succeeded: bool) {
    let (registrations, now) = (&ctx.webhooks.registrations, ctx.clock.now());
    if succeeded {
        registrations.succeeded(key.clone(), generation, now, ctx.tunables.webhook_refresh);
    } else {
        registrations.failed(key.clone(), generation, now);
    }
}

/// Registers the receiver under the operator's public URL, after deleting a registration under
/// another URL (an earlier public URL, or a resource's own `url` from before it was ignored).
async fn register_here<K: Webhooked>(
    ctx: &Context,
    object: &K,
    key: &ResourceKey,
) -> Result<usize, String> {
    let public = ctx.tunables.webhook_public_url.as_ref();
    if let Some(old) = registered_url(object).filter(|old| !public.is_some_and(|p| p.same_as(old)))
    {
        object.register(ctx, &key.target(old, ""), None).await?;
        if public.is_none() {
            set_registration(ctx, object, None)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let Some(public) = public else {
        return Err("register: true needs the operator's public webhook URL: start the operator with --webhook-public-url (Helm webhook.publicUrl)".to_string());
    };
    let Some(ring) = ctx.tunables.webhook_keys.as_ref() else {
        return Err(
            "the operator has no webhook key; start it with --webhook-key-secret (the chart does)"
                .to_string(),
        );
    };
    let secrets = ring.secrets(key);
    let url = public.as_str();
    set_registration(ctx, object, Some(url))
        .await
        .map_err(|e| e.to_string())?;
    let target = key.target(url, &secrets.token);
    object
        .register(ctx, &key.target(url, ""), Some((&target, &secrets)))
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

/// `message` without any secret of `key`: the derived ones (current and previous key) and those
/// its receiver holds.
fn scrubbed(ctx: &Context, key: &ResourceKey, message: &str) -> String {
    let mut keys: Vec<_> = ctx.webhooks.receivers.keys(key).into_iter().collect();
    if let Some(ring) = &ctx.tunables.webhook_keys {
        keys.push(ring.receiver_keys(key));
    }
    let secrets: Vec<&str> = keys.iter().flat_map(ReceiverKeys::secrets).collect();
    scrub(message, &secrets)
}

/// What can go wrong with a registration upstream.
#[derive(Clone, Copy)]
enum Problem {
    /// Registering or updating failed: polling goes on, retried with backoff.
    NotInStep,
    /// Deleting it failed while its resource went: left for a human.
    LeftBehind,
}

impl Problem {
    /// The Event reason.
    fn reason(self) -> &'static str {
        match self {
            Problem::NotInStep => "WebhookRegistrationFailed",
            Problem::LeftBehind => "WebhookRegistrationLeftBehind",
        }
    }

    /// The log line and the Event note, before the upstream's message.
    fn texts(self, upstream: &str) -> (String, String) {
        match self {
            Problem::NotInStep => (
                format!("{upstream} webhook registration not in step"),
                format!("{upstream} webhook registration not in step (polling goes on; tried again with backoff)"),
            ),
            Problem::LeftBehind => (
                format!("{upstream} webhook registration left behind"),
                format!("could not delete the {upstream} webhook registration (delete it there by hand)"),
            ),
        }
    }
}

/// Logs `problem` with the upstream's `message` and publishes it as a Warning Event, both
/// scrubbed of every secret of the object's receiver.
async fn warn_scrubbed<K: Webhooked>(ctx: &Context, object: &K, problem: Problem, message: &str) {
    let key = key_of(object);
    let message = scrubbed(ctx, &key, message);
    let (log, note) = problem.texts(key.source.as_str());
    tracing::warn!(
        namespace = key.namespace,
        resource = key.name,
        "{log}: {message}"
    );
    let note = format!("{note}: {message}");
    publish(ctx, object, EventType::Warning, problem.reason(), &note).await;
}

/// Logs and publishes the outcome of a registration step (scrubbed).
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
            warn_scrubbed(ctx, object, Problem::NotInStep, &message).await;
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
    ctx.webhooks.registrations.forget(&key);
    if !has_finalizer(object) {
        return Ok(Some(Action::await_change()));
    }
    let public = ctx.tunables.webhook_public_url.as_ref().map(|p| p.as_str());
    if let Some(url) = registered_url(object).or(public) {
        if let Err(message) = object.register(ctx, &key.target(url, ""), None).await {
            warn_scrubbed(ctx, object, Problem::LeftBehind, &message).await;
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
