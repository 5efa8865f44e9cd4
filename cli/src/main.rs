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

// mimalloc: see ferrocache-allocator for why and what it costs.
#[global_allocator]
static GLOBAL: ferrocache_allocator::MiMalloc = ferrocache_allocator::MiMalloc;

fn main() -> std::process::ExitCode {
    ferrocache_allocator::disable_transparent_huge_pages();
    // Usage errors exit 252, as the AWS CLI's do (help and version exit 0).
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(252);
        }
    };
    if let Err(e) = output::set_query(cli.query.as_deref()) {
        eprintln!("--query: {e}");
        return std::process::ExitCode::from(252);
    }
    if let Err(e) = ferrocache_common::credentials::install(cli.cluster_secret.as_deref()) {
        eprintln!("--cluster-secret: {e}");
        return std::process::ExitCode::from(252);
    }
    // `up` passes it on to the processes it starts.
    if let Some(secret) = &cli.cluster_secret {
        std::env::set_var("FERROCACHE_CLUSTER_SECRET", secret);
    }
    let json_logs = cli.log_format == cli::LogFormat::Json;
    if json_logs {
        std::env::set_var("FERROCACHE_LOG_FORMAT", "json");
    }
    // A gateway given one runtime thread runs tasks in the order they were woken (the
    // current-thread scheduler): the multi-thread one runs the last task woken first (its
    // LIFO slot), so of two clients whose commands arrived together the later one went
    // first, where Redis serves them in order (an UNSUBSCRIBE, then another client's
    // PUBLISH counting the unsubscribed client). The datanode waits on its node lock with
    // `block_in_place`, which only the multi-thread scheduler has.
    let one_thread = std::env::var("TOKIO_WORKER_THREADS").is_ok_and(|v| v.trim() == "1");
    let mut builder = if one_thread && matches!(cli.command, cli::Command::Gateway(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let telemetry =
            ferrocache_common::telemetry::init(cli.command.default_log_filter(), cli.command.role(), json_logs);
        let code = cli::dispatch(cli).await;
        // Flushing the spans still queued waits for the exporter, whose gRPC channel runs on
        // this runtime: flush from another thread, or a one-thread runtime would wait on itself.
        let _ = tokio::task::spawn_blocking(move || drop(telemetry)).await;
        code
    })
}
