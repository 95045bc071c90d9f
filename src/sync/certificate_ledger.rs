//! The exactly-once ledger of a CertificateSync, as operations on its status form
//! ([`CertificateLedgerStatus`]).
//!
//! The ledger only saves requests: what was uploaded is known for certain from Personio (the
//! marker in each document's comment). Its lists are bounded, so status stays small whatever the
//! academy holds; what falls out of a list is found again by the next full pass, which compares
//! every completion with the markers in Personio.
//!
//! How a listed completion is treated ([`triage`]):
//! - after the cursor: new, uploaded directly (the in-flight intent guards a crash);
//! - at or before the cursor (the overlap window, a full pass, or no cursor yet): compared with
//!   the markers of the employee's documents first, unless the ledger already knows it.

use chrono::{DateTime, Duration, Utc};

use super::candidate_batch::ProcessingKey;
use super::model::Completion;
use crate::api::{
    CertificateLedgerStatus, CompletionKey, FullPassProgress, PendingCertificate, RecentUpload,
    SetAsideCertificate,
};

/// Most entries in `recent`.
pub const MAX_RECENT: usize = 128;
/// Most entries in `pending`.
pub const MAX_PENDING: usize = 100;
/// Most entries in `setAside`; the oldest make room (a full pass finds them again).
pub const MAX_SET_ASIDE: usize = 50;
/// `PendingCertificate.reason` of a certificate whose PDF reteach has not generated yet.
pub const REASON_PDF_PENDING: &str = "PdfPending";
/// `PendingCertificate.reason` of a certificate whose last attempt failed.
pub const REASON_FAILED: &str = "Failed";

impl From<&CompletionKey> for ProcessingKey {
    fn from(key: &CompletionKey) -> Self {
        Self {
            completed_at: key.completed_at,
            participation_id: key.participation_id.clone(),
        }
    }
}

impl From<&ProcessingKey> for CompletionKey {
    fn from(key: &ProcessingKey) -> Self {
        Self {
            completed_at: key.completed_at,
            participation_id: key.participation_id.clone(),
        }
    }
}

/// What a run does with one listed completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Triage {
    /// Already handled, waiting in `pending` (retried separately) or set aside: nothing to do.
    Known,
    /// Dated after the start of the run: left until its time has come.
    Deferred,
    /// After the cursor: never handled; uploaded without asking Personio first.
    New,
    /// At or before the cursor, or no cursor yet: compared with Personio's markers first.
    Verify,
    /// In the overlap window but not worth a Personio request (no certificate or no Personio id
    /// yet, or before `recentFrom`): left to the next full pass.
    LeftToFullPass,
}

/// The ledger's cursor as a key.
pub fn cursor_key(ledger: &CertificateLedgerStatus) -> Option<ProcessingKey> {
    ledger.cursor.map(|completed_at| ProcessingKey {
        completed_at,
        participation_id: ledger.cursor_participation_id.clone().unwrap_or_default(),
    })
}

/// How one listed completion is treated in a run that started at `now`.
pub fn triage(
    ledger: &CertificateLedgerStatus,
    completion: &Completion,
    now: DateTime<Utc>,
) -> Triage {
    if completion.completed_at > now {
        return Triage::Deferred;
    }
    if is_pending(ledger, &completion.participation_id)
        || is_set_aside(ledger, completion)
        || completion
            .certificate_id
            .as_deref()
            .is_some_and(|id| is_recent(ledger, id))
    {
        return Triage::Known;
    }
    let key = ProcessingKey::of(completion);
    let Some(cursor) = cursor_key(ledger) else {
        return Triage::Verify;
    };
    if key > cursor {
        return Triage::New;
    }
    if ledger.full_pass.is_some() {
        return Triage::Verify;
    }
    // The overlap window of an incremental run: only a completion that may have arrived late
    // and can be uploaded is worth a Personio request.
    let uploadable = completion.certificate_id.is_some()
        && completion
            .customer_external_id
            .as_deref()
            .is_some_and(|id| !id.is_empty());
    let before_recent = ledger
        .recent_from
        .as_ref()
        .is_some_and(|from| key < ProcessingKey::from(from));
    if uploadable && !before_recent {
        Triage::Verify
    } else {
        Triage::LeftToFullPass
    }
}

/// Moves the cursor forward to `key` (never backwards).
pub fn advance_cursor(ledger: &mut CertificateLedgerStatus, key: &ProcessingKey) {
    if cursor_key(ledger).is_none_or(|cursor| cursor < *key) {
        ledger.cursor = Some(key.completed_at);
        ledger.cursor_participation_id = Some(key.participation_id.clone());
    }
}

/// The `since` of the next listing: everything during a full pass or before the first cursor,
/// else the cursor minus the overlap.
pub fn listing_since(ledger: &CertificateLedgerStatus, overlap: Duration) -> Option<DateTime<Utc>> {
    if ledger.full_pass.is_some() {
        return None;
    }
    ledger.cursor.map(|cursor| window_start(cursor, overlap))
}

fn window_start(cursor: DateTime<Utc>, overlap: Duration) -> DateTime<Utc> {
    cursor
        .checked_sub_signed(overlap)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether the certificate was handled recently.
pub fn is_recent(ledger: &CertificateLedgerStatus, certificate_id: &str) -> bool {
    ledger
        .recent
        .iter()
        .any(|r| r.certificate_id == certificate_id)
}

/// Whether the participation waits in `pending`.
pub fn is_pending(ledger: &CertificateLedgerStatus, participation_id: &str) -> bool {
    ledger
        .pending
        .iter()
        .any(|p| p.participation_id == participation_id)
}

fn is_set_aside(ledger: &CertificateLedgerStatus, completion: &Completion) -> bool {
    ledger
        .set_aside
        .iter()
        .any(|s| s.participation_id == completion.participation_id)
}

/// Records a certificate known to be in Personio (uploaded now, or found by its marker): it
/// leaves `pending`, and enters `recent` when the overlap window can list it again.
pub fn record_in_personio(
    ledger: &mut CertificateLedgerStatus,
    certificate_id: &str,
    key: &ProcessingKey,
    overlap: Duration,
) {
    ledger
        .pending
        .retain(|p| p.participation_id != key.participation_id);
    let window = ledger.cursor.map(|cursor| window_start(cursor, overlap));
    if window.is_some_and(|start| key.completed_at < start) || is_recent(ledger, certificate_id) {
        return;
    }
    ledger.recent.push(RecentUpload {
        certificate_id: certificate_id.to_string(),
        completed_at: key.completed_at,
        participation_id: Some(key.participation_id.clone()),
    });
    if ledger.recent.len() > MAX_RECENT {
        ledger.recent.sort_by_key(recent_key);
        let drop = ledger.recent.len() - MAX_RECENT;
        ledger.recent.drain(..drop);
        ledger.recent_from = ledger
            .recent
            .first()
            .map(|r| CompletionKey::from(&recent_key(r)));
    }
}

fn recent_key(recent: &RecentUpload) -> ProcessingKey {
    ProcessingKey {
        completed_at: recent.completed_at,
        participation_id: recent.participation_id.clone().unwrap_or_default(),
    }
}

/// Forgets what the next listing (cursor − overlap) can no longer return.
pub fn prune_recent(ledger: &mut CertificateLedgerStatus, overlap: Duration) {
    let Some(cursor) = ledger.cursor else {
        return;
    };
    let since = window_start(cursor, overlap);
    ledger.recent.retain(|r| r.completed_at >= since);
    if ledger
        .recent_from
        .as_ref()
        .is_some_and(|from| from.completed_at < since)
    {
        ledger.recent_from = None;
    }
}

/// Records a certificate whose PDF is not generated yet. Returns `false` when `pending` is full
/// (the next full pass finds it instead).
pub fn record_pdf_pending(ledger: &mut CertificateLedgerStatus, completion: &Completion) -> bool {
    let attempts = pending_attempts(ledger, &completion.participation_id);
    upsert_pending(
        ledger,
        PendingCertificate {
            certificate_id: ledger_key(completion).to_string(),
            participation_id: completion.participation_id.clone(),
            completed_at: completion.completed_at,
            reason: REASON_PDF_PENDING.into(),
            attempts,
            last_error: None,
        },
    )
}

/// Records a failed attempt. Returns the attempts so far, or `None` when `pending` is full (the
/// next full pass tries again).
pub fn record_failed_attempt(
    ledger: &mut CertificateLedgerStatus,
    completion: &Completion,
    error: &str,
) -> Option<i32> {
    let attempts = pending_attempts(ledger, &completion.participation_id).saturating_add(1);
    let recorded = upsert_pending(
        ledger,
        PendingCertificate {
            certificate_id: ledger_key(completion).to_string(),
            participation_id: completion.participation_id.clone(),
            completed_at: completion.completed_at,
            reason: REASON_FAILED.into(),
            attempts,
            last_error: Some(error.to_string()),
        },
    );
    recorded.then_some(attempts)
}

/// Takes back one failed attempt (the run found the upstream down, so the failures were not the
/// certificate's fault).
pub fn forgive_attempt(ledger: &mut CertificateLedgerStatus, participation_id: &str) {
    if let Some(entry) = ledger
        .pending
        .iter_mut()
        .find(|p| p.participation_id == participation_id)
    {
        entry.attempts = entry.attempts.saturating_sub(1).max(0);
    }
}

/// Failed attempts recorded for the participation.
pub fn pending_attempts(ledger: &CertificateLedgerStatus, participation_id: &str) -> i32 {
    ledger
        .pending
        .iter()
        .find(|p| p.participation_id == participation_id)
        .map_or(0, |p| p.attempts)
}

fn upsert_pending(ledger: &mut CertificateLedgerStatus, entry: PendingCertificate) -> bool {
    if let Some(existing) = ledger
        .pending
        .iter_mut()
        .find(|p| p.participation_id == entry.participation_id)
    {
        *existing = entry;
        return true;
    }
    if ledger.pending.len() >= MAX_PENDING {
        return false;
    }
    ledger.pending.push(entry);
    true
}

/// Drops a participation from `pending` (it no longer exists in reteach, or was handled).
pub fn remove_pending(ledger: &mut CertificateLedgerStatus, participation_id: &str) {
    ledger
        .pending
        .retain(|p| p.participation_id != participation_id);
}

/// Moves every pending certificate with `max_attempts` failed attempts to `setAside` and returns
/// the newly set-aside entries.
pub fn set_aside_exhausted(
    ledger: &mut CertificateLedgerStatus,
    max_attempts: i32,
    personio_ids: &dyn Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
) -> Vec<SetAsideCertificate> {
    let (exhausted, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut ledger.pending)
        .into_iter()
        .partition(|p| p.reason == REASON_FAILED && p.attempts >= max_attempts);
    ledger.pending = keep;
    let newly: Vec<SetAsideCertificate> = exhausted
        .into_iter()
        .map(|p| SetAsideCertificate {
            personio_id: personio_ids(&p.participation_id),
            certificate_id: p.certificate_id,
            participation_id: p.participation_id,
            reason: p
                .last_error
                .unwrap_or_else(|| "repeated failures".to_string()),
            attempts: p.attempts,
            since: now,
        })
        .collect();
    ledger.set_aside.extend(newly.iter().cloned());
    if ledger.set_aside.len() > MAX_SET_ASIDE {
        let drop = ledger.set_aside.len() - MAX_SET_ASIDE;
        ledger.set_aside.drain(..drop);
    }
    newly
}

/// Sets an interrupted upload aside for a human (its presence in Personio could not be checked).
pub fn set_aside_unverifiable(ledger: &mut CertificateLedgerStatus, entry: SetAsideCertificate) {
    remove_pending(ledger, &entry.participation_id);
    ledger
        .set_aside
        .retain(|s| s.certificate_id != entry.certificate_id);
    ledger.set_aside.push(entry);
    if ledger.set_aside.len() > MAX_SET_ASIDE {
        let drop = ledger.set_aside.len() - MAX_SET_ASIDE;
        ledger.set_aside.drain(..drop);
    }
}

/// Starts a full pass unless one is in progress. Set-aside certificates get another chance when
/// `retry_set_aside` (a run requested by a human).
pub fn start_full_pass(
    ledger: &mut CertificateLedgerStatus,
    now: DateTime<Utc>,
    retry_set_aside: bool,
) {
    if retry_set_aside {
        ledger.set_aside.clear();
        for pending in &mut ledger.pending {
            pending.attempts = 0;
        }
    }
    if ledger.full_pass.is_none() {
        ledger.full_pass = Some(FullPassProgress {
            started_at: now,
            after: None,
        });
    }
}

/// Where an interrupted full pass resumes.
pub fn full_pass_after(ledger: &CertificateLedgerStatus) -> Option<ProcessingKey> {
    ledger
        .full_pass
        .as_ref()
        .and_then(|pass| pass.after.as_ref())
        .map(ProcessingKey::from)
}

/// Records the progress of the full pass in progress.
pub fn full_pass_handled(ledger: &mut CertificateLedgerStatus, key: &ProcessingKey) {
    if let Some(pass) = &mut ledger.full_pass {
        if pass
            .after
            .as_ref()
            .is_none_or(|after| ProcessingKey::from(after) < *key)
        {
            pass.after = Some(CompletionKey::from(key));
        }
    }
}

/// Ends the full pass in progress: the cursor moves over everything it handled.
pub fn finish_full_pass(ledger: &mut CertificateLedgerStatus, now: DateTime<Utc>) {
    let Some(pass) = ledger.full_pass.take() else {
        return;
    };
    match pass.after.as_ref() {
        Some(after) => advance_cursor(ledger, &ProcessingKey::from(after)),
        // Nothing listed at all: the cursor starts at the start of this pass.
        None if ledger.cursor.is_none() => {
            advance_cursor(
                ledger,
                &ProcessingKey {
                    completed_at: pass.started_at.min(now),
                    participation_id: String::new(),
                },
            );
        }
        None => {}
    }
    ledger.last_full_pass_time = Some(pass.started_at);
}

/// Whether a run starting at `now` must be a full pass.
pub fn full_pass_due(
    ledger: &CertificateLedgerStatus,
    now: DateTime<Utc>,
    full_resync_interval: Duration,
    requested: bool,
    linked_since: Option<DateTime<Utc>>,
) -> bool {
    if requested || ledger.cursor.is_none() || ledger.full_pass.is_some() {
        return true;
    }
    let Some(last) = ledger.last_full_pass_time else {
        // Ledgers of older versions never had a full pass.
        return true;
    };
    let interval_passed = last
        .checked_add_signed(full_resync_interval)
        .is_some_and(|due| due <= now);
    interval_passed || linked_since.is_some_and(|linked| linked >= last)
}

/// Trims a ledger written by an older version (unbounded lists, unknown-employee entries) to the
/// bounds of this one; what is dropped is found again by the next full pass.
pub fn normalize(ledger: &mut CertificateLedgerStatus) {
    ledger
        .pending
        .retain(|p| p.reason == REASON_PDF_PENDING || p.reason == REASON_FAILED);
    ledger.pending.truncate(MAX_PENDING);
    if ledger.recent.len() > MAX_RECENT {
        ledger.recent.sort_by_key(recent_key);
        let drop = ledger.recent.len() - MAX_RECENT;
        ledger.recent.drain(..drop);
        ledger.recent_from = ledger
            .recent
            .first()
            .map(|r| CompletionKey::from(&recent_key(r)));
    }
    if ledger.set_aside.len() > MAX_SET_ASIDE {
        let drop = ledger.set_aside.len() - MAX_SET_ASIDE;
        ledger.set_aside.drain(..drop);
    }
}

/// The id a completion is tracked by: its certificate id, or the participation id while no
/// certificate exists yet.
pub fn ledger_key(completion: &Completion) -> &str {
    completion
        .certificate_id
        .as_deref()
        .unwrap_or(&completion.participation_id)
}

#[cfg(test)]
#[path = "certificate_ledger_tests.rs"]
mod tests;
