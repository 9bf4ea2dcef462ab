//! Sockets: the accept loop, optional TLS with a self-signed certificate made at start, and
//! one task per connection. Connections are served with hyper directly so that a fault can
//! close one without answering, which `axum::serve` cannot do.

use super::dispatch::{self, lock, Sim};
use super::faults::Faults;
use super::files::FileBody;
use super::state::{Data, FixtureError, State};
use super::stats::Stats;
use crate::fixture::Fixture;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A TLS handshake that takes longer than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid fixture: {0}")]
    Fixture(#[from] FixtureError),
    #[error("cannot read fixture file {path}: {source}")]
    FixtureFile {
        path: String,
        source: std::io::Error,
    },
    #[error("fixture file {path} is not a valid portal fixture: {message}")]
    FixtureFormat { path: String, message: String },
    #[error("invalid generate spec: {0}")]
    Generate(String),
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error("cannot write to stdout: {0}")]
    Output(std::io::Error),
    #[error("cannot read a stored item file: {0}")]
    StoredFile(std::io::Error),
}

/// How to serve.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub listen: SocketAddr,
    pub tls: bool,
    pub faults: Faults,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: false,
            faults: Faults::default(),
        }
    }
}

/// A running simulated portal. Stops serving on [`SimServer::shutdown`] or when dropped.
pub struct SimServer {
    sim: Arc<Sim>,
    url: String,
    addr: SocketAddr,
    /// `true` tells the accept loop and every connection to stop.
    stop: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
    /// In TLS mode: the PEM of the certificate authority that signed the server's certificate.
    ca_pem: Option<String>,
}

impl SimServer {
    pub async fn start(fixture: Fixture, options: SimOptions) -> Result<SimServer, SimError> {
        let state = State::load(fixture)?;
        let (tls, ca_pem) = if options.tls {
            let (acceptor, ca_pem) = tls_acceptor()?;
            (Some(acceptor), Some(ca_pem))
        } else {
            (None, None)
        };
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| SimError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: options.listen,
            source,
        })?;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        let scheme = if options.tls { "https" } else { "http" };
        let url = format!("{scheme}://{host}:{}/portal", addr.port());
        let sim = Arc::new(Sim::new(state, options.faults, url.clone()));
        let (stop, stopped) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, tls, sim.clone(), stopped));
        Ok(SimServer {
            sim,
            url,
            addr,
            stop,
            accept_task: Some(accept_task),
            ca_pem,
        })
    }

    /// `http(s)://127.0.0.1:PORT/portal`, no trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live state in the fixture format (what `GET /__sim/state` returns).
    pub fn snapshot(&self) -> Fixture {
        lock(&self.sim.state).snapshot()
    }

    /// See [`State::add_generated_file`]: a file item whose content is made as it is served.
    pub fn add_generated_file(
        &self,
        owner: &str,
        title: &str,
        item_type: &str,
        file_name: &str,
        len: u64,
        seed: u64,
    ) -> Result<String, SimError> {
        Ok(lock(&self.sim.state)
            .add_generated_file(owner, title, item_type, file_name, len, seed)?)
    }

    /// Length and SHA-256 (hex) of each file item's data, by item id, read chunk by chunk
    /// (so a 1 GiB upload is checked without loading it).
    pub async fn file_digests(&self) -> Result<Vec<(String, u64, String)>, SimError> {
        let files: Vec<(String, FileBody)> = lock(&self.sim.state)
            .items
            .iter()
            .filter_map(|(id, item)| match &item.data {
                Some(Data::File { body, .. }) => Some((id.clone(), body.clone())),
                _ => None,
            })
            .collect();
        let mut digests = Vec::with_capacity(files.len());
        for (id, body) in files {
            let (len, sha256) = body.digest().await.map_err(SimError::StoredFile)?;
            digests.push((id, len, sha256));
        }
        Ok(digests)
    }

    pub fn set_faults(&self, faults: Faults) {
        self.sim.set_faults(faults);
    }

    pub fn faults(&self) -> Faults {
        (*self.sim.faults()).clone()
    }

    pub fn stats(&self) -> Stats {
        self.sim.stats()
    }

    /// In TLS mode, the PEM certificate of the throwaway authority that signed this
    /// simulator's certificate: what a client's `ca_file` must trust.
    pub fn ca_certificate_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Every token the simulator has issued that is still on record, for tests proving that
    /// tokens never leak into logs or files.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.sim.state).tokens.keys().cloned().collect()
    }

    /// A cheap handle on the request counters that can move to another task (a sampler).
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.sim.clone())
    }

    /// Stops accepting, closes every connection and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.accept_task.take() {
            let _ = task.await;
        }
    }
}

/// See [`SimServer::stats_handle`].
#[derive(Clone)]
pub struct StatsHandle(Arc<Sim>);

impl StatsHandle {
    /// Requests answered so far, over all endpoints and outcomes.
    pub fn total(&self) -> u64 {
        self.0.stats_total()
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A server certificate for 127.0.0.1 and localhost signed by a throwaway authority made
/// here (a client can trust the authority with `ca_file`; a self-signed server certificate
/// cannot serve as its own trust anchor), and the authority's PEM.
fn tls_acceptor() -> Result<(TlsAcceptor, String), SimError> {
    let tls_error = |e: rcgen::Error| SimError::Tls(e.to_string());
    let ca_key = rcgen::KeyPair::generate().map_err(tls_error)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "portal-migrate simulator CA");
    let ca = ca_params.self_signed(&ca_key).map_err(tls_error)?;
    let server_key = rcgen::KeyPair::generate().map_err(tls_error)?;
    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(tls_error)?;
    let server = server_params
        .signed_by(&server_key, &ca, &ca_key)
        .map_err(tls_error)?;
    let cert = server.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        server_key.serialize_der(),
    ));
    // An explicit provider, so that no process-wide default has to be installed (and two
    // simulators, or a simulator and a client, never race to install one).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SimError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| SimError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), ca.pem()))
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    sim: Arc<Sim>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off briefly, keep serving.
                        tracing::warn!(%error, "simulator accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_stream(stream, tls.clone(), sim.clone(), stopped.clone()));
            }
        }
    }
}

async fn serve_stream(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    sim: Arc<Sim>,
    stopped: watch::Receiver<bool>,
) {
    match tls {
        None => serve_connection(stream, sim, stopped).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, sim, stopped).await,
                Ok(Err(error)) => tracing::debug!(%error, "simulator TLS handshake failed"),
                Err(_) => tracing::debug!("simulator TLS handshake timed out"),
            }
        }
    }
}

async fn serve_connection<S>(stream: S, sim: Arc<Sim>, mut stopped: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let service_kill = kill.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        let sim = sim.clone();
        let kill = service_kill.clone();
        async move { Ok::<_, Infallible>(dispatch::handle(sim, kill, request).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        // A fault asked for the connection to vanish: dropping it closes the socket.
        _ = kill.notified() => {}
        _ = stopped.changed() => {}
    }
}
