//! `portal-migrate sim`: serve one simulated portal from a fixture file, a generated org or
//! the built-in sample org, printing its URL as the first line on stdout.

use super::generate::{self, GenerateSpec};
use super::server::{SimError, SimOptions, SimServer};
use super::Faults;
use crate::fixture::{sample_org, Fixture};
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SampleSide {
    Source,
    Target,
}

#[derive(clap::Args, Debug, Clone)]
#[command(group(
    clap::ArgGroup::new("org").required(true).args(["fixture", "generate", "sample"])
))]
pub struct SimArgs {
    /// A fixture JSON file (the format of tests/fixtures/sample-org/source.json).
    #[arg(long, value_name = "FILE")]
    pub fixture: Option<PathBuf>,
    /// Generate a synthetic org, e.g. "seed=7,users=120,groups=5,items-per-folder=3".
    #[arg(long, value_name = "SPEC")]
    pub generate: Option<String>,
    /// Serve the built-in sample org's source or target portal.
    #[arg(long, value_enum)]
    pub sample: Option<SampleSide>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Serve https with a self-signed certificate made at start.
    #[arg(long)]
    pub tls: bool,
    /// Delay added to every API request.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra delay, uniform in 0..jitter.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Requests per second allowed; the excess gets HTTP 429 with Retry-After.
    #[arg(long, value_name = "RPS")]
    pub rate_limit: Option<f64>,
    /// Ratio (0..1) of API requests that fail transiently.
    #[arg(long, value_name = "RATIO", default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Cap on every token's lifetime.
    #[arg(long, value_name = "SECONDS")]
    pub token_ttl: Option<u64>,
    /// How long search endpoints lag behind writes.
    #[arg(long, default_value_t = 0)]
    pub search_lag_ms: u64,
    /// Seed for the fault draws, for reproducible runs.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl SimArgs {
    pub fn faults(&self) -> Faults {
        Faults {
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            rate_limit_rps: self.rate_limit,
            fail_rate: self.fail_rate.clamp(0.0, 1.0),
            token_ttl_secs: self.token_ttl,
            search_lag_ms: self.search_lag_ms,
            seed: self.seed,
            ..Faults::default()
        }
    }

    pub fn load_fixture(&self) -> Result<Fixture, SimError> {
        if let Some(path) = &self.fixture {
            return load_fixture_file(path);
        }
        if let Some(spec) = &self.generate {
            let spec: GenerateSpec =
                spec.parse()
                    .map_err(|e: <GenerateSpec as std::str::FromStr>::Err| {
                        SimError::Generate(e.to_string())
                    })?;
            return Ok(generate::generate(&spec));
        }
        Ok(match self.sample {
            Some(SampleSide::Target) => sample_org::target(),
            _ => sample_org::source(),
        })
    }
}

pub fn load_fixture_file(path: &std::path::Path) -> Result<Fixture, SimError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SimError::FixtureFile {
        path: shown.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|error| SimError::FixtureFormat {
        path: shown,
        message: error.to_string(),
    })
}

/// Serves until `shutdown` completes. The portal URL is the first line on stdout.
pub async fn run(args: SimArgs, shutdown: impl Future<Output = ()>) -> Result<(), SimError> {
    let fixture = args.load_fixture()?;
    let options = SimOptions {
        listen: args.listen,
        tls: args.tls,
        faults: args.faults(),
    };
    let server =
        SimServer::start(fixture, options)
            .await
            .map_err(|error| match (error, &args.fixture) {
                // A fixture that parses but does not hang together is still the file's fault.
                (SimError::Fixture(problem), Some(path)) => SimError::FixtureFormat {
                    path: path.display().to_string(),
                    message: problem.to_string(),
                },
                (error, _) => error,
            })?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", server.url()).map_err(SimError::Output)?;
        stdout.flush().map_err(SimError::Output)?;
    }
    shutdown.await;
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn exactly_one_org_source_is_required() {
        assert!(Cli::try_parse_from(["sim"]).is_err());
        assert!(
            Cli::try_parse_from(["sim", "--sample", "source", "--generate", "users=3"]).is_err()
        );
        let cli = Cli::try_parse_from(["sim", "--sample", "target", "--fail-rate", "0.2"]).unwrap();
        assert_eq!(cli.sim.faults().fail_rate, 0.2);
        assert_eq!(
            cli.sim.load_fixture().unwrap().portal.name,
            "Production Portal"
        );
    }

    #[test]
    fn a_bad_fixture_file_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.json");
        std::fs::write(&path, "{\"portal\": 3}").unwrap();
        let message = load_fixture_file(&path).unwrap_err().to_string();
        assert!(message.contains("broken.json"), "{message}");
        let missing = load_fixture_file(&dir.path().join("absent.json"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("absent.json"), "{missing}");
    }
}
