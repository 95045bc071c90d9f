//! The kube-apiserver restarted while the operator runs: the operator reconnects and carries on
//! (issue 9). The test stops the apiserver that `scripts/test.sh` started (its pid is in the run
//! directory next to the kubeconfig) and starts it again with the very same command line, so it
//! keeps its port, certificates and etcd. In `e2e_alone`, holding `ALONE`, because every other test
//! running meanwhile would see the outage. Run: `scripts/test.sh --test e2e_alone`.

use crate::support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use support::process::{
    install_crds, log_dir, OperatorOptions, OperatorProcess, Tenant, TenantCredentials, LONG_WAIT,
};

/// The apiserver process of the control plane in `run_dir`.
struct Apiserver {
    run_dir: PathBuf,
}

impl Apiserver {
    fn of_test_cluster() -> Self {
        let kubeconfig = support::kubeconfig_path();
        let run_dir = kubeconfig
            .parent()
            .unwrap_or_else(|| panic!("kubeconfig {} has no directory", kubeconfig.display()))
            .to_path_buf();
        Self { run_dir }
    }

    fn pid_file(&self) -> PathBuf {
        self.run_dir.join("apiserver.pid")
    }

    fn pid(&self) -> String {
        let file = self.pid_file();
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| {
                panic!(
                    "cannot read {} ({e}): the test needs the control plane of scripts/test.sh",
                    file.display()
                )
            })
            .trim()
            .to_string()
    }

    /// Kills the apiserver (SIGKILL: a crash; SIGTERM makes it drain watches for a minute), waits
    /// until it is gone, and starts it again with the same command line and working directory;
    /// returns once it answers.
    async fn restart(&self) {
        let pid = self.pid();
        let proc_dir = Path::new("/proc").join(&pid);
        let cmdline = std::fs::read(proc_dir.join("cmdline"))
            .unwrap_or_else(|e| panic!("cannot read the apiserver's command line: {e}"));
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert!(
            args.first().is_some_and(|a| a.ends_with("kube-apiserver")),
            "pid {pid} is not a kube-apiserver: {args:?}"
        );
        let sent = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(sent.success(), "kill -KILL {pid} failed");
        support::poll_until("the apiserver to stop", support::WAIT, || {
            let gone = !proc_dir.join("cmdline").exists() || is_zombie(&proc_dir);
            async move { gone.then_some(()) }
        })
        .await;
        // A killed multi-threaded process is listed as a zombie before its last thread has closed
        // the listening socket: also wait until the port is free, and start again should the new
        // apiserver still lose the race for it.
        let port = secure_port(&args);
        for attempt in 1..=3 {
            support::poll_until("the apiserver port to be free", support::WAIT, || {
                let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
                async move { free.then_some(()) }
            })
            .await;
            let mut child = self.spawn(&args);
            let answered =
                support::poll_until("the apiserver to answer or exit", LONG_WAIT, || {
                    let exited = child.try_wait().ok().flatten().is_some();
                    async move {
                        if exited {
                            return Some(false);
                        }
                        let answers = support::client().await.apiserver_version().await.is_ok();
                        answers.then_some(true)
                    }
                })
                .await;
            if answered {
                // Reaps it should it exit while this test binary still runs.
                std::thread::spawn(move || child.wait());
                return;
            }
            eprintln!("the restarted apiserver exited (attempt {attempt}); starting it again");
        }
        panic!(
            "the apiserver did not come back; see {}",
            self.run_dir.join("apiserver.log").display()
        );
    }

    /// Starts `args` in its own process group, like start.sh's setsid (it outlives this test and
    /// stop.sh ends it), logging where start.sh does; records its pid where stop.sh looks.
    fn spawn(&self, args: &[String]) -> std::process::Child {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.run_dir.join("apiserver.log"))
            .unwrap_or_else(|e| panic!("cannot open the apiserver log: {e}"));
        let err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
        let child = std::process::Command::new(&args[0])
            .args(&args[1..])
            .current_dir(&self.run_dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the apiserver again: {e}"));
        std::fs::write(self.pid_file(), format!("{}\n", child.id()))
            .unwrap_or_else(|e| panic!("cannot record the apiserver pid: {e}"));
        child
    }
}

/// The `--secure-port=N` of an apiserver command line.
fn secure_port(args: &[String]) -> u16 {
    args.iter()
        .find_map(|a| a.strip_prefix("--secure-port=")?.parse().ok())
        .unwrap_or_else(|| panic!("no --secure-port in {args:?}"))
}

fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_reconnects_after_the_apiserver_restarts_and_keeps_syncing() {
    let _alone = crate::ALONE.lock().await;
    let client = support::client().await;
    install_crds(&client).await;
    let logs = log_dir("apiserver-restart");
    let namespace = support::fresh_namespace(&client, "apiserver-restart").await;
    let tenant = Tenant::start(&client, &namespace, TenantCredentials::default()).await;
    tenant.seed_employees(3, "ar");
    tenant.apply_employee_sync(&client, "1s").await;
    let mut operator = OperatorProcess::spawn(&OperatorOptions::new(&namespace), &logs);
    tenant
        .wait_employee_sync_succeeded(&client, support::WAIT)
        .await;

    Apiserver::of_test_cluster().restart().await;
    // The operator must neither exit nor give up while the apiserver is away, and pick up work
    // that arrives afterwards.
    let late = tenant.seed_employees(1, "late")[0];
    let client = support::client().await;
    assert!(
        operator.exited().is_none(),
        "the operator exited during the apiserver restart; logs:\n{}",
        operator.logs()
    );
    let restarted_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    support::poll_until(
        "the operator to sync an employee added after the restart",
        LONG_WAIT,
        || async { (tenant.customers_with_external_id(late).len() == 1).then_some(()) },
    )
    .await;
    // Status writes work again too: a run after the restart is recorded.
    support::poll_until(
        "a successful run recorded after the restart",
        LONG_WAIT,
        || async {
            let sync = tenant.employee_sync(&client).await;
            let last = sync["status"]["lastSuccessfulSyncTime"]
                .as_str()?
                .to_string();
            (last > restarted_at).then_some(())
        },
    )
    .await;
    assert!(operator.exited().is_none(), "the operator keeps running");
    support::delete_namespace(&client, &namespace).await;
}
