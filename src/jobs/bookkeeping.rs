//! Run bookkeeping of both kinds, free of Kubernetes: the status a run starts from becomes the
//! job's input, and the job's outcome becomes the kind's own status fields. The controller, the
//! demo, the benchmark and the tests call these same functions (the conditions and times every
//! kind shares are stamped by `controller::lifecycle`).

use chrono::{DateTime, Utc};

use super::certificate::CertificateJobOutcome;
use super::conditions::Health;
use super::employee::{EmployeeJobInput, EmployeeJobOutcome, MassChangeGuard};
use super::settings::EmployeeSettings;
use crate::api::duration::chrono_duration;
use crate::api::{CertificateLedgerStatus, CertificateSyncStatus, EmployeeSyncStatus, SyncMode};
use crate::jobs::Reason;
use crate::sync::mass_change::MassChangeLimits;

/// What decides an EmployeeSync run besides its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmployeeRunRequest {
    /// Start of the run.
    pub now: DateTime<Utc>,
    /// `spec.dryRun`.
    pub dry_run: bool,
    /// Compare every employee regardless of the cursor (first run, changed spec, requested run).
    pub force_full: bool,
    /// The mass-change guard's limits when it is on, and the plan id an approval names.
    pub guard: Option<(MassChangeLimits, Option<String>)>,
}

/// The input of an EmployeeSync run from the status it starts from: a full run when there is no
/// cursor, when it is forced, or once per `fullResyncInterval`; otherwise the changes since the
/// cursor.
pub fn employee_input(
    previous: &EmployeeSyncStatus,
    settings: &EmployeeSettings,
    request: EmployeeRunRequest,
) -> EmployeeJobInput {
    let cursor = previous
        .cursor
        .as_deref()
        .and_then(|c| DateTime::parse_from_rfc3339(c).ok())
        .map(|c| c.with_timezone(&Utc));
    let full_due = previous.last_full_sync_time.is_none_or(|last| {
        request.now - last >= chrono_duration(settings.cadence.full_resync_interval)
    });
    EmployeeJobInput {
        now: request.now,
        tz: settings.time_zone.get(),
        config: settings.config.clone(),
        managed_tags: previous.managed_tags.clone(),
        dry_run: request.dry_run,
        full: cursor.is_none() || full_due || request.force_full,
        cursor,
        reteach_users: previous
            .reteach_users
            .and_then(|users| u64::try_from(users).ok()),
        guard: request
            .guard
            .map(|(limits, approved_plan)| MassChangeGuard {
                limits,
                previous_full_seen: previous
                    .last_full_sync_seen
                    .and_then(|seen| u64::try_from(seen).ok()),
                approved_plan,
                consumed_approval: previous.applied_plan_approval.clone(),
            }),
        unsupported_fields: still_unsupported(previous, &settings.config),
        notified: Vec::new(),
    }
}

/// The fields `status.unsupportedFields` lists that are still mapped as they were when they were
/// found: a field mapped differently (or unmapped) is forgotten, so its next write tries again.
pub fn still_unsupported(
    previous: &EmployeeSyncStatus,
    config: &crate::sync::employee_config::EmployeeConfig,
) -> Vec<crate::api::UnsupportedField> {
    use crate::sync::employee_config::FieldSource;
    use crate::sync::unsupported_fields::{optional_field, source_fingerprint, source_of};
    previous
        .unsupported_fields
        .iter()
        .filter(|known| {
            optional_field(&known.field)
                .and_then(|field| source_of(config, field))
                .is_some_and(|source| {
                    *source != FieldSource::Unmapped && source_fingerprint(source) == known.mapping
                })
        })
        .cloned()
        .collect()
}

/// The one-line summary of an EmployeeSync run (the `Ready` message and the log line).
pub fn employee_message(outcome: &EmployeeJobOutcome) -> String {
    let summary = &outcome.summary;
    let tags = if summary.tags_added + summary.tags_removed > 0 {
        format!(
            "; tags: {} added, {} removed",
            summary.tags_added, summary.tags_removed
        )
    } else {
        String::new()
    };
    format!(
        "{}{} employees: {} created, {} updated ({} locked, {} unlocked), {} unchanged, {} skipped, {} failed",
        if summary.dry_run { "dry run, would sync " } else { "" },
        summary.seen,
        summary.created,
        summary.updated,
        summary.locked,
        summary.unlocked,
        summary.unchanged,
        summary.skipped,
        summary.failed,
    ) + &tags
}

/// What a run that went through means for `Ready` (pure): a run that could not make progress
/// is never `Succeeded`.
pub fn certificate_health(
    outcome: &CertificateJobOutcome,
    ledger: &CertificateLedgerStatus,
) -> Health {
    let summary = &outcome.summary;
    let counts = certificate_counts(summary);
    let notes = certificate_notes(outcome);
    let message = |extra: Option<String>| {
        let mut parts = vec![counts.clone()];
        parts.extend(extra);
        parts.extend(notes.iter().cloned());
        parts.join("; ")
    };
    let progress = summary.uploaded + summary.already_present > 0;
    if let Some(why) = &outcome.listing_unavailable {
        return Health::NotReady {
            reason: Reason::DocumentListingUnavailable,
            message: message(Some(format!(
                "{} certificates could not be checked for an earlier upload and were left alone: {why}; grant the credential read access to documents (v2 document management) and run `reteach-personio-operator preflight`",
                summary.unverified
            ))),
        };
    }
    if summary.failed > 0 && !progress {
        return Health::NotReady {
            reason: Reason::NoProgress,
            message: message(Some(format!(
                "no certificate could be delivered; each is retried in later runs and set aside after {} attempts (see status.failures)",
                outcome_max_attempts_hint(ledger)
            ))),
        };
    }
    if !ledger.set_aside.is_empty() {
        return Health::NotReady {
            reason: Reason::CertificatesSetAside,
            message: message(Some(format!(
                "{} certificates set aside after repeated failures (status.ledger.setAside); fix the cause, then request a run (reconcile.fluxcd.io/requestedAt) to retry them",
                ledger.set_aside.len()
            ))),
        };
    }
    let waiting_pdf = ledger
        .pending
        .iter()
        .filter(|p| p.reason == crate::sync::certificate_ledger::REASON_PDF_PENDING)
        .count();
    let reason = if summary.failed > 0 {
        Reason::PartiallySucceeded
    } else if waiting_pdf > 0 {
        Reason::WaitingForPdf
    } else {
        Reason::Succeeded
    };
    Health::Ready {
        reason,
        message: message(None),
    }
}

/// The counters of a CertificateSync run, first in its `Ready` message.
fn certificate_counts(summary: &crate::api::CertificateRunSummary) -> String {
    format!(
        "{}{} certificates handled{}: {} uploaded, {} already present, {} waiting for a PDF, {} of users without a Personio id, {} failed",
        if summary.dry_run { "dry run: " } else { "" },
        summary.found,
        if summary.full_pass { " (full pass)" } else { "" },
        summary.uploaded,
        summary.already_present,
        summary.pending_pdf,
        summary.unknown_employee,
        summary.failed
    )
}

/// Why a CertificateSync run did less than asked (stopped early, ledger full, future dates).
fn certificate_notes(outcome: &CertificateJobOutcome) -> Vec<String> {
    let summary = &outcome.summary;
    let mut notes = Vec::new();
    if let Some(why) = outcome.stopped_early {
        notes.push(why.to_string());
    }
    if outcome.not_recorded > 0 {
        notes.push(format!(
            "{} waiting certificates did not fit into status.ledger.pending; the next full pass finds them",
            outcome.not_recorded
        ));
    }
    if summary.deferred > 0 {
        notes.push(format!(
            "{} completions dated in the future wait for their date",
            summary.deferred
        ));
    }
    notes
}

fn outcome_max_attempts_hint(ledger: &CertificateLedgerStatus) -> String {
    ledger.pending.iter().map(|p| p.attempts).max().map_or_else(
        || "spec.maxAttempts".into(),
        |n| format!("spec.maxAttempts (now at {n})"),
    )
}

/// Writes the outcome of an EmployeeSync run that started at `now` into the kind's own status
/// fields.
pub fn record_employee_outcome(
    status: &mut EmployeeSyncStatus,
    now: DateTime<Utc>,
    outcome: &EmployeeJobOutcome,
) {
    let summary = &outcome.summary;
    if summary.mode == SyncMode::Full && !summary.dry_run {
        status.last_full_sync_time = Some(now);
        status.last_full_sync_seen = Some(summary.seen);
    }
    if let Some(approval) = &outcome.applied_approval {
        status.applied_plan_approval = Some(approval.clone());
    }
    if !summary.dry_run {
        status.cursor = outcome.next_cursor.map(|c| c.to_rfc3339());
    }
    if let Some(users) = outcome.reteach_users {
        status.reteach_users = i64::try_from(users).ok();
    }
    if outcome.linked > 0 {
        status.last_link_time = Some(now);
    }
    status.planned_actions = outcome.planned.clone();
    status.personio_attributes = outcome.personio_attributes.clone();
    status.unsupported_fields = outcome.unsupported_fields.clone();
    if let Some(managed) = &outcome.managed_tags {
        status.managed_tags = managed.clone();
    }
    status.last_run = Some(summary.clone());
}

/// Writes the outcome of a CertificateSync run that went through into the kind's own status
/// fields (a dry run keeps the ledger and the total).
pub fn record_certificate_outcome(
    status: &mut CertificateSyncStatus,
    outcome: &CertificateJobOutcome,
    category_id: i64,
) {
    status.category_id = Some(category_id);
    if !outcome.summary.dry_run {
        status.ledger = outcome.ledger.clone();
        status.uploaded_total += outcome.uploaded_total_delta;
    }
    record_certificate_counts(status, outcome);
}

/// Writes what a CertificateSync run did before it stopped: its uploads count.
pub fn record_certificate_partial(
    status: &mut CertificateSyncStatus,
    partial: &CertificateJobOutcome,
) {
    status.uploaded_total += partial.uploaded_total_delta;
    record_certificate_counts(status, partial);
}

fn record_certificate_counts(status: &mut CertificateSyncStatus, outcome: &CertificateJobOutcome) {
    status.last_run = Some(outcome.summary.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::settings::{Cadence, TimeZone};
    use std::time::Duration;

    use crate::clock::at;

    fn settings() -> EmployeeSettings {
        EmployeeSettings {
            config: Default::default(),
            cadence: Cadence::parse(
                "5m",
                "24h",
                Duration::from_secs(60),
                Duration::from_secs(60),
            )
            .unwrap(),
            time_zone: TimeZone::parse("Europe/Berlin").unwrap(),
        }
    }

    fn request(now: &str) -> EmployeeRunRequest {
        EmployeeRunRequest {
            now: at(now),
            dry_run: false,
            force_full: false,
            guard: None,
        }
    }

    #[test]
    fn the_first_run_is_full() {
        let input = employee_input(
            &EmployeeSyncStatus::default(),
            &settings(),
            request("2026-11-26T10:00:00Z"),
        );
        assert!(input.full);
        assert_eq!(input.cursor, None);
        assert_eq!(input.tz, chrono_tz::Europe::Berlin);
    }

    #[test]
    fn a_run_within_the_full_resync_interval_continues_from_the_cursor() {
        let status = EmployeeSyncStatus {
            cursor: Some("2026-11-26T09:55:00+00:00".into()),
            last_full_sync_time: Some(at("2026-11-26T00:00:00Z")),
            reteach_users: Some(40),
            ..EmployeeSyncStatus::default()
        };
        let input = employee_input(&status, &settings(), request("2026-11-26T10:00:00Z"));
        assert!(!input.full);
        assert_eq!(input.cursor, Some(at("2026-11-26T09:55:00Z")));
        assert_eq!(input.reteach_users, Some(40));
        let next_day = employee_input(&status, &settings(), request("2026-11-27T00:00:00Z"));
        assert!(next_day.full, "a day after the last full run");
    }

    #[test]
    fn the_outcome_round_trips_through_status_into_the_next_input() {
        let mut status = EmployeeSyncStatus::default();
        let outcome = EmployeeJobOutcome {
            personio_attributes: Vec::new(),
            unsupported_fields: Vec::new(),
            newly_unsupported: Vec::new(),
            managed_tags: Some(vec!["Sales".into()]),
            summary: crate::api::EmployeeRunSummary {
                started_at: at("2026-11-26T10:00:00Z"),
                mode: SyncMode::Full,
                seen: 3,
                ..crate::api::EmployeeRunSummary::default()
            },
            failures: Vec::new(),
            planned: Vec::new(),
            next_cursor: Some(at("2026-11-26T10:00:00Z")),
            transient_failures: 0,
            reteach_users: Some(12),
            applied_approval: None,
            linked: 0,
        };
        record_employee_outcome(&mut status, at("2026-11-26T10:00:00Z"), &outcome);
        assert_eq!(status.last_full_sync_time, Some(at("2026-11-26T10:00:00Z")));
        let input = employee_input(&status, &settings(), request("2026-11-26T10:05:00Z"));
        assert_eq!(input.managed_tags, ["Sales"]);
        assert_eq!(input.cursor, Some(at("2026-11-26T10:00:00Z")));
        assert_eq!(input.reteach_users, Some(12));
        assert!(!input.full);
    }

    #[test]
    fn a_left_out_field_is_remembered_while_mapped_the_same_way() {
        use crate::api::{UnsupportedField, UnsupportedFieldReason};
        use crate::sync::employee_config::FieldSource;
        use crate::sync::unsupported_fields::source_fingerprint;
        let mut settings = settings();
        let status = EmployeeSyncStatus {
            unsupported_fields: vec![UnsupportedField {
                field: "position".into(),
                reason: UnsupportedFieldReason::Refused,
                mapping: source_fingerprint(&FieldSource::attribute("position")),
                since: at("2026-11-26T09:00:00Z"),
            }],
            ..EmployeeSyncStatus::default()
        };
        let input = employee_input(&status, &settings, request("2026-11-26T10:00:00Z"));
        assert_eq!(input.unsupported_fields, status.unsupported_fields);
        // Another part of the spec changes: still remembered.
        settings.config.mapping.department = FieldSource::Unmapped;
        let input = employee_input(&status, &settings, request("2026-11-26T10:00:00Z"));
        assert_eq!(input.unsupported_fields.len(), 1);
        // The field is mapped differently, or not at all: tried again / forgotten.
        for other in [FieldSource::Constant("Staff".into()), FieldSource::Unmapped] {
            settings.config.mapping.position = other;
            let input = employee_input(&status, &settings, request("2026-11-26T10:00:00Z"));
            assert!(input.unsupported_fields.is_empty());
        }
    }
}
