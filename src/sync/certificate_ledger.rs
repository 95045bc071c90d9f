//! The exactly-once ledger of a CertificateSync: the operations of [`CertificateLedger`], the
//! form persisted in `status.ledger`. Pure: no Kubernetes, no API types.
//!
//! The ledger only saves requests: what was uploaded is known for certain from Personio (the
//! marker in each document's comment). Its lists are bounded, so status stays small whatever the
//! academy holds; what falls out of a list is found again by the next full pass, which compares
//! every completion with the markers in Personio.
//!
//! How a listed completion is treated ([`CertificateLedger::triage`]):
//! - after the cursor: new, uploaded directly (the in-flight intent guards a crash);
//! - at or before the cursor (the overlap window, a full pass, or no cursor yet): compared with
//!   the markers of the employee's documents first, unless the ledger already knows it.

use chrono::{DateTime, Duration, Utc};

use super::candidate_batch::ProcessingKey;
use super::certificate_ledger_state::{
    CertificateLedger, CompletionKey, FullPassProgress, PendingCertificate, RecentUpload,
    SetAsideCertificate,
};
use super::model::Completion;

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

impl CertificateLedger {
    pub fn cursor_key(&self) -> Option<ProcessingKey> {
        self.cursor.map(|completed_at| ProcessingKey {
            completed_at,
            participation_id: self.cursor_participation_id.clone().unwrap_or_default(),
        })
    }

    pub fn triage(&self, completion: &Completion, now: DateTime<Utc>) -> Triage {
        if completion.completed_at > now {
            return Triage::Deferred;
        }
        if self.is_pending(&completion.participation_id)
            || self.is_set_aside(completion)
            || completion
                .certificate_id
                .as_deref()
                .is_some_and(|id| self.is_recent(id))
        {
            return Triage::Known;
        }
        let key = ProcessingKey::of(completion);
        let Some(cursor) = self.cursor_key() else {
            return Triage::Verify;
        };
        if key > cursor {
            return Triage::New;
        }
        if self.full_pass.is_some() {
            return Triage::Verify;
        }
        // The overlap window of an incremental run: only a completion that may have arrived late
        // and can be uploaded is worth a Personio request.
        let uploadable = completion.certificate_id.is_some()
            && completion
                .customer_external_id
                .as_deref()
                .is_some_and(|id| !id.is_empty());
        let before_recent = self
            .recent_from
            .as_ref()
            .is_some_and(|from| key < ProcessingKey::from(from));
        if uploadable && !before_recent {
            Triage::Verify
        } else {
            Triage::LeftToFullPass
        }
    }

    pub fn advance_cursor(&mut self, key: &ProcessingKey) {
        if self.cursor_key().is_none_or(|cursor| cursor < *key) {
            self.cursor = Some(key.completed_at);
            self.cursor_participation_id = Some(key.participation_id.clone());
        }
    }

    pub fn listing_since(&self, overlap: Duration) -> Option<DateTime<Utc>> {
        if self.full_pass.is_some() {
            return None;
        }
        self.cursor.map(|cursor| window_start(cursor, overlap))
    }

    pub fn is_recent(&self, certificate_id: &str) -> bool {
        self.recent
            .iter()
            .any(|r| r.certificate_id == certificate_id)
    }

    pub fn is_pending(&self, participation_id: &str) -> bool {
        self.pending
            .iter()
            .any(|p| p.participation_id == participation_id)
    }

    fn is_set_aside(&self, completion: &Completion) -> bool {
        self.set_aside
            .iter()
            .any(|s| s.participation_id == completion.participation_id)
    }

    pub fn record_in_personio(
        &mut self,
        certificate_id: &str,
        key: &ProcessingKey,
        overlap: Duration,
    ) {
        self.pending
            .retain(|p| p.participation_id != key.participation_id);
        let window = self.cursor.map(|cursor| window_start(cursor, overlap));
        if window.is_some_and(|start| key.completed_at < start) || self.is_recent(certificate_id) {
            return;
        }
        self.recent.push(RecentUpload {
            certificate_id: certificate_id.to_string(),
            completed_at: key.completed_at,
            participation_id: Some(key.participation_id.clone()),
        });
        self.trim_recent();
    }

    /// Keeps the newest [`MAX_RECENT`] uploads, oldest dropped first, and moves `recent_from` to
    /// the oldest one kept.
    fn trim_recent(&mut self) {
        if self.recent.len() > MAX_RECENT {
            self.recent.sort_by_key(recent_key);
            let drop = self.recent.len() - MAX_RECENT;
            self.recent.drain(..drop);
            self.recent_from = self
                .recent
                .first()
                .map(|r| CompletionKey::from(&recent_key(r)));
        }
    }

    pub fn prune_recent(&mut self, overlap: Duration) {
        let Some(cursor) = self.cursor else {
            return;
        };
        let since = window_start(cursor, overlap);
        self.recent.retain(|r| r.completed_at >= since);
        if self
            .recent_from
            .as_ref()
            .is_some_and(|from| from.completed_at < since)
        {
            self.recent_from = None;
        }
    }

    pub fn record_pdf_pending(&mut self, completion: &Completion) -> bool {
        let attempts = self.pending_attempts(&completion.participation_id);
        self.upsert_pending(PendingCertificate {
            certificate_id: ledger_key(completion).to_string(),
            participation_id: completion.participation_id.clone(),
            completed_at: completion.completed_at,
            reason: REASON_PDF_PENDING.into(),
            attempts,
            last_error: None,
        })
    }

    pub fn record_failed_attempt(&mut self, completion: &Completion, error: &str) -> Option<i32> {
        let attempts = self
            .pending_attempts(&completion.participation_id)
            .saturating_add(1);
        let recorded = self.upsert_pending(PendingCertificate {
            certificate_id: ledger_key(completion).to_string(),
            participation_id: completion.participation_id.clone(),
            completed_at: completion.completed_at,
            reason: REASON_FAILED.into(),
            attempts,
            last_error: Some(error.to_string()),
        });
        recorded.then_some(attempts)
    }

    pub fn forgive_attempt(&mut self, participation_id: &str) {
        if let Some(entry) = self
            .pending
            .iter_mut()
            .find(|p| p.participation_id == participation_id)
        {
            entry.attempts = entry.attempts.saturating_sub(1).max(0);
        }
    }

    pub fn pending_attempts(&self, participation_id: &str) -> i32 {
        self.pending
            .iter()
            .find(|p| p.participation_id == participation_id)
            .map_or(0, |p| p.attempts)
    }

    fn upsert_pending(&mut self, entry: PendingCertificate) -> bool {
        if let Some(existing) = self
            .pending
            .iter_mut()
            .find(|p| p.participation_id == entry.participation_id)
        {
            *existing = entry;
            return true;
        }
        if self.pending.len() >= MAX_PENDING {
            return false;
        }
        self.pending.push(entry);
        true
    }

    pub fn remove_pending(&mut self, participation_id: &str) {
        self.pending
            .retain(|p| p.participation_id != participation_id);
    }

    pub fn set_aside_exhausted(
        &mut self,
        max_attempts: i32,
        personio_ids: &dyn Fn(&str) -> Option<String>,
        now: DateTime<Utc>,
    ) -> Vec<SetAsideCertificate> {
        let (exhausted, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.reason == REASON_FAILED && p.attempts >= max_attempts);
        self.pending = keep;
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
        self.set_aside.extend(newly.iter().cloned());
        if self.set_aside.len() > MAX_SET_ASIDE {
            let drop = self.set_aside.len() - MAX_SET_ASIDE;
            self.set_aside.drain(..drop);
        }
        newly
    }

    pub fn set_aside_unverifiable(&mut self, entry: SetAsideCertificate) {
        self.remove_pending(&entry.participation_id);
        self.set_aside
            .retain(|s| s.certificate_id != entry.certificate_id);
        self.set_aside.push(entry);
        if self.set_aside.len() > MAX_SET_ASIDE {
            let drop = self.set_aside.len() - MAX_SET_ASIDE;
            self.set_aside.drain(..drop);
        }
    }

    pub fn start_full_pass(&mut self, now: DateTime<Utc>, retry_set_aside: bool) {
        if retry_set_aside {
            self.set_aside.clear();
            for pending in &mut self.pending {
                pending.attempts = 0;
            }
        }
        if self.full_pass.is_none() {
            self.full_pass = Some(FullPassProgress {
                started_at: now,
                after: None,
            });
        }
    }

    pub fn full_pass_after(&self) -> Option<ProcessingKey> {
        self.full_pass
            .as_ref()
            .and_then(|pass| pass.after.as_ref())
            .map(ProcessingKey::from)
    }

    pub fn full_pass_handled(&mut self, key: &ProcessingKey) {
        if let Some(pass) = &mut self.full_pass {
            if pass
                .after
                .as_ref()
                .is_none_or(|after| ProcessingKey::from(after) < *key)
            {
                pass.after = Some(CompletionKey::from(key));
            }
        }
    }

    pub fn finish_full_pass(&mut self, now: DateTime<Utc>) {
        let Some(pass) = self.full_pass.take() else {
            return;
        };
        match pass.after.as_ref() {
            Some(after) => self.advance_cursor(&ProcessingKey::from(after)),
            // Nothing listed at all: the cursor starts at the start of this pass.
            None if self.cursor.is_none() => {
                self.advance_cursor(&ProcessingKey {
                    completed_at: pass.started_at.min(now),
                    participation_id: String::new(),
                });
            }
            None => {}
        }
        self.last_full_pass_time = Some(pass.started_at);
    }

    pub fn full_pass_due(
        &self,
        now: DateTime<Utc>,
        full_resync_interval: Duration,
        requested: bool,
        linked_since: Option<DateTime<Utc>>,
    ) -> bool {
        if requested || self.cursor.is_none() || self.full_pass.is_some() {
            return true;
        }
        let Some(last) = self.last_full_pass_time else {
            // Ledgers of older versions never had a full pass.
            return true;
        };
        let interval_passed = last
            .checked_add_signed(full_resync_interval)
            .is_some_and(|due| due <= now);
        interval_passed || linked_since.is_some_and(|linked| linked >= last)
    }

    pub fn normalize(&mut self) {
        self.pending
            .retain(|p| p.reason == REASON_PDF_PENDING || p.reason == REASON_FAILED);
        self.pending.truncate(MAX_PENDING);
        self.trim_recent();
        if self.set_aside.len() > MAX_SET_ASIDE {
            let drop = self.set_aside.len() - MAX_SET_ASIDE;
            self.set_aside.drain(..drop);
        }
    }
}

/// The ledger's cursor as a key.
/// How one listed completion is treated in a run that started at `now`.
/// Moves the cursor forward to `key` (never backwards).
/// The `since` of the next listing: everything during a full pass or before the first cursor,
/// else the cursor minus the overlap.
fn window_start(cursor: DateTime<Utc>, overlap: Duration) -> DateTime<Utc> {
    cursor
        .checked_sub_signed(overlap)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whether the certificate was handled recently.
/// Whether the participation waits in `pending`.
/// Records a certificate known to be in Personio (uploaded now, or found by its marker): it
/// leaves `pending`, and enters `recent` when the overlap window can list it again.
fn recent_key(recent: &RecentUpload) -> ProcessingKey {
    ProcessingKey {
        completed_at: recent.completed_at,
        participation_id: recent.participation_id.clone().unwrap_or_default(),
    }
}

/// Forgets what the next listing (cursor − overlap) can no longer return.
/// Records a certificate whose PDF is not generated yet. Returns `false` when `pending` is full
/// (the next full pass finds it instead).
/// Records a failed attempt. Returns the attempts so far, or `None` when `pending` is full (the
/// next full pass tries again).
/// Takes back one failed attempt (the run found the upstream down, so the failures were not the
/// certificate's fault).
/// Failed attempts recorded for the participation.
/// Drops a participation from `pending` (it no longer exists in reteach, or was handled).
/// Moves every pending certificate with `max_attempts` failed attempts to `setAside` and returns
/// the newly set-aside entries.
/// Sets an interrupted upload aside for a human (its presence in Personio could not be checked).
/// Starts a full pass unless one is in progress. Set-aside certificates get another chance when
/// `retry_set_aside` (a run requested by a human).
/// Where an interrupted full pass resumes.
/// Records the progress of the full pass in progress.
/// Ends the full pass in progress: the cursor moves over everything it handled.
/// Whether a run starting at `now` must be a full pass.
/// Trims a ledger written by an older version (unbounded lists, unknown-employee entries) to the
/// bounds of this one; what is dropped is found again by the next full pass.
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
