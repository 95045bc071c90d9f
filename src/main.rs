//! Command line of the operator: `run`, `crdgen`, `demo`, `bench`, `sim`.

use clap::{Parser, Subcommand};

/// Syncs Personio employees into reteach and reteach certificates into Personio.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the operator against the cluster of the current kubeconfig / service account.
    Run(reteach_personio_operator::controller::RunOptions),
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
    }
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
