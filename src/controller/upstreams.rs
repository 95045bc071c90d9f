//! The upstream clients of an EmployeeSync, built from its spec and Secrets: its own runs use
//! them, and so do the CertificateSyncs that name it and webhook registration.

use std::sync::Arc;

use super::context::Context;
use crate::api::EmployeeSync;
use crate::credentials::SecretReader;
use crate::jobs::run_failure::RunFailure;
use crate::personio::PersonioApi;
use crate::preflight::CheckedCredentials;
use crate::reteach::ReteachApi;

/// Both clients of an EmployeeSync, with the EmployeeSync and the credentials they were built from
/// (the preflight probes use exactly these: see [`super::capabilities`]).
pub struct Upstreams {
    /// The Personio client (cached per tenant).
    pub personio: Arc<dyn PersonioApi>,
    /// The reteach client (cached per tenant).
    pub reteach: Arc<dyn ReteachApi>,
    /// The EmployeeSync whose spec passed the upstream policy.
    pub employee_sync: EmployeeSync,
    /// The credentials read from its Secrets.
    pub credentials: CheckedCredentials,
}

/// Both clients of an EmployeeSync, built from its spec and Secrets (also used by CertificateSync
/// and webhook registration).
pub async fn upstream_clients(
    ctx: &Context,
    namespace: &str,
    sync: &EmployeeSync,
) -> Result<(Arc<dyn PersonioApi>, Arc<dyn ReteachApi>), RunFailure> {
    let upstreams = checked_upstreams(ctx, namespace, sync).await?;
    Ok((upstreams.personio, upstreams.reteach))
}

/// [`upstream_clients`] with the EmployeeSync and the credentials they were built from, for a run
/// that may run the preflight probes on exactly those.
pub async fn checked_upstreams(
    ctx: &Context,
    namespace: &str,
    sync: &EmployeeSync,
) -> Result<Upstreams, RunFailure> {
    let spec = &sync.spec;
    // Before any Secret is read: a resource pointing elsewhere never gets its Secret's values.
    ctx.tunables.upstream.check_spec(spec)?;
    let secrets = SecretReader::new(ctx.client.clone(), namespace);
    let personio_side = &spec.personio;
    let personio_credentials = secrets
        .personio(&personio_side.credentials_secret_ref)
        .await;
    let (personio_credentials, personio_ca) = secrets
        .with_ca_bundle(
            personio_credentials,
            &personio_side.ca_bundle_ref,
            "personio",
        )
        .await?;
    let reteach_side = &spec.reteach;
    let reteach_credentials = secrets.reteach(&reteach_side.credentials_secret_ref).await;
    let (reteach_credentials, reteach_ca) = secrets
        .with_ca_bundle(reteach_credentials, &reteach_side.ca_bundle_ref, "reteach")
        .await?;
    let personio =
        ctx.upstreams
            .personio(personio_side, &personio_credentials, personio_ca.clone())?;
    let reteach = ctx
        .upstreams
        .reteach(reteach_side, &reteach_credentials, reteach_ca.clone())?;
    Ok(Upstreams {
        personio,
        reteach,
        employee_sync: sync.clone(),
        credentials: CheckedCredentials {
            personio: (personio_credentials, personio_ca),
            reteach: (reteach_credentials, reteach_ca),
        },
    })
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
