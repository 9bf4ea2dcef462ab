//! The `portal-migrate` binary: parses the command line, loads settings, calls the library
//! and turns its result into output and an exit code. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use portal_migrate::report::{self, ReportFormat};
use portal_migrate::settings::{LogFormat, Settings};
use portal_migrate::{bench, commands, demo, logging, service, sim, verify};

#[derive(Parser)]
#[command(
    name = "portal-migrate",
    version,
    about = "Copy an ArcGIS portal's users, groups, folders, items, sharing and relationships into another portal, durably and without duplicates."
)]
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
    /// Migrate: plan if the state file is new, then work until the queue drains; with
    /// sync.interval_secs set, stay up and copy what changes in the source every interval.
    /// Safe to rerun and to kill at any moment; it carries on where it stopped. SIGTERM or
    /// SIGINT stops it gracefully (a second one at once), SIGHUP reloads worker count and
    /// rate limits.
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
    /// Stop claiming new tasks (a running `run` notices within a second; tasks in flight
    /// finish). Kept in the state file until `resume`.
    Pause {
        #[arg(long)]
        config: PathBuf,
    },
    /// Claim tasks again after `pause`.
    Resume {
        #[arg(long)]
        config: PathBuf,
    },
    /// What the migration did per kind (created, adopted, updated, skipped, failed), with
    /// durations, retries and references left pointing at the source. Works during a run.
    Report {
        #[arg(long)]
        config: PathBuf,
        /// md, json or html.
        #[arg(long, default_value = "md")]
        format: String,
    },
    /// Compare the target with the source through the state file's id map: every user, group,
    /// folder and item is equal, differs (fields listed), is missing, or could not be read.
    /// Exit code 0 only when everything is equal, 1 otherwise, 2 when nothing could be compared.
    /// Works during a run (reads the state file without the lock).
    Verify {
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of the text report.
        #[arg(long)]
        json: bool,
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

fn load(config: &std::path::Path, log_format: Option<&str>) -> anyhow::Result<Settings> {
    let settings = Settings::load(config)?;
    let format = match log_format {
        Some("json") => LogFormat::Json,
        Some("human") => LogFormat::Human,
        None => settings.log.format,
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
        Command::Run { config, once } => {
            let settings = load(&config, log_format)?;
            let options = service::ServiceOptions {
                once,
                endpoints: true,
                on_listening: None,
                reload: Some(reload_on_sighup(config.clone())),
            };
            let summary = service::run(settings, graceful_then_forced(), options).await?;
            eprintln!(
                "{} tasks done, {} retried, {} failed, {} blocked{}",
                summary.completed,
                summary.retried,
                summary.failed,
                summary.blocked,
                if summary.interrupted {
                    " (interrupted; run again to continue)"
                } else {
                    ""
                }
            );
            Ok(if summary.failed > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Status { config, json } => {
            let settings = Settings::load_for_inspection(&config)?;
            let status = commands::status(&settings.state.path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{status}");
            }
            Ok(if status.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Retry { config } => {
            let settings = load(&config, log_format)?;
            let revived = commands::retry(&settings)?;
            println!("{revived} failed or blocked tasks queued again; run `portal-migrate run` to process them");
            Ok(ExitCode::SUCCESS)
        }
        Command::Pause { config } => {
            let settings = Settings::load_for_inspection(&config)?;
            service::set_paused(&settings.state.path, true)?;
            println!("paused: no new tasks are claimed (a running `run` notices within a second; tasks in flight finish); `portal-migrate resume` continues");
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume { config } => {
            let settings = Settings::load_for_inspection(&config)?;
            service::set_paused(&settings.state.path, false)?;
            println!("resumed: tasks are claimed again");
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { config, format } => {
            let Some(format) = ReportFormat::parse(&format) else {
                anyhow::bail!("--format: '{format}' is not a report format (md, json or html)");
            };
            let settings = Settings::load_for_inspection(&config)?;
            let report = report::build(&settings.state.path)?;
            print!("{}", report.render(format)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { config, json } => {
            let settings = load(&config, log_format)?;
            let report = verify::verify(settings).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Sim(args) => {
            logging::init(LogFormat::Human, "warn")?;
            sim::cli::run(args, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { only, quick } => {
            logging::init(LogFormat::Human, "warn")?;
            let daemon =
                std::env::current_exe().context("cannot find the portal-migrate binary")?;
            let mut stdout = std::io::stdout();
            bench::run(
                bench::BenchOptions {
                    only,
                    quick,
                    daemon,
                },
                &mut stdout,
            )
            .await
            .context("the benchmark failed")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            dir,
            latency_ms,
            workers,
        } => {
            logging::init(LogFormat::Human, "warn")?;
            let mut stdout = std::io::stdout();
            let report = demo::run(
                demo::DemoOptions {
                    dir,
                    latency_ms,
                    workers,
                },
                &mut stdout,
            )
            .await
            .context("the demo failed")?;
            Ok(
                if report.target == report.expected && report.failures == 0 && report.verified {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                },
            )
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM (the pool then stops claiming and lets tasks in
/// flight finish); a second one exits at once. The state file stays consistent either way:
/// every change is an SQLite transaction, and tasks left running are picked up at the next
/// start.
async fn graceful_then_forced() {
    shutdown_signal().await;
    tracing::warn!(
        "stopping: no new tasks; waiting for those in flight (signal again to exit at once)"
    );
    tokio::spawn(async {
        shutdown_signal().await;
        eprintln!(
            "second signal: exiting at once; unfinished tasks are picked up at the next start"
        );
        std::process::exit(130);
    });
}

/// Each SIGHUP re-reads the config file and hands the settings to the running service; a file
/// that no longer loads is reported and the current settings are kept.
fn reload_on_sighup(config: PathBuf) -> tokio::sync::mpsc::UnboundedReceiver<Settings> {
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => {
                tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        match Settings::load(&config) {
                            Ok(settings) => {
                                if sender.send(settings).is_err() {
                                    break;
                                }
                            }
                            Err(error) => tracing::error!("SIGHUP: keeping the current settings, the config file does not load: {error}"),
                        }
                    }
                });
            }
            Err(error) => {
                tracing::warn!("cannot listen for SIGHUP ({error}); reloading is unavailable")
            }
        }
    }
    #[cfg(not(unix))]
    drop((config, sender));
    receiver
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
