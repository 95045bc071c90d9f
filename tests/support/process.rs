//! Harness for process-level end-to-end tests: the operator binary as a real subprocess against the
//! test apiserver, the Personio and reteach simulators on loopback in the test process, and one
//! namespace per test holding the Secrets and sync resources that point at them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::Client;
use reteach_personio_operator::api::{CertificateSync, EmployeeSync};
use reteach_personio_operator::clock::SystemClock;
use reteach_personio_operator::sim::personio::{EmployeeSeed, PersonioSim, PersonioSimConfig};
use reteach_personio_operator::sim::reteach::{ReteachSim, SimCredentials, SimCustomer};
use reteach_personio_operator::sim::RunningSim;
use reteach_personio_operator::sync::has_marker;
use serde_json::Value;
use tokio::process::{Child, Command};

use super::{apply_path, kubeconfig_path, poll_until, try_apply_yaml, wait_crd_established};

/// Name of the EmployeeSync every [`Tenant`] applies.
pub const EMPLOYEE_SYNC: &str = "personio";
/// Name of the CertificateSync every [`Tenant`] applies.
pub const CERTIFICATE_SYNC: &str = "certificates";
/// Name of the Personio document category the certificates go to.
pub const CATEGORY: &str = "Learning Certificates";
/// Time to wait for a sync that involves a few dozen paced uploads.
pub const LONG_WAIT: Duration = Duration::from_secs(180);

/// Applies `crds/` and waits until both APIs are served. Safe to call from every test at once.
pub async fn install_crds(client: &Client) {
    apply_path(client, super::repo_root().join("crds"), None).await;
    for crd in [
        "employeesyncs.sync.reteach.io",
        "certificatesyncs.sync.reteach.io",
    ] {
        wait_crd_established(client, crd).await;
    }
}

/// A loopback port that was free a moment ago, for a child process to listen on.
///
/// Chosen below Linux's ephemeral range (32768–60999), where neither `bind(0)` (the simulators,
/// other tests) nor outgoing connections pick ports, so nothing in this process can take it
/// between now and the child's bind; each call of a test binary gets a different port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % SPAN;
    for _ in 0..SPAN {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) % SPAN;
        let port = u16::try_from(FIRST + offset).unwrap_or_else(|e| panic!("port: {e}"));
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN)
}

/// How to start one operator process.
#[derive(Clone, Debug)]
pub struct OperatorOptions {
    /// The only namespace it watches.
    pub namespace: String,
    /// `text` or `json`.
    pub log_format: &'static str,
    /// `RUST_LOG`.
    pub rust_log: String,
    /// `Some(identity)` turns leader election on, with the Lease in `namespace`.
    pub leader_identity: Option<String>,
    /// `--watch-label-selector` (a shard).
    pub label_selector: Option<String>,
    /// `--webhook-endpoints`: the receiver runs on a free port and the syncing process points
    /// this EndpointSlice (in `namespace`) at `POD_IP=127.0.0.1`.
    pub webhook_endpoints: Option<String>,
}

impl OperatorOptions {
    /// Watches `namespace`, text logs at `info`, no leader election.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            log_format: "text",
            rust_log: "info".to_string(),
            leader_identity: None,
            label_selector: None,
            webhook_endpoints: None,
        }
    }

    /// The webhook receiver on, routed through the EndpointSlice `name`.
    pub fn webhook_endpoints(mut self, name: &str) -> Self {
        self.webhook_endpoints = Some(name.to_string());
        self
    }

    /// Only resources matching `selector` (`--watch-label-selector`).
    pub fn label_selector(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    /// JSON or text logs.
    pub fn log_format(mut self, format: &'static str) -> Self {
        self.log_format = format;
        self
    }

    /// `RUST_LOG` of the process.
    pub fn rust_log(mut self, filter: &str) -> Self {
        self.rust_log = filter.to_string();
        self
    }

    /// Leader election on, with this identity (`POD_NAME`).
    pub fn leader(mut self, identity: &str) -> Self {
        self.leader_identity = Some(identity.to_string());
        self
    }
}

/// Name of the Lease the processes of these tests compete for.
pub const LEASE_NAME: &str = "rpo-e2e-leader";

static STARTED: AtomicUsize = AtomicUsize::new(0);

/// A running operator binary; killed when dropped.
pub struct OperatorProcess {
    child: Child,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub http_addr: SocketAddr,
    /// Captured standard output.
    pub stdout: PathBuf,
    /// Captured standard error.
    pub stderr: PathBuf,
    http: reqwest::Client,
}

impl OperatorProcess {
    /// Starts `reteach-personio-operator run` with its output captured under `log_dir`.
    pub fn spawn(options: &OperatorOptions, log_dir: &Path) -> Self {
        let http_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let serial = STARTED.fetch_add(1, Ordering::SeqCst);
        let stdout = log_dir.join(format!("operator-{serial}.stdout"));
        let stderr = log_dir.join(format!("operator-{serial}.stderr"));
        let create = |path: &Path| {
            std::fs::File::create(path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()))
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_reteach-personio-operator"));
        command
            .arg("run")
            .arg("--metrics-addr")
            .arg(http_addr.to_string())
            .arg("--minimum-interval")
            .arg("1s")
            .arg("--watch-namespace")
            .arg(&options.namespace)
            // The simulators listen on plain http on loopback.
            .arg("--allowed-upstream-hosts")
            .arg("127.0.0.1")
            .arg("--allow-insecure-http")
            .arg("--log-format")
            .arg(options.log_format)
            // Restarts must resume at once here (crash tests kill mid-run); the spread itself is
            // covered by `controller::pacing`'s tests and the benchmark.
            .arg("--startup-spread")
            .arg("0s")
            // Takeovers of an in-flight upload wait this long (production: 2 minutes); an upload
            // to the simulators takes milliseconds.
            .arg("--handover-grace")
            .arg("3s")
            .env("KUBECONFIG", kubeconfig_path())
            .env("RUST_LOG", &options.rust_log)
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(create(&stdout))
            .stderr(create(&stderr))
            .kill_on_drop(true);
        if let Some(slice) = &options.webhook_endpoints {
            command
                .arg("--webhook-addr")
                .arg(format!("127.0.0.1:{}", free_port()))
                .arg("--webhook-endpoints")
                .arg(slice)
                .env("POD_NAMESPACE", &options.namespace)
                .env("POD_IP", "127.0.0.1");
        }
        if let Some(selector) = &options.label_selector {
            command.arg("--watch-label-selector").arg(selector);
        }
        if let Some(identity) = &options.leader_identity {
            command
                .arg("--leader-election")
                .arg("--lease-namespace")
                .arg(&options.namespace)
                .arg("--lease-name")
                .arg(LEASE_NAME)
                .arg("--lease-duration-seconds")
                .arg("4")
                .env("POD_NAME", identity);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the operator binary: {e}"));
        Self {
            child,
            http_addr,
            stdout,
            stderr,
            http: reqwest::Client::new(),
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child
            .id()
            .unwrap_or_else(|| panic!("the operator process has already been reaped"))
    }

    /// SIGKILL, then reap.
    pub async fn kill(&mut self) {
        self.child
            .kill()
            .await
            .unwrap_or_else(|e| panic!("cannot kill the operator: {e}"));
    }

    /// SIGTERM, then waits up to `bound` for the exit; panics when it does not exit in time.
    pub async fn terminate(&mut self, bound: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(sent.success(), "kill -TERM {pid} failed");
        match tokio::time::timeout(bound, self.child.wait()).await {
            Ok(status) => status.unwrap_or_else(|e| panic!("cannot wait for the operator: {e}")),
            Err(_) => panic!(
                "the operator did not exit within {bound:?} after SIGTERM; logs:\n{}",
                self.logs()
            ),
        }
    }

    /// `None` while running, the exit status once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("cannot poll the operator: {e}"))
    }

    /// Standard output followed by standard error.
    pub fn logs(&self) -> String {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        format!("{}{}", read(&self.stdout), read(&self.stderr))
    }

    /// GET on the operator's HTTP server: `(status, body)`, `None` when it does not answer.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = self
            .http
            .get(format!("http://{}{path}", self.http_addr))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// Waits until `/readyz` answers 200 (the watches run).
    pub async fn wait_ready(&mut self) {
        let what = "the operator's /readyz to answer 200";
        let timeout = super::WAIT;
        let ready = tokio::time::timeout(timeout, async {
            loop {
                if let Some(status) = self.exited() {
                    return Err(status);
                }
                if matches!(self.get("/readyz").await, Some((200, _))) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(status)) => panic!("the operator exited ({status}); logs:\n{}", self.logs()),
            Err(_) => panic!("timed out waiting for {what}; logs:\n{}", self.logs()),
        }
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        match self.get("/metrics").await {
            Some((200, body)) => body,
            other => panic!("/metrics did not answer 200: {other:?}"),
        }
    }
}

/// Sum of the samples of every series whose name starts with `metric` in a Prometheus text body.
pub fn metric_sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#') && line.starts_with(metric))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Holder of the leader Lease in `namespace`.
pub async fn lease_holder(client: &Client, namespace: &str) -> Option<String> {
    let lease = Api::<Lease>::namespaced(client.clone(), namespace)
        .get_opt(LEASE_NAME)
        .await
        .ok()??;
    lease.spec?.holder_identity
}

/// Credentials of the simulators (the leak test seeds distinctive ones).
#[derive(Clone, Debug)]
pub struct TenantCredentials {
    /// Personio client id and secret.
    pub personio: (String, String),
    /// reteach client id, secret and code.
    pub reteach: SimCredentials,
}

impl Default for TenantCredentials {
    fn default() -> Self {
        let personio = PersonioSimConfig::default();
        Self {
            personio: (personio.client_id, personio.client_secret),
            reteach: SimCredentials::default(),
        }
    }
}

/// One academy: both simulators on loopback, and its Secrets and sync resources in a namespace.
pub struct Tenant {
    /// Namespace of the Secrets and resources.
    pub namespace: String,
    /// The Personio simulator.
    pub personio: PersonioSim,
    /// The reteach simulator.
    pub reteach: ReteachSim,
    /// Credentials both simulators accept (and the Secrets hold).
    pub credentials: TenantCredentials,
    personio_server: RunningSim,
    reteach_server: RunningSim,
}

impl Tenant {
    /// Starts both simulators (Personio's server-side rate limits off: the client paces itself)
    /// and applies the Secrets into `namespace`.
    pub async fn start(client: &Client, namespace: &str, credentials: TenantCredentials) -> Self {
        let personio = PersonioSim::new(PersonioSimConfig {
            client_id: credentials.personio.0.clone(),
            client_secret: credentials.personio.1.clone(),
            rate_limits: None,
            ..PersonioSimConfig::default()
        });
        personio.add_category(CATEGORY);
        let reteach =
            ReteachSim::with_credentials(Arc::new(SystemClock), credentials.reteach.clone());
        let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
        let personio_server = personio
            .start(loopback)
            .await
            .unwrap_or_else(|e| panic!("cannot start the Personio simulator: {e}"));
        let reteach_server = reteach
            .start(loopback)
            .await
            .unwrap_or_else(|e| panic!("cannot start the reteach simulator: {e}"));
        let tenant = Self {
            namespace: namespace.to_string(),
            personio,
            reteach,
            credentials,
            personio_server,
            reteach_server,
        };
        tenant.apply(client, &tenant.secrets_yaml()).await;
        tenant
    }

    async fn apply(&self, client: &Client, yaml: &str) {
        try_apply_yaml(client, yaml, Some(&self.namespace))
            .await
            .unwrap_or_else(|e| panic!("cannot apply into {}: {e}\n{yaml}", self.namespace));
    }

    fn secrets_yaml(&self) -> String {
        let (id, secret) = &self.credentials.personio;
        let reteach = &self.credentials.reteach;
        format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: personio-api, labels: {{sync.reteach.io/credentials: "true"}}}}
stringData: {{clientId: "{id}", clientSecret: "{secret}"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: reteach-api, labels: {{sync.reteach.io/credentials: "true"}}}}
stringData: {{clientId: "{}", clientSecret: "{}", clientCode: "{}"}}
"#,
            reteach.client_id, reteach.client_secret, reteach.client_code
        )
    }

    /// Applies the EmployeeSync `personio` running every `interval`.
    pub async fn apply_employee_sync(&self, client: &Client, interval: &str) {
        let yaml = format!(
            r#"apiVersion: sync.reteach.io/v1alpha1
kind: EmployeeSync
metadata: {{name: {EMPLOYEE_SYNC}}}
spec:
  interval: {interval}
  timeZone: Europe/Berlin
  personio:
    baseUrl: {}
    allowInsecureHttp: true
    credentialsSecretRef: {{name: personio-api}}
  reteach:
    baseUrl: {}
    allowInsecureHttp: true
    credentialsSecretRef: {{name: reteach-api}}
"#,
            self.personio_server.base_url(),
            self.reteach_server.base_url()
        );
        self.apply(client, &yaml).await;
    }

    /// Applies the CertificateSync `certificates` running every `interval`.
    pub async fn apply_certificate_sync(&self, client: &Client, interval: &str) {
        let yaml = format!(
            r#"apiVersion: sync.reteach.io/v1alpha1
kind: CertificateSync
metadata: {{name: {CERTIFICATE_SYNC}}}
spec:
  interval: {interval}
  employeeSyncRef: {{name: {EMPLOYEE_SYNC}}}
  documentCategory: {{name: {CATEGORY}}}
  title: "Certificate: {{course}}"
"#
        );
        self.apply(client, &yaml).await;
    }

    /// Adds `count` active employees to Personio; returns their ids.
    pub fn seed_employees(&self, count: usize, tag: &str) -> Vec<i64> {
        (0..count)
            .map(|i| {
                self.personio.add_employee(EmployeeSeed::new(
                    &format!("First{tag}{i}"),
                    &format!("Last{tag}{i}"),
                    &format!("employee{i}.{tag}@example.test"),
                ))
            })
            .collect()
    }

    /// Adds `count` completed courses with ready PDFs, spread over `employees` (who must exist in
    /// reteach with their Personio id as externalId); returns `(certificate id, personio id)`.
    pub fn seed_certificates(&self, employees: &[i64], count: usize) -> Vec<(String, i64)> {
        let start = chrono::Utc::now() - chrono::Duration::days(400);
        (0..count)
            .map(|i| {
                let owner = employees[i % employees.len()];
                let completed = start + chrono::Duration::hours(i as i64 * 7);
                let seeded = self
                    .reteach
                    .add_completion(&owner.to_string(), &format!("Course {i}"), completed, true)
                    .unwrap_or_else(|| panic!("employee {owner} is not in reteach"));
                (seeded.certificate_id, owner)
            })
            .collect()
    }

    /// Documents in Personio carrying the marker of `certificate_id`, as owner ids.
    pub fn document_owners(&self, certificate_id: &str) -> Vec<i64> {
        self.personio
            .documents()
            .iter()
            .filter(|d| has_marker(d.comment.as_deref(), certificate_id))
            .map(|d| d.owner_id)
            .collect()
    }

    /// Asserts every certificate is in Personio exactly once, at the right employee.
    pub fn assert_each_certificate_once(&self, certificates: &[(String, i64)]) {
        for (certificate, owner) in certificates {
            assert_eq!(
                self.document_owners(certificate),
                vec![*owner],
                "certificate {certificate} must be in Personio exactly once, at employee {owner}"
            );
        }
        assert_eq!(
            self.personio.documents().len(),
            certificates.len(),
            "Personio holds documents that are no seeded certificate"
        );
    }

    /// reteach customers whose externalId is `personio_id`.
    pub fn customers_with_external_id(&self, personio_id: i64) -> Vec<SimCustomer> {
        let id = personio_id.to_string();
        self.reteach
            .customers()
            .into_iter()
            .filter(|c| c.external_id.as_deref() == Some(id.as_str()))
            .collect()
    }

    /// The EmployeeSync as JSON.
    pub async fn employee_sync(&self, client: &Client) -> Value {
        let api = Api::<EmployeeSync>::namespaced(client.clone(), &self.namespace);
        let sync = api
            .get(EMPLOYEE_SYNC)
            .await
            .unwrap_or_else(|e| panic!("cannot read the EmployeeSync: {e}"));
        serde_json::to_value(sync).unwrap_or_default()
    }

    /// The CertificateSync as JSON.
    pub async fn certificate_sync(&self, client: &Client) -> Value {
        let api = Api::<CertificateSync>::namespaced(client.clone(), &self.namespace);
        let sync = api
            .get(CERTIFICATE_SYNC)
            .await
            .unwrap_or_else(|e| panic!("cannot read the CertificateSync: {e}"));
        serde_json::to_value(sync).unwrap_or_default()
    }

    /// Waits until the EmployeeSync has succeeded at least once.
    pub async fn wait_employee_sync_succeeded(&self, client: &Client, timeout: Duration) {
        poll_until("the EmployeeSync to succeed", timeout, || async {
            let sync = self.employee_sync(client).await;
            let ready = super::condition_status(&sync, "Ready").as_deref() == Some("True");
            (ready && !sync["status"]["lastSuccessfulSyncTime"].is_null()).then_some(())
        })
        .await
    }

    /// Waits until the CertificateSync reports success after `after` (RFC 3339) or at all.
    pub async fn wait_certificate_sync_succeeded_after(
        &self,
        client: &Client,
        after: Option<&str>,
        timeout: Duration,
    ) -> Value {
        poll_until("the CertificateSync to succeed", timeout, || async {
            let sync = self.certificate_sync(client).await;
            let ready = super::condition_status(&sync, "Ready").as_deref() == Some("True");
            let last = sync["status"]["lastSuccessfulSyncTime"]
                .as_str()?
                .to_string();
            let newer = after.is_none_or(|after| last.as_str() > after);
            (ready && newer).then_some(sync)
        })
        .await
    }
}

/// A fresh directory under the system temp dir for captured operator output; left in place so a
/// failed run can be inspected (failure messages name it or print the logs).
pub fn log_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rpo-e2e-{test}-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}
