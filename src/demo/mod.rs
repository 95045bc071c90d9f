//! `demo`: both syncs end to end against the embedded simulators, no cluster needed.

/// Options of `reteach-personio-operator demo`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DemoOptions {}

/// Runs the demo and prints what happened.
pub async fn run(_options: DemoOptions) -> anyhow::Result<()> {
    anyhow::bail!("the demo is not implemented yet")
}
