//! One parameter map per request, whatever way the client sent it: query string,
//! urlencoded body or multipart body. Keys are lowercased so that the spellings clients
//! use interchangeably (`targetUsername`/`targetusername`, `relationshipType`...) agree.

use super::error::{ApiError, ApiResult};
use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, Request};
use std::collections::HashMap;

/// Urlencoded bodies beyond this are refused; files travel as multipart.
const FORM_LIMIT: usize = 64 * 1024 * 1024;

/// A file part of a multipart body.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: Option<String>,
    pub bytes: Bytes,
}

#[derive(Debug)]
pub struct Req {
    pub method: Method,
    params: HashMap<String, String>,
    files: HashMap<String, Upload>,
    pub headers: HeaderMap,
}

impl Req {
    /// Reads the whole request. Body parameters override query parameters of the same name.
    pub async fn read(request: Request<Incoming>) -> ApiResult<Req> {
        let (parts, body) = request.into_parts();
        let mut params = HashMap::new();
        if let Some(query) = parts.uri.query() {
            for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
                params.insert(key.to_ascii_lowercase(), value.into_owned());
            }
        }
        let mut files = HashMap::new();
        let content_type = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = Body::new(body);
        if content_type.starts_with("multipart/form-data") {
            read_multipart(&content_type, body, &mut params, &mut files).await?;
        } else if parts.method == Method::POST || parts.method == Method::PUT {
            let bytes = axum::body::to_bytes(body, FORM_LIMIT)
                .await
                .map_err(|_| ApiError::bad_request("Unable to read the request body."))?;
            for (key, value) in url::form_urlencoded::parse(&bytes) {
                params.insert(key.to_ascii_lowercase(), value.into_owned());
            }
        }
        Ok(Req {
            method: parts.method,
            params,
            files,
            headers: parts.headers,
        })
    }

    /// The raw value, empty strings included. `key` must be lowercase.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// The value, trimmed, unless missing or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw(key).map(str::trim).filter(|v| !v.is_empty())
    }

    pub fn has(&self, key: &str) -> bool {
        self.params.contains_key(key)
    }

    pub fn require(&self, key: &'static str) -> ApiResult<&str> {
        self.get(key).ok_or_else(|| ApiError::missing(key))
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A comma-separated list (also accepts a JSON array of strings).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key).map(split_list).unwrap_or_default()
    }

    pub fn file(&self, key: &str) -> Option<&Upload> {
        self.files.get(key)
    }

    pub fn format_pretty(&self) -> bool {
        self.get("f") == Some("pjson")
    }

    /// The token from `token=` or from `X-Esri-Authorization: Bearer` / `Authorization: Bearer`.
    pub fn token(&self) -> Option<String> {
        if let Some(token) = self.get("token") {
            return Some(token.to_owned());
        }
        for header in ["x-esri-authorization", "authorization"] {
            if let Some(value) = self.headers.get(header).and_then(|v| v.to_str().ok()) {
                let value = value.trim();
                let token = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .unwrap_or(value)
                    .trim();
                if !token.is_empty() {
                    return Some(token.to_owned());
                }
            }
        }
        None
    }

    /// `(start, num)`: 1-based start, num defaulting to 10 and capped at 100.
    pub fn paging(&self) -> (usize, usize) {
        let start = self
            .get("start")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|s| *s >= 1)
            .unwrap_or(1) as usize;
        let num = self
            .get("num")
            .and_then(|v| v.parse::<i64>().ok())
            .map(|n| n.clamp(0, 100))
            .unwrap_or(10) as usize;
        (start, num)
    }
}

pub fn split_list(value: &str) -> Vec<String> {
    let value = value.trim();
    if value.starts_with('[') {
        if let Ok(values) = serde_json::from_str::<Vec<String>>(value) {
            return values
                .into_iter()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
        }
    }
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Fields that carry a file even when a client forgets the part's file name.
const FILE_FIELDS: [&str; 4] = ["file", "thumbnail", "metadata", "largethumbnail"];

async fn read_multipart(
    content_type: &str,
    body: Body,
    params: &mut HashMap<String, String>,
    files: &mut HashMap<String, Upload>,
) -> ApiResult<()> {
    let unreadable = |_| ApiError::bad_request("Unable to read the multipart request body.");
    let boundary = multer::parse_boundary(content_type).map_err(unreadable)?;
    let stream = body
        .into_data_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other));
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or("").to_ascii_lowercase();
        let filename = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(unreadable)?;
        if filename.is_some() || FILE_FIELDS.contains(&name.as_str()) {
            files.insert(name, Upload { filename, bytes });
        } else {
            params.insert(name, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Ok(())
}
