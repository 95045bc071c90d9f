//! Reconciler of `EmployeeSync`: due check → Secrets → clients → job → status and events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};

use super::capabilities::probe_when_due;
use super::context::Context;
use super::credentials::SecretReader;
use super::events::publish;
use super::failure::RunFailure;
use super::lifecycle::{chrono_duration, due_run, DueRun, RunContext};
use super::metrics::ResourceLabels;
use super::schedule::DueReason;
use super::status::apply_status;
use super::webhook;
use super::ReconcileError;
use crate::api::{
    CapabilityCheck, EmployeeSync, EmployeeSyncStatus, APPROVE_PLAN_ANNOTATION, MAX_STATUS_FAILURES,
};
use crate::jobs::employee::{
    run_employee_sync, EmployeeJobInput, EmployeeJobOutcome, MassChangeGuard,
};
use crate::personio::PersonioApi;
use crate::preflight::Kind;
use crate::reteach::ReteachApi;
use crate::sync::duration::{parse_full_resync_interval, parse_interval};

/// Kind label of metrics and logs.
pub const KIND: &str = "EmployeeSync";

/// The validated spec values a run needs.
struct Settings {
    interval: Duration,
    full_resync_interval: Duration,
    time_zone: chrono_tz::Tz,
}

fn settings(sync: &EmployeeSync, minimum: Duration) -> Result<Settings, RunFailure> {
    let invalid = |field: &str, error: String| {
        RunFailure::stalled("InvalidSpec", format!("spec.{field}: {error}"))
    };
    let interval = parse_interval(&sync.spec.interval, minimum)
        .map_err(|e| invalid("interval", e.to_string()))?;
    let full_resync_interval = parse_full_resync_interval(&sync.spec.full_resync_interval, minimum)
        .map_err(|e| invalid("fullResyncInterval", e.to_string()))?;
    let time_zone = sync.spec.time_zone.parse::<chrono_tz::Tz>().map_err(|_| {
        invalid(
            "timeZone",
            format!(
                "{:?} is not an IANA time zone; use e.g. Europe/Berlin or UTC",
                sync.spec.time_zone
            ),
        )
    })?;
    Ok(Settings {
        interval,
        full_resync_interval,
        time_zone,
    })
}

/// Both clients of an EmployeeSync, built from its spec and Secrets (also used by CertificateSync).
pub async fn upstream_clients(
    ctx: &Context,
    namespace: &str,
    sync: &EmployeeSync,
) -> Result<(Arc<dyn PersonioApi>, Arc<dyn ReteachApi>), RunFailure> {
    let spec = &sync.spec;
    // Before any Secret is read: a resource pointing elsewhere never gets its Secret's values.
    let policy = &ctx.tunables.upstream;
    policy.check(
        "personio",
        &spec.personio.base_url,
        spec.personio.allow_insecure_http,
    )?;
    policy.check(
        "reteach",
        &spec.reteach.base_url,
        spec.reteach.allow_insecure_http,
    )?;
    let secrets = SecretReader::new(ctx.client.clone(), namespace);
    let personio_credentials = secrets
        .personio(&spec.personio.credentials_secret_ref)
        .await?;
    let personio_ca = secrets
        .ca_bundle(spec.personio.ca_bundle_ref.as_ref(), "personio.caBundleRef")
        .await?;
    let reteach_credentials = secrets
        .reteach(&spec.reteach.credentials_secret_ref)
        .await?;
    let reteach_ca = secrets
        .ca_bundle(spec.reteach.ca_bundle_ref.as_ref(), "reteach.caBundleRef")
        .await?;
    let personio = ctx
        .upstreams
        .personio(&spec.personio, &personio_credentials, personio_ca)?;
    let reteach = ctx
        .upstreams
        .reteach(&spec.reteach, &reteach_credentials, reteach_ca)?;
    Ok((personio, reteach))
}

/// A failure of a run with the clients of `sync`, naming the Secret keys to check when an upstream
/// rejected the credentials (also used by CertificateSync, which borrows them).
pub fn naming_secrets(failure: RunFailure, namespace: &str, sync: &EmployeeSync) -> RunFailure {
    let personio = &sync.spec.personio.credentials_secret_ref;
    let reteach = &sync.spec.reteach.credentials_secret_ref;
    failure.naming_credentials(
        &format!(
            "the keys {} and {} of Secret {namespace}/{}",
            personio.client_id_key, personio.client_secret_key, personio.name
        ),
        &format!(
            "the keys {}, {} and {} of Secret {namespace}/{}",
            reteach.client_id_key, reteach.client_secret_key, reteach.client_code_key, reteach.name
        ),
    )
}

/// Reconciles one EmployeeSync.
pub async fn reconcile(
    sync: Arc<EmployeeSync>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let namespace = sync.namespace().unwrap_or_default();
    let name = sync.name_any();
    let api: Api<EmployeeSync> = Api::namespaced(ctx.client.clone(), &namespace);
    if let Some(action) = webhook::finalize(&ctx, sync.as_ref()).await? {
        return Ok(action);
    }
    if let Some(keys) = webhook::refresh_receiver(&ctx, sync.as_ref()).await {
        webhook::keep_registration(&ctx, sync.as_ref(), &keys).await;
    }
    let notification = ctx.webhooks.notification(webhook::key_of(sync.as_ref()));
    let DueRun {
        object: sync,
        run,
        previous,
        reason,
    } = match due_run(
        sync.as_ref(),
        &api,
        ctx.clock.as_ref(),
        None,
        Some(&notification),
    )
    .await?
    {
        Ok(due) => due,
        Err(action) => return Ok(action),
    };
    let labels = ResourceLabels {
        kind: KIND.into(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let started = Instant::now();
    let mut status = previous.clone();
    let mut capabilities = None;
    let outcome = match settings(&sync, ctx.tunables.minimum_interval) {
        Err(failure) => Err(failure),
        Ok(settings) => {
            if reason != DueReason::Blocked {
                let mut in_progress = previous.clone();
                run.reconciling(&mut in_progress, "syncing employees");
                apply_status(&api, &name, &in_progress, &[]).await?;
            }
            let result = execute(
                &ctx,
                &namespace,
                &sync,
                &previous,
                &settings,
                &run,
                reason,
                &mut capabilities,
            )
            .await;
            Ok((settings, result))
        }
    };
    let (delay, failure) = match outcome {
        Err(failure) => {
            let delay = run.fail(
                &mut status,
                &failure,
                Duration::from_secs(300),
                ctx.tunables.blocked_recheck,
                ctx.clock.now(),
            );
            (delay, Some(failure))
        }
        Ok((settings, Err(failure))) => {
            let delay = run.fail(
                &mut status,
                &failure,
                settings.interval,
                ctx.tunables.blocked_recheck,
                ctx.clock.now(),
            );
            (delay, Some(failure))
        }
        Ok((settings, Ok(mut job))) => {
            job.summary.finished_at = Some(ctx.clock.now());
            let delay =
                record_success(&mut status, &run, &settings, job, &ctx, &labels, &sync).await;
            (delay, None)
        }
    };
    if let Some(failure) = &failure {
        tracing::warn!(
            namespace,
            name,
            reason = failure.reason(),
            "employee sync failed: {}",
            failure.message()
        );
        if status != previous {
            publish(
                &ctx,
                &sync,
                EventType::Warning,
                failure.reason(),
                failure.message(),
            )
            .await;
        }
    }
    ctx.metrics.run_finished(
        &labels,
        started.elapsed(),
        failure.as_ref().map(RunFailure::reason),
    );
    if let Some(capabilities) = capabilities {
        status.capabilities = capabilities;
    }
    if status != previous {
        apply_status(&api, &name, &status, &[]).await?;
    }
    Ok(Action::requeue(delay))
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    ctx: &Context,
    namespace: &str,
    sync: &EmployeeSync,
    previous: &EmployeeSyncStatus,
    settings: &Settings,
    run: &RunContext,
    reason: DueReason,
    capabilities: &mut Option<Vec<CapabilityCheck>>,
) -> Result<EmployeeJobOutcome, RunFailure> {
    let (personio, reteach) = upstream_clients(ctx, namespace, sync).await?;
    *capabilities = probe_when_due(
        ctx,
        sync,
        Kind::EmployeeSync,
        namespace,
        &sync.name_any(),
        &previous.capabilities,
        reason == DueReason::Requested,
    )
    .await;
    let cursor = previous
        .cursor
        .as_deref()
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
        .map(|c| c.with_timezone(&Utc));
    let full_due = previous
        .last_full_sync_time
        .is_none_or(|last| run.now - last >= chrono_duration(settings.full_resync_interval));
    let full = cursor.is_none()
        || full_due
        || matches!(
            reason,
            DueReason::SpecChanged | DueReason::Requested | DueReason::FirstRun
        );
    let input = EmployeeJobInput {
        now: run.now,
        tz: settings.time_zone,
        dry_run: sync.spec.dry_run,
        full,
        cursor,
        reteach_users: previous
            .reteach_users
            .and_then(|users| u64::try_from(users).ok()),
        guard: sync
            .spec
            .mass_change_guard
            .limits()
            .map(|limits| MassChangeGuard {
                limits,
                previous_full_seen: previous
                    .last_full_sync_seen
                    .and_then(|seen| u64::try_from(seen).ok()),
                approved_plan: sync.annotations().get(APPROVE_PLAN_ANNOTATION).cloned(),
                consumed_approval: previous.applied_plan_approval.clone(),
            }),
    };
    run_employee_sync(personio.as_ref(), reteach.as_ref(), &input)
        .await
        .map_err(|e| naming_secrets(RunFailure::from(e), namespace, sync))
}

/// The status after a successful run (pure; the demo prints the same thing).
pub fn status_after_success(
    status: &mut EmployeeSyncStatus,
    run: &RunContext,
    interval: Duration,
    job: &EmployeeJobOutcome,
) -> (Duration, String) {
    let summary = &job.summary;
    let message = format!(
        "{}{} employees: {} created, {} updated ({} locked, {} unlocked), {} unchanged, {} skipped, {} failed",
        if summary.dry_run { "dry run, would sync " } else { "" },
        summary.seen,
        summary.created,
        summary.updated,
        summary.locked,
        summary.unlocked,
        summary.unchanged,
        summary.skipped,
        summary.failed
    );
    let delay = run.succeed(status, message.clone(), interval);
    if summary.mode == crate::api::SyncMode::Full && !summary.dry_run {
        status.last_full_sync_time = Some(run.now);
        status.last_full_sync_seen = Some(summary.seen);
    }
    if let Some(approval) = &job.applied_approval {
        status.applied_plan_approval = Some(approval.clone());
    }
    if !summary.dry_run {
        status.cursor = job.next_cursor.map(|c| c.to_rfc3339());
    }
    if let Some(users) = job.reteach_users {
        status.reteach_users = i64::try_from(users).ok();
    }
    if job.linked > 0 {
        status.last_link_time = Some(run.now);
    }
    status.failures = job
        .failures
        .iter()
        .take(MAX_STATUS_FAILURES)
        .cloned()
        .collect();
    status.planned_actions = job.planned.clone();
    status.last_run = Some(summary.clone());
    (delay, message)
}

async fn record_success(
    status: &mut EmployeeSyncStatus,
    run: &RunContext,
    settings: &Settings,
    job: EmployeeJobOutcome,
    ctx: &Context,
    labels: &ResourceLabels,
    sync: &EmployeeSync,
) -> Duration {
    let (delay, message) = status_after_success(status, run, settings.interval, &job);
    let summary = &job.summary;
    if !summary.dry_run {
        ctx.metrics.records(KIND, "created", summary.created);
        ctx.metrics.records(KIND, "updated", summary.updated);
        ctx.metrics.records(KIND, "failed", summary.failed);
    }
    tracing::info!(
        namespace = labels.namespace,
        name = labels.name,
        "{message}"
    );
    if summary.created + summary.updated + summary.failed > 0 {
        publish(ctx, sync, EventType::Normal, "Synced", &message).await;
    }
    delay
}
