//! `ferrocache`: every server role, the admin CLI (named like `aws elasticache`) and `up`,
//! the local launcher.

mod admin;
mod certificates;
mod cli;
mod ha;
mod output;
mod resharding;
mod roles;
mod up;
mod users;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    if let Err(e) = ferrocache_common::credentials::install(cli.cluster_secret.as_deref()) {
        eprintln!("--cluster-secret: {e}");
        return std::process::ExitCode::from(252);
    }
    // `up` passes it on to the processes it starts.
    if let Some(secret) = &cli.cluster_secret {
        std::env::set_var("FERROCACHE_CLUSTER_SECRET", secret);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let _telemetry = ferrocache_common::telemetry::init(cli.command.default_log_filter(), cli.command.role());
        cli::dispatch(cli).await
    })
}
