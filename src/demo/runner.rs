//! One demo pass: the real jobs with the real clients, then the status each resource would carry,
//! computed with the controllers' own pure functions. Only the Kubernetes parts are left out: the
//! status stays in memory and the ledger lives in a [`MemoryLedgerStore`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use super::resources::DemoResources;
use crate::api::duration::chrono_duration;
use crate::api::{CertificateSyncStatus, EmployeeSyncStatus};
use crate::jobs::bookkeeping::{employee_input, EmployeeRunRequest};
use crate::jobs::run_status::{
    certificate_status_after_success, employee_status_after_success, RunContext,
};
use crate::jobs::settings::{
    Cadence, CertificateSettings, EmployeeSettings, KindSettings, SpecError,
};
use crate::jobs::{
    resolve_category, run_certificate_sync, run_employee_sync, CertificateJobInput,
    CertificateJobOutcome, CertificateRunRequest, EmployeeJobOutcome, JobError, MemoryLedgerStore,
    Reason,
};
use crate::personio::PersonioClient;
use crate::reteach::ReteachClient;

/// The shortest interval the operator accepts (`spec.interval` minimum).
const MINIMUM_INTERVAL: Duration = Duration::from_secs(60);

/// Why a demo pass failed.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// A spec value of an example is invalid (the controllers' own validation).
    #[error("examples: {0}")]
    Spec(#[from] SpecError),
    /// The EmployeeSync run failed.
    #[error("EmployeeSync failed: {0}")]
    EmployeeSync(JobError),
    /// The CertificateSync did not start because the EmployeeSync has not succeeded.
    #[error("CertificateSync is {}", Reason::WaitingForEmployeeSync.as_str())]
    Waiting,
    /// The CertificateSync run failed.
    #[error("CertificateSync failed: {0}")]
    CertificateSync(JobError),
}

/// What one pass did.
#[derive(Clone, Debug)]
pub struct PassOutcome {
    /// The EmployeeSync job's outcome.
    pub employees: EmployeeJobOutcome,
    /// The CertificateSync job's outcome.
    pub certificates: CertificateJobOutcome,
    /// The resolved Personio document category.
    pub category_id: i64,
}

/// Runs both syncs, keeping their status between passes as the API server would.
pub struct Runner {
    resources: DemoResources,
    personio: PersonioClient,
    reteach: ReteachClient,
    employee_settings: EmployeeSettings,
    certificate_cadence: Cadence,
    ledger: MemoryLedgerStore,
    /// `status` of the EmployeeSync after the latest pass.
    pub employee_status: EmployeeSyncStatus,
    /// `status` of the CertificateSync after the latest pass.
    pub certificate_status: CertificateSyncStatus,
}

impl Runner {
    /// Validates the spec values the controllers validate and keeps the clients for all passes
    /// (the controller caches them per tenant too, so tokens survive between runs).
    pub fn new(
        resources: DemoResources,
        personio: PersonioClient,
        reteach: ReteachClient,
    ) -> Result<Self, PassError> {
        let employee_settings =
            EmployeeSettings::from_spec(&resources.employee_sync.spec, MINIMUM_INTERVAL)?;
        let certificate_cadence =
            CertificateSettings::from_spec(&resources.certificate_sync.spec, MINIMUM_INTERVAL)?
                .cadence;
        Ok(Self {
            resources,
            personio,
            reteach,
            employee_settings,
            certificate_cadence,
            ledger: MemoryLedgerStore::default(),
            employee_status: EmployeeSyncStatus::default(),
            certificate_status: CertificateSyncStatus::default(),
        })
    }

    /// The company time zone (`spec.timeZone` of the EmployeeSync).
    pub fn time_zone(&self) -> Tz {
        self.employee_settings.time_zone.get()
    }

    /// The resources the passes run for.
    pub fn resources(&self) -> &DemoResources {
        &self.resources
    }

    /// One EmployeeSync run followed by one CertificateSync run, starting at `now`.
    pub async fn pass(&mut self, now: DateTime<Utc>) -> Result<PassOutcome, PassError> {
        let employees = self.employee_sync(now).await?;
        let (certificates, category_id) = self.certificate_sync(Utc::now()).await?;
        Ok(PassOutcome {
            employees,
            certificates,
            category_id,
        })
    }

    async fn employee_sync(&mut self, now: DateTime<Utc>) -> Result<EmployeeJobOutcome, PassError> {
        // The controller's own rule: full on the first run and once per fullResyncInterval.
        let request = EmployeeRunRequest {
            now,
            dry_run: self.resources.employee_sync.spec.dry_run,
            force_full: false,
            guard: None,
        };
        let input = employee_input(&self.employee_status, &self.employee_settings, request);
        let mut outcome = run_employee_sync(&self.personio, &self.reteach, &input)
            .await
            .map_err(PassError::EmployeeSync)?;
        outcome.summary.finished_at = Some(Utc::now());
        let run = RunContext::first_run(now);
        employee_status_after_success(
            &mut self.employee_status,
            &run,
            self.employee_settings.cadence.interval.get(),
            &outcome,
        );
        Ok(outcome)
    }

    async fn certificate_sync(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<(CertificateJobOutcome, i64), PassError> {
        // The controller's precondition: the referenced EmployeeSync has succeeded once.
        if self
            .employee_status
            .common
            .last_successful_sync_time
            .is_none()
        {
            return Err(PassError::Waiting);
        }
        let spec = &self.resources.certificate_sync.spec;
        let category_id = resolve_category(&self.personio, &spec.document_category)
            .await
            .map_err(PassError::CertificateSync)?;
        let request = CertificateRunRequest {
            now,
            tz: self.time_zone(),
            category_id,
            full_resync_interval: chrono_duration(self.certificate_cadence.full_resync_interval),
            requested: false,
            linked_since: None,
        };
        let input = CertificateJobInput::new(
            spec,
            &self.certificate_status.ledger,
            request,
            &self.ledger,
            CancellationToken::new(),
        );
        let mut outcome = run_certificate_sync(&self.personio, &self.reteach, &input)
            .await
            .map_err(PassError::CertificateSync)?;
        outcome.summary.finished_at = Some(Utc::now());
        let run = RunContext::first_run(now);
        certificate_status_after_success(
            &mut self.certificate_status,
            &run,
            self.certificate_cadence.interval.get(),
            &outcome,
            category_id,
        );
        Ok((outcome, category_id))
    }
}
