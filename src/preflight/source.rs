//! Where the resource to check comes from: the cluster (the resource and its Secrets, read with the
//! user's kubeconfig), a YAML file with the credentials in environment variables, or — in the
//! operator — the spec and credentials a run has just checked and read ([`Subject::checked`]).
//! The first two check the upstream policy after reading the spec and before reading any
//! credential, with the sentence a run's condition would carry.

use std::path::PathBuf;

use kube::{Api, Client};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{
    CaBundleRef, CertificateSync, DocumentCategoryRef, EmployeeSync, EmployeeSyncSpec,
};
use crate::credentials::{CredentialsError, PersonioCredentials, ReteachCredentials, SecretReader};
use crate::jobs::allowlist::{UpstreamPolicy, UpstreamRefused};

/// Environment variables the file source reads the credentials from.
pub const PERSONIO_CLIENT_ID: &str = "PERSONIO_CLIENT_ID";
pub const PERSONIO_CLIENT_SECRET: &str = "PERSONIO_CLIENT_SECRET";
pub const RETEACH_CLIENT_ID: &str = "RETEACH_CLIENT_ID";
pub const RETEACH_CLIENT_SECRET: &str = "RETEACH_CLIENT_SECRET";
pub const RETEACH_CLIENT_CODE: &str = "RETEACH_CLIENT_CODE";
/// Optional PEM files for a spec that sets a `caBundleRef` (file source only).
pub const PERSONIO_CA_FILE: &str = "PERSONIO_CA_FILE";
pub const RETEACH_CA_FILE: &str = "RETEACH_CA_FILE";

/// Credentials of one side, or the sentence saying why they could not be read (it becomes the
/// token row's detail, so a missing Secret shows up in the table like any other missing right).
pub type Loaded<T> = Result<T, String>;

/// Everything a preflight needs about one resource.
#[derive(Debug)]
pub struct Subject {
    /// `EmployeeSync ns/name` or `CertificateSync ns/name (EmployeeSync ns/ref)`.
    pub resource: String,
    /// The EmployeeSync (the resource itself, or the one a CertificateSync references).
    pub employee_sync: EmployeeSyncSpec,
    /// The CertificateSync's document category; `None` for an EmployeeSync.
    pub category: Option<DocumentCategoryRef>,
    /// Personio credentials and the CA bundle the spec asks for.
    pub personio: Side<(PersonioCredentials, Option<Vec<u8>>)>,
    /// reteach app credentials and the CA bundle the spec asks for.
    pub reteach: Side<(ReteachCredentials, Option<Vec<u8>>)>,
}

/// One upstream's credentials in a [`Subject`]: as loaded, and where they live.
#[derive(Debug)]
pub struct Side<T> {
    /// The credentials (and CA bundle), or why they could not be read.
    pub loaded: Loaded<T>,
    /// Where the credentials live, for advice.
    pub hint: String,
}

/// Why a subject could not be assembled at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The `kind/name` argument is not one of ours.
    #[error("{0:?} is not a resource; use employeesync/NAME or certificatesync/NAME")]
    BadResource(String),
    /// The resource (or the EmployeeSync it references) does not exist.
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },
    /// The apiserver refused or failed the read.
    #[error("cannot read {kind} {namespace}/{name}: {message}")]
    Kube {
        kind: &'static str,
        namespace: String,
        name: String,
        message: String,
    },
    /// The file is unreadable or holds an invalid resource.
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    /// The file holds no resource to check, or several without `--name`.
    #[error("{0}")]
    Choice(String),
    /// A base URL the upstream policy refuses (checked before any credential is read).
    #[error("{0}")]
    NotAllowed(#[from] UpstreamRefused),
}

/// Which kind a `kind/name` argument names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `employeesync/NAME` (short name `esync`).
    EmployeeSync,
    /// `certificatesync/NAME` (short name `csync`).
    CertificateSync,
}

/// Parses `employeesync/NAME` or `certificatesync/NAME` (also the short names and the
/// `kind.group` forms kubectl prints).
pub fn parse_resource(argument: &str) -> Result<(Kind, String), SourceError> {
    let bad = || SourceError::BadResource(argument.to_string());
    let (kind, name) = argument.split_once('/').ok_or_else(bad)?;
    let kind = kind
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let kind = match kind.as_str() {
        "employeesync" | "employeesyncs" | "esync" => Kind::EmployeeSync,
        "certificatesync" | "certificatesyncs" | "csync" => Kind::CertificateSync,
        _ => return Err(bad()),
    };
    if name.trim().is_empty() {
        return Err(bad());
    }
    Ok((kind, name.trim().to_string()))
}

/// Reads the resource and the EmployeeSync it borrows credentials from, checks the EmployeeSync's
/// base URLs against `policy` and only then reads their Secrets.
pub async fn from_cluster(
    client: Client,
    namespace: &str,
    kind: Kind,
    name: &str,
    policy: &UpstreamPolicy,
) -> Result<Subject, SourceError> {
    let (resource, employee_name, category) = match kind {
        Kind::EmployeeSync => (
            format!("EmployeeSync {namespace}/{name}"),
            name.to_string(),
            None,
        ),
        Kind::CertificateSync => {
            let api: Api<CertificateSync> = Api::namespaced(client.clone(), namespace);
            let sync = get(&api, "CertificateSync", namespace, name).await?;
            let reference = sync.spec.employee_sync_ref.name.clone();
            (
                format!(
                    "CertificateSync {namespace}/{name} (EmployeeSync {namespace}/{reference})"
                ),
                reference,
                Some(sync.spec.document_category),
            )
        }
    };
    let api: Api<EmployeeSync> = Api::namespaced(client.clone(), namespace);
    let employee_sync = get(&api, "EmployeeSync", namespace, &employee_name)
        .await?
        .spec;
    // Before any Secret is read, as in a run.
    policy.check_spec(&employee_sync)?;
    let secrets = SecretReader::new(client, namespace);
    let side = &employee_sync.personio;
    let personio = secrets.personio(&side.credentials_secret_ref).await;
    let personio = secrets
        .with_ca_bundle(personio, &side.ca_bundle_ref, "personio")
        .await;
    let side = &employee_sync.reteach;
    let reteach = secrets.reteach(&side.credentials_secret_ref).await;
    let reteach = secrets
        .with_ca_bundle(reteach, &side.ca_bundle_ref, "reteach")
        .await;
    let (personio_hint, reteach_hint) = secret_hints(namespace, &employee_sync);
    Ok(Subject {
        resource,
        category,
        personio: Side {
            loaded: personio.map_err(|e: CredentialsError| e.to_string()),
            hint: personio_hint,
        },
        reteach: Side {
            loaded: reteach.map_err(|e: CredentialsError| e.to_string()),
            hint: reteach_hint,
        },
        employee_sync,
    })
}

/// Where the credentials of `spec` live: the Personio and the reteach Secret keys.
fn secret_hints(namespace: &str, spec: &EmployeeSyncSpec) -> (String, String) {
    let personio = &spec.personio.credentials_secret_ref;
    let reteach = &spec.reteach.credentials_secret_ref;
    (
        format!(
            "the keys {} and {} of Secret {namespace}/{}",
            personio.client_id_key, personio.client_secret_key, personio.name
        ),
        format!(
            "the keys {}, {} and {} of Secret {namespace}/{}",
            reteach.client_id_key, reteach.client_secret_key, reteach.client_code_key, reteach.name
        ),
    )
}

/// The credentials (and CA bundles) of both sides exactly as a run read them.
#[derive(Clone, Debug)]
pub struct CheckedCredentials {
    /// Personio credentials and the CA bundle the spec asks for.
    pub personio: (PersonioCredentials, Option<Vec<u8>>),
    /// reteach app credentials and the CA bundle the spec asks for.
    pub reteach: (ReteachCredentials, Option<Vec<u8>>),
}

impl Subject {
    /// The subject of the operator's probes: the EmployeeSync a run has just checked against the
    /// upstream policy and the credentials it read, nothing read again. (A second read could find
    /// another `employeeSyncRef` or `baseUrl` than the one checked.) `name` is the resource's own
    /// name; `category` is the CertificateSync's (`None` for an EmployeeSync).
    pub fn checked(
        namespace: &str,
        name: &str,
        employee_sync: &EmployeeSync,
        category: Option<&DocumentCategoryRef>,
        credentials: &CheckedCredentials,
    ) -> Subject {
        let employee_name = employee_sync.metadata.name.as_deref().unwrap_or_default();
        let resource = match category {
            None => format!("EmployeeSync {namespace}/{name}"),
            Some(_) => format!(
                "CertificateSync {namespace}/{name} (EmployeeSync {namespace}/{employee_name})"
            ),
        };
        let (personio_hint, reteach_hint) = secret_hints(namespace, &employee_sync.spec);
        Subject {
            resource,
            employee_sync: employee_sync.spec.clone(),
            category: category.cloned(),
            personio: Side {
                loaded: Ok(credentials.personio.clone()),
                hint: personio_hint,
            },
            reteach: Side {
                loaded: Ok(credentials.reteach.clone()),
                hint: reteach_hint,
            },
        }
    }
}

async fn get<K>(
    api: &Api<K>,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> Result<K, SourceError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(Some(object)) => Ok(object),
        Ok(None) => Err(SourceError::NotFound {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }),
        Err(error) => Err(SourceError::Kube {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            message: error.to_string(),
        }),
    }
}

/// Reads the resource from YAML files (one or more documents each; other kinds such as Secrets
/// are ignored, so `examples/` files work as they are), checks its base URLs against `policy`,
/// and reads the credentials from `env`.
///
/// Without `name`, the CertificateSync is checked when the files hold exactly one (its
/// EmployeeSync must be in the files too), else the only EmployeeSync.
pub fn from_file(
    paths: &[PathBuf],
    name: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    policy: &UpstreamPolicy,
) -> Result<Subject, SourceError> {
    let shown = paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (employee_syncs, certificate_syncs) = read_documents(paths)?;
    let named =
        |object_name: &Option<String>| name.is_none_or(|n| object_name.as_deref() == Some(n));
    let certificate = certificate_syncs
        .into_iter()
        .filter(|sync| named(&sync.metadata.name))
        .collect::<Vec<_>>();
    let (resource, employee_name, category) = match certificate.as_slice() {
        [sync] => {
            let own = object_name(&sync.metadata.name);
            let reference = sync.spec.employee_sync_ref.name.clone();
            (
                format!("CertificateSync {own} (EmployeeSync {reference}) from {shown}"),
                Some(reference),
                Some(sync.spec.document_category.clone()),
            )
        }
        [] => (String::new(), name.map(str::to_string), None),
        _ => {
            return Err(SourceError::Choice(format!(
                "{shown} holds several CertificateSyncs; choose one with --name"
            )))
        }
    };
    let employee_sync = only_employee_sync(&employee_syncs, employee_name.as_deref(), &shown)?;
    let resource = if resource.is_empty() {
        let own = object_name(&employee_sync.metadata.name);
        format!("EmployeeSync {own} from {shown}")
    } else {
        resource
    };
    let spec = employee_sync.spec.clone();
    policy.check_spec(&spec)?;
    Ok(Subject {
        resource,
        category,
        personio: Side {
            loaded: personio_from_env(env, &spec),
            hint: format!("{PERSONIO_CLIENT_ID} and {PERSONIO_CLIENT_SECRET}"),
        },
        reteach: Side {
            loaded: reteach_from_env(env, &spec),
            hint: format!("{RETEACH_CLIENT_ID}, {RETEACH_CLIENT_SECRET} and {RETEACH_CLIENT_CODE}"),
        },
        employee_sync: spec,
    })
}

/// The EmployeeSyncs and CertificateSyncs of YAML files (other kinds are ignored).
fn read_documents(
    paths: &[PathBuf],
) -> Result<(Vec<EmployeeSync>, Vec<CertificateSync>), SourceError> {
    let mut employee_syncs = Vec::new();
    let mut certificate_syncs = Vec::new();
    for path in paths {
        let file_error = |message: String| SourceError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).map_err(|e| file_error(e.to_string()))?;
            match value.get("kind").and_then(Value::as_str) {
                Some("EmployeeSync") => employee_syncs.push(
                    serde_json::from_value::<EmployeeSync>(value)
                        .map_err(|e| file_error(format!("EmployeeSync: {e}")))?,
                ),
                Some("CertificateSync") => certificate_syncs.push(
                    serde_json::from_value::<CertificateSync>(value)
                        .map_err(|e| file_error(format!("CertificateSync: {e}")))?,
                ),
                _ => {}
            }
        }
    }
    Ok((employee_syncs, certificate_syncs))
}

/// The one EmployeeSync named `wanted` (any, without a name) in the files `shown`.
fn only_employee_sync<'a>(
    employee_syncs: &'a [EmployeeSync],
    wanted: Option<&str>,
    shown: &str,
) -> Result<&'a EmployeeSync, SourceError> {
    let candidates: Vec<&EmployeeSync> = employee_syncs
        .iter()
        .filter(|sync| wanted.is_none_or(|wanted| sync.metadata.name.as_deref() == Some(wanted)))
        .collect();
    match candidates.as_slice() {
        [sync] => Ok(*sync),
        [] => Err(SourceError::Choice(format!(
            "{shown} holds no matching EmployeeSync{}",
            wanted.map(|n| format!(" named {n:?}")).unwrap_or_default()
        ))),
        _ => Err(SourceError::Choice(format!(
            "{shown} holds several EmployeeSyncs; choose one with --name"
        ))),
    }
}

/// The Personio credentials (and CA bundle) of `spec` from the environment.
fn personio_from_env(
    env: &dyn Fn(&str) -> Option<String>,
    spec: &EmployeeSyncSpec,
) -> Loaded<(PersonioCredentials, Option<Vec<u8>>)> {
    let values = env_credentials(env, &[PERSONIO_CLIENT_ID, PERSONIO_CLIENT_SECRET])?;
    let ca = ca_file(env, PERSONIO_CA_FILE, spec.personio.ca_bundle_ref.as_ref())?;
    Ok((
        PersonioCredentials::new(values[0].clone(), values[1].clone()),
        ca,
    ))
}

/// The reteach credentials (and CA bundle) of `spec` from the environment.
fn reteach_from_env(
    env: &dyn Fn(&str) -> Option<String>,
    spec: &EmployeeSyncSpec,
) -> Loaded<(ReteachCredentials, Option<Vec<u8>>)> {
    let names = [
        RETEACH_CLIENT_ID,
        RETEACH_CLIENT_SECRET,
        RETEACH_CLIENT_CODE,
    ];
    let values = env_credentials(env, &names)?;
    let ca = ca_file(env, RETEACH_CA_FILE, spec.reteach.ca_bundle_ref.as_ref())?;
    Ok((
        ReteachCredentials::new(values[0].clone(), values[1].clone(), values[2].clone()),
        ca,
    ))
}

fn object_name(name: &Option<String>) -> String {
    name.clone().unwrap_or_else(|| "(unnamed)".to_string())
}

/// The values of `names` (trimmed), or a sentence naming the unset ones.
fn env_credentials(env: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Loaded<Vec<String>> {
    let values: Vec<Option<String>> = names
        .iter()
        .map(|name| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
        .collect();
    let unset: Vec<&str> = names
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect();
    if unset.is_empty() {
        Ok(values.into_iter().flatten().collect())
    } else {
        Err(format!(
            "environment variable(s) {} not set",
            unset.join(", ")
        ))
    }
}

/// The PEM bundle a spec asks for, from the file named by `variable`.
fn ca_file(
    env: &dyn Fn(&str) -> Option<String>,
    variable: &str,
    reference: Option<&CaBundleRef>,
) -> Loaded<Option<Vec<u8>>> {
    let Some(reference) = reference else {
        return Ok(None);
    };
    let Some(path) = env(variable) else {
        return Err(format!(
            "the spec trusts the CA bundle in Secret {} key {}; set {variable} to a file holding it",
            reference.name, reference.key
        ));
    };
    std::fs::read(&path)
        .map(Some)
        .map_err(|e| format!("cannot read {variable}={path}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubectl_style_resource_arguments() {
        assert_eq!(
            parse_resource("csync/certs").unwrap(),
            (Kind::CertificateSync, "certs".to_string())
        );
        assert_eq!(
            parse_resource("employeesyncs.sync.reteach.io/personio").unwrap(),
            (Kind::EmployeeSync, "personio".to_string())
        );
        assert!(parse_resource("personio").is_err());
        assert!(parse_resource("secret/x").is_err());
        assert!(parse_resource("esync/").is_err());
    }
}
