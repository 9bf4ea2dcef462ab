//! Files in and out of a portal without holding them in memory: downloads are byte streams,
//! uploads are streamed multipart parts.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};

use super::counters::Counters;
use super::error::PortalError;

/// A response body being downloaded. Nothing is read until the stream is polled, apart from
/// the first few bytes the client looked at to tell data from an error body.
pub struct Download {
    status: u16,
    content_type: Option<String>,
    file_name: Option<String>,
    content_length: Option<u64>,
    stream: BoxStream<'static, Result<Bytes, PortalError>>,
}

impl Download {
    pub(crate) fn new(
        status: u16,
        content_type: Option<String>,
        file_name: Option<String>,
        content_length: Option<u64>,
        stream: BoxStream<'static, Result<Bytes, PortalError>>,
    ) -> Download {
        Download {
            status,
            content_type,
            file_name,
            content_length,
            stream,
        }
    }

    /// Wraps any byte stream (a local file, a generated body) so it can be uploaded as
    /// [`Upload::Stream`].
    pub fn from_stream(
        file_name: Option<String>,
        content_length: Option<u64>,
        stream: impl Stream<Item = Result<Bytes, PortalError>> + Send + 'static,
    ) -> Download {
        Download::new(200, None, file_name, content_length, stream.boxed())
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// From `Content-Disposition`, when the portal sent one.
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    /// From `Content-Length`; `None` for chunked responses.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The whole body in memory: for thumbnails, metadata and JSON, not for files.
    pub async fn bytes(self) -> Result<Bytes, PortalError> {
        let capacity = self
            .content_length
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(64 * 1024 * 1024);
        let mut buffer = bytes::BytesMut::with_capacity(capacity);
        let mut stream = self.stream;
        while let Some(chunk) = stream.next().await {
            buffer.extend_from_slice(&chunk?);
        }
        Ok(buffer.freeze())
    }

    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, PortalError>> + Send + 'static {
        self.stream
    }

    pub(crate) fn into_boxed_stream(self) -> BoxStream<'static, Result<Bytes, PortalError>> {
        self.stream
    }
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("file_name", &self.file_name)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// An item's data as sent to `addItem` / `update`.
#[derive(Debug)]
pub enum Upload {
    /// JSON or text content, sent as the `text` parameter.
    Text(String),
    /// A small file already in memory.
    Bytes { file_name: String, bytes: Bytes },
    /// A file streamed from elsewhere (typically the source portal's download).
    Stream {
        file_name: String,
        length: u64,
        download: Download,
    },
}

/// One file field of a multipart request.
#[derive(Debug)]
pub struct FilePart {
    /// The form field: `file`, `thumbnail`, `metadata`, …
    pub field: String,
    pub file_name: String,
    pub body: PartBody,
}

#[derive(Debug)]
pub enum PartBody {
    /// Sent from memory; the request can be replayed (after a token refresh).
    Bytes(Bytes),
    /// Streamed once; a request carrying it cannot be replayed.
    Stream { length: u64, download: Download },
}

impl FilePart {
    pub fn bytes(field: impl Into<String>, file_name: impl Into<String>, bytes: Bytes) -> FilePart {
        FilePart {
            field: field.into(),
            file_name: file_name.into(),
            body: PartBody::Bytes(bytes),
        }
    }
}

/// Tuning of large-file uploads (`addItem` with `multipart=true`, then `addPart`s).
#[derive(Debug, Clone, Copy)]
pub struct UploadTuning {
    /// Files larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// Size of each part (the portal wants at least 5 MB for all but the last).
    pub part_size: usize,
    /// Attempts per part before the upload gives up.
    pub part_attempts: u32,
    /// First pause between attempts of a part; doubles each time.
    pub part_backoff: Duration,
    /// Interval between `status` polls after `commit`.
    pub status_poll: Duration,
    /// How long to wait for the portal to finish processing a committed upload.
    pub status_timeout: Duration,
}

impl Default for UploadTuning {
    fn default() -> Self {
        UploadTuning {
            multipart_threshold: 8 * 1024 * 1024,
            part_size: 8 * 1024 * 1024,
            part_attempts: 4,
            part_backoff: Duration::from_millis(500),
            status_poll: Duration::from_secs(1),
            status_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Where a failing upload source leaves its own error: reqwest only reports "body error",
/// but the task needs the source portal's real failure (and its class).
#[derive(Clone, Default)]
pub(crate) struct SourceFailure(Arc<std::sync::Mutex<Option<PortalError>>>);

impl SourceFailure {
    pub fn set(&self, error: PortalError) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(error);
        }
    }

    pub fn take(&self) -> Option<PortalError> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// An upload source turned into a request body: counts bytes and keeps the source's error.
pub(crate) fn upload_body(
    download: Download,
    counters: Arc<Counters>,
    failure: SourceFailure,
) -> reqwest::Body {
    let stream = download.into_boxed_stream().map(move |chunk| match chunk {
        Ok(bytes) => {
            counters.uploaded(bytes.len() as u64);
            Ok(bytes)
        }
        Err(error) => {
            let text = error.to_string();
            failure.set(error);
            Err(std::io::Error::other(text))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// A response body as a stream that counts bytes, turns transport failures into
/// `PortalError`, and fails when the server goes quiet for `idle` (a total timeout would
/// cut off large files that are still flowing).
pub(crate) fn guarded_body(
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    counters: Arc<Counters>,
    portal: String,
    endpoint: String,
    idle: Duration,
) -> BoxStream<'static, Result<Bytes, PortalError>> {
    struct State {
        body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
        counters: Arc<Counters>,
        portal: String,
        endpoint: String,
    }
    let state = State {
        body,
        counters,
        portal,
        endpoint,
    };
    futures::stream::unfold(Some(state), move |state| async move {
        let mut state = state?;
        match tokio::time::timeout(idle, state.body.next()).await {
            Err(_) => {
                let error = PortalError::Timeout {
                    portal: state.portal.clone(),
                    endpoint: state.endpoint.clone(),
                };
                Some((Err(error), None))
            }
            Ok(None) => None,
            Ok(Some(Ok(chunk))) => {
                state.counters.downloaded(chunk.len());
                Some((Ok(chunk), Some(state)))
            }
            Ok(Some(Err(error))) => {
                let error = super::http::transport_error(&state.portal, &state.endpoint, error);
                Some((Err(error), None))
            }
        }
    })
    .boxed()
}

/// `attachment; filename="a b.pdf"` or `filename*=UTF-8''a%20b.pdf`.
pub(crate) fn content_disposition_file_name(header: &str) -> Option<String> {
    let mut plain = None;
    for parameter in header.split(';').map(str::trim) {
        let Some((key, value)) = parameter.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if key == "filename*" {
            let encoded = value.split_once("''").map_or(value, |(_, rest)| rest);
            let decoded = percent_encoding::percent_decode_str(encoded)
                .decode_utf8_lossy()
                .into_owned();
            if !decoded.is_empty() {
                return Some(decoded);
            }
        } else if key == "filename" {
            let unquoted = value.trim_matches('"').to_string();
            if !unquoted.is_empty() {
                plain = Some(unquoted);
            }
        }
    }
    plain
}

/// Does the start of a body look like a portal error (`{"error": …`) rather than data?
pub(crate) fn looks_like_error_body(content_type: Option<&str>, head: &[u8]) -> bool {
    let textual = content_type.is_none_or(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.contains("json") || ct.starts_with("text/plain")
    });
    if !textual {
        return false;
    }
    let rest = skip_whitespace(head);
    let Some(rest) = rest.strip_prefix(b"{") else {
        return false;
    };
    skip_whitespace(rest).starts_with(b"\"error\"")
}

fn skip_whitespace(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_from_content_disposition() {
        assert_eq!(
            content_disposition_file_name("attachment; filename=\"a b.pdf\"").as_deref(),
            Some("a b.pdf")
        );
        assert_eq!(
            content_disposition_file_name("attachment; filename=x; filename*=UTF-8''caf%C3%A9.csv")
                .as_deref(),
            Some("café.csv")
        );
        assert_eq!(content_disposition_file_name("inline"), None);
    }

    #[test]
    fn error_bodies_are_told_from_data() {
        assert!(looks_like_error_body(
            Some("application/json; charset=utf-8"),
            b" { \"error\": {\"code\":400"
        ));
        assert!(!looks_like_error_body(
            Some("application/json"),
            b"{\"operationalLayers\":[]}"
        ));
        assert!(!looks_like_error_body(
            Some("application/pdf"),
            b"{\"error\":1}"
        ));
    }
}
