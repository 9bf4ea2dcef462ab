//! The `portal-migrate` binary: parses the command line, loads settings, calls the library
//! and turns its result into output and an exit code. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use portal_migrate::settings::{LogFormat, Settings};
use portal_migrate::{bench, commands, demo, engine, logging, sim};

#[derive(Parser)]
#[command(name = "portal-migrate", version, about = "Copy an ArcGIS portal's users, groups, folders, items, sharing and relationships into another portal, durably and without duplicates.")]
struct Cli {
    /// Log format on stderr: human or json. Levels come from RUST_LOG or log.level.
    #[arg(long, global = true)]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Dry run: discover the source and show what would be created or adopted, by kind.
    /// Writes nothing to the target or to the state file.
    Plan {
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Migrate: plan if the state file is new, then work until the queue drains. Safe to
    /// rerun and to kill at any moment; it carries on where it stopped.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Exit when the queue drains instead of waiting for the next sync.
        #[arg(long)]
        once: bool,
    },
    /// Progress per kind and state, and every failure with its error. Works during a run.
    Status {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Put failed and blocked tasks back in the queue with a fresh retry budget.
    Retry {
        #[arg(long)]
        config: PathBuf,
    },
    /// Serve a simulated portal on loopback (prints its URL as the first line).
    Sim(sim::cli::SimArgs),
    /// Two simulated portals with the sample organisation, a full migration, and a report.
    Demo {
        /// Where to leave the state file.
        #[arg(long, default_value = "portal-migrate-demo")]
        dir: PathBuf,
        /// Simulated latency per request, in milliseconds.
        #[arg(long, default_value_t = 50)]
        latency_ms: u64,
        #[arg(long, default_value_t = 8)]
        workers: usize,
    },
    /// Measure the performance figures against simulated portals (see BENCHMARKS.md).
    /// Build with --release for meaningful numbers.
    Bench {
        /// Run only this benchmark: saturation, latency, overhead, memory, scale or notebook.
        #[arg(long)]
        only: Option<String>,
        /// Tiny sizes, seconds in all: proves the benchmarks run, measures nothing.
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn load(config: &PathBuf, log_format: Option<&str>) -> anyhow::Result<Settings> {
    let settings = Settings::load(config)?;
    let format = match log_format {
        Some("json") => LogFormat::Json,
        Some("human") => LogFormat::Human,
        None => settings.log.format.clone(),
        Some(other) => anyhow::bail!("--log-format: '{other}' is not a log format (human or json)"),
    };
    logging::init(format, &settings.log.level)?;
    Ok(settings)
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let log_format = cli.log_format.as_deref();
    match cli.command {
        Command::Plan { config, json } => {
            let settings = load(&config, log_format)?;
            let plan = commands::plan(settings).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{plan}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config, once: _ } => {
            let settings = load(&config, log_format)?;
            let summary = engine::run(settings, shutdown_signal()).await?;
            eprintln!(
                "{} tasks done, {} retried, {} failed, {} blocked{}",
                summary.completed,
                summary.retried,
                summary.failed,
                summary.blocked,
                if summary.interrupted { " (interrupted; run again to continue)" } else { "" }
            );
            Ok(if summary.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Status { config, json } => {
            let settings = Settings::load(&config)?;
            let status = commands::status(&settings.state.path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{status}");
            }
            Ok(if status.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Retry { config } => {
            let settings = load(&config, log_format)?;
            let revived = commands::retry(&settings)?;
            println!("{revived} failed or blocked tasks queued again; run `portal-migrate run` to process them");
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim(args) => {
            logging::init(LogFormat::Human, "warn")?;
            sim::cli::run(args, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { only, quick } => {
            logging::init(LogFormat::Human, "warn")?;
            let daemon = std::env::current_exe().context("cannot find the portal-migrate binary")?;
            let mut stdout = std::io::stdout();
            bench::run(bench::BenchOptions { only, quick, daemon }, &mut stdout)
                .await
                .context("the benchmark failed")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir, latency_ms, workers } => {
            logging::init(LogFormat::Human, "warn")?;
            let mut stdout = std::io::stdout();
            let report = demo::run(demo::DemoOptions { dir, latency_ms, workers }, &mut stdout)
                .await
                .context("the demo failed")?;
            Ok(if report.target == report.expected && report.failures == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
