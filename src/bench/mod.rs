//! `bench`: the real sync code against the simulators with latency and rate limits.

/// Options of `reteach-personio-operator bench`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BenchOptions {}

/// Runs the benchmark and prints the figures.
pub async fn run(_options: BenchOptions) -> anyhow::Result<()> {
    anyhow::bail!("the benchmark is not implemented yet")
}
