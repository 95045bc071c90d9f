//! Command line of the operator: `run`, `crdgen`, `preflight`, and with the `dev-tools` feature
//! (default) `demo`, `bench`, `sim`.

use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's malloc: it keeps less of a burst's heap once the runs are over
/// (issue 18, BENCHMARKS.md "Many academies in one operator").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Syncs Personio employees into reteach and reteach certificates into Personio.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up; the size of the `run` options does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the operator against the cluster of the current kubeconfig / service account.
    Run(reteach_personio_operator::controller::RunOptions),
    #[cfg(feature = "dev-tools")]
    /// Both syncs end to end against the built-in Personio and reteach simulators; no cluster needed.
    Demo(reteach_personio_operator::demo::DemoOptions),
    #[cfg(feature = "dev-tools")]
    /// Measure requests, wall time and memory against simulators with latency and rate limits.
    Bench(reteach_personio_operator::bench::BenchOptions),
    /// Read-only probes of both APIs for one resource: which rights and data it needs are there.
    Preflight(reteach_personio_operator::preflight::PreflightOptions),
    #[cfg(feature = "dev-tools")]
    /// Run the Personio and reteach simulators standalone, for manual tries.
    Sim {
        /// Address of the Personio simulator.
        #[arg(long, default_value = "127.0.0.1:8081")]
        personio_addr: std::net::SocketAddr,
        /// Address of the reteach simulator.
        #[arg(long, default_value = "127.0.0.1:8082")]
        reteach_addr: std::net::SocketAddr,
        /// Employees (and reteach customers) to generate.
        #[arg(long, default_value_t = 50)]
        employees: usize,
        /// reteach users to seed, each with two completed courses and their certificates (for
        /// trying `preflight` and the certificate sync by hand).
        #[arg(long, default_value_t = 0)]
        reteach_customers: usize,
        /// Give the seeded reteach users the Personio simulator's employee ids (10001, 10002, …)
        /// as `externalId`, so their certificates belong to Personio employees.
        #[arg(long)]
        link_reteach_customers: bool,
        /// How the simulated academy treats a customer field, as FIELD=MODE with MODE `refuse`
        /// (400 "property FIELD should not exist") or `drop` (accepted, not kept); repeatable,
        /// e.g. `--reteach-field-mode position=refuse` for an academy on the 2022 API.
        #[arg(long, value_parser = parse_field_mode)]
        reteach_field_mode: Vec<(String, reteach_personio_operator::sim::reteach::FieldMode)>,
        /// Enforce Personio's per-IP limit: at most this many requests per minute across all
        /// endpoints and credentials (Personio: 2000), answered with 429 beyond it.
        #[arg(long)]
        personio_ip_limit_per_minute: Option<usize>,
        /// Completed courses (each with a certificate) per seeded reteach user.
        #[arg(long, default_value_t = 2)]
        reteach_completions_per_customer: usize,
        /// Break the downloads of the first N seeded certificates (an HTML page instead of the
        /// PDF): the operator must set them aside, never upload them.
        #[arg(long, default_value_t = 0)]
        reteach_broken_certificates: usize,
        /// Personio's rate limits refill this many times faster (match the operator's
        /// `--upstream-rate-scale` in soak tests; 1: Personio's own rates).
        #[arg(long, default_value_t = 1.0)]
        personio_time_scale: f64,
    },
    /// Write the CRDs to crds/ and the Helm chart (or print them with --stdout).
    Crdgen {
        /// Print to standard output instead of writing files.
        #[arg(long)]
        stdout: bool,
        /// Repository root to write into.
        #[arg(long, default_value = ".")]
        root: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(options) => reteach_personio_operator::controller::run(options).await,
        Command::Crdgen { stdout, root } => crdgen(stdout, &root),
        #[cfg(feature = "dev-tools")]
        Command::Demo(options) => reteach_personio_operator::demo::run(options).await,
        #[cfg(feature = "dev-tools")]
        Command::Bench(options) => reteach_personio_operator::bench::run(options).await,
        Command::Preflight(options) => {
            std::process::exit(reteach_personio_operator::preflight::run(options).await)
        }
        #[cfg(feature = "dev-tools")]
        Command::Sim {
            personio_addr,
            reteach_addr,
            employees,
            reteach_customers,
            link_reteach_customers,
            reteach_field_mode,
            personio_ip_limit_per_minute,
            reteach_completions_per_customer,
            reteach_broken_certificates,
            personio_time_scale,
        } => {
            let reteach = reteach_personio_operator::sim::reteach::StandaloneOptions {
                customers: reteach_customers,
                completions_per_customer: reteach_completions_per_customer,
                broken_certificates: reteach_broken_certificates,
                field_modes: reteach_field_mode,
                first_external_id: if link_reteach_customers {
                    reteach_personio_operator::sim::personio::FIRST_EMPLOYEE_ID
                } else {
                    reteach_personio_operator::sim::reteach::StandaloneOptions::default()
                        .first_external_id
                },
                ..Default::default()
            };
            sim(
                (personio_addr, reteach_addr),
                employees,
                reteach,
                personio_ip_limit_per_minute,
                personio_time_scale,
            )
            .await
        }
    }
}

/// `FIELD=MODE` of `sim --reteach-field-mode`.
#[cfg(feature = "dev-tools")]
fn parse_field_mode(
    text: &str,
) -> Result<(String, reteach_personio_operator::sim::reteach::FieldMode), String> {
    let (field, mode) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not FIELD=MODE"))?;
    Ok((field.trim().to_string(), mode.trim().parse()?))
}

fn crdgen(stdout: bool, root: &std::path::Path) -> anyhow::Result<()> {
    use reteach_personio_operator::crdgen;
    if stdout {
        for (_, yaml) in crdgen::crd_documents()? {
            println!("---\n{yaml}");
        }
        return Ok(());
    }
    for path in crdgen::write_crds(root)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(feature = "dev-tools")]
async fn sim(
    (personio_addr, reteach_addr): (std::net::SocketAddr, std::net::SocketAddr),
    employees: usize,
    reteach_options: reteach_personio_operator::sim::reteach::StandaloneOptions,
    personio_ip_limit: Option<usize>,
    personio_time_scale: f64,
) -> anyhow::Result<()> {
    use reteach_personio_operator::sim::{personio, reteach};
    reteach_personio_operator::controller::operator::init_tracing("text");
    anyhow::ensure!(
        personio_time_scale.is_finite() && personio_time_scale > 0.0,
        "--personio-time-scale must be a positive number"
    );
    tokio::try_join!(
        personio::run_standalone(
            personio_addr,
            employees,
            personio_ip_limit,
            personio_time_scale
        ),
        reteach::run_standalone(reteach_addr, reteach_options),
    )?;
    Ok(())
}
