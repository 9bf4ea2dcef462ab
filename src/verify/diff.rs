//! Field-by-field comparison: what counts as "the same" between a source value and its target
//! counterpart, and how a difference is shown (both values, shortened).

use std::collections::BTreeSet;

use futures::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::report::Difference;
use crate::portal::{Download, PortalError};

/// Longest value shown in a report line; a web map's JSON would drown the report otherwise.
const SHOWN_CHARS: usize = 100;

/// The differences found for one object, in the order the fields were checked.
#[derive(Debug, Default)]
pub(super) struct Diffs(Vec<Difference>);

impl Diffs {
    pub fn into_vec(self) -> Vec<Difference> {
        self.0
    }

    pub fn push(&mut self, field: &str, source: impl Into<String>, target: impl Into<String>) {
        self.0.push(Difference {
            field: field.to_string(),
            source: shorten(&source.into()),
            target: shorten(&target.into()),
        });
    }

    /// A plain property: equal when both are "empty" (missing, null, "" or []) or equal JSON.
    pub fn value(&mut self, field: &str, source: Option<&Value>, target: Option<&Value>) {
        let (source, target) = (normalized(source), normalized(target));
        if source != target {
            self.push(field, show(&source), show(&target));
        }
    }

    /// A string property with a default the portal reports when none was chosen (units,
    /// provider): `None` on either side stands for the default.
    pub fn with_default(
        &mut self,
        field: &str,
        source: Option<&Value>,
        target: Option<&Value>,
        default: &str,
    ) {
        let or_default = |value: Option<&Value>| match normalized(value) {
            Value::Null => Value::String(default.to_string()),
            other => other,
        };
        let (source, target) = (or_default(source), or_default(target));
        if source != target {
            self.push(field, show(&source), show(&target));
        }
    }

    /// A true/false property; a missing flag is false, as portals treat it.
    pub fn flag(&mut self, field: &str, source: Option<&Value>, target: Option<&Value>) {
        let as_bool = |value: Option<&Value>| value.and_then(Value::as_bool).unwrap_or(false);
        let (source, target) = (as_bool(source), as_bool(target));
        if source != target {
            self.push(field, source.to_string(), target.to_string());
        }
    }

    /// An unordered list (tags, keywords, members): only the elements one side lacks are shown.
    pub fn set(&mut self, field: &str, source: &BTreeSet<String>, target: &BTreeSet<String>) {
        if source != target {
            let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
                let names: Vec<&str> = a.difference(b).map(String::as_str).collect();
                if names.is_empty() {
                    "nothing the other side lacks".to_string()
                } else {
                    format!("only here: {}", names.join(", "))
                }
            };
            self.push(field, only(source, target), only(target, source));
        }
    }

    /// Numbers compared with a tolerance: an extent travels as a decimal string and back.
    pub fn numbers(&mut self, field: &str, source: Option<&Value>, target: Option<&Value>) {
        let (a, b) = (numbers_in(source), numbers_in(target));
        let same = a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| (x - y).abs() <= 1e-9 * x.abs().max(1.0));
        if !same {
            self.push(field, show(&normalized(source)), show(&normalized(target)));
        }
    }

    pub fn digest(
        &mut self,
        field: &str,
        source: &Option<FileDigest>,
        target: &Option<FileDigest>,
    ) {
        if source != target {
            self.push(field, FileDigest::show(source), FileDigest::show(target));
        }
    }
}

/// Missing, null, empty strings and empty lists are the same "nothing": portals return any of
/// them for a property that was never set, and a copy cannot choose which.
pub(super) fn normalized(value: Option<&Value>) -> Value {
    match value {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        Some(Value::Array(a)) if a.is_empty() => Value::Null,
        Some(Value::Object(o)) if o.is_empty() => Value::Null,
        Some(other) => other.clone(),
    }
}

/// A string list field as a set; strings only.
pub(super) fn string_set(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn numbers_in(value: Option<&Value>) -> Vec<f64> {
    fn walk(value: &Value, out: &mut Vec<f64>) {
        match value {
            Value::Number(n) => out.extend(n.as_f64()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(value) = value {
        walk(value, &mut out);
    }
    out
}

/// A value for a person: strings without their JSON quotes, "(none)" for nothing.
pub(super) fn show(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// At most [`SHOWN_CHARS`] characters, cut on a character boundary, marked with "…".
pub(super) fn shorten(text: &str) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() <= SHOWN_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(SHOWN_CHARS - 1).collect();
    format!("{cut}…")
}

/// The identity of some bytes: their SHA-256 and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileDigest {
    pub sha256: String,
    pub bytes: u64,
}

impl FileDigest {
    pub fn of(bytes: &[u8]) -> FileDigest {
        FileDigest {
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
        }
    }

    pub fn show(digest: &Option<FileDigest>) -> String {
        match digest {
            Some(d) => format!(
                "sha256 {} ({} bytes)",
                &d.sha256[..16.min(d.sha256.len())],
                d.bytes
            ),
            None => "(none)".to_string(),
        }
    }
}

/// Hashes a download as it arrives, so a file of any size costs one chunk of memory.
pub(super) async fn digest_stream(
    download: Option<Download>,
) -> Result<Option<FileDigest>, PortalError> {
    let Some(download) = download else {
        return Ok(None);
    };
    let mut hasher = Sha256::new();
    let mut length: u64 = 0;
    let mut stream = std::pin::pin!(download.into_stream());
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        length += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok(Some(FileDigest {
        sha256: hex::encode(hasher.finalize()),
        bytes: length,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_values_are_all_the_same_nothing() {
        let mut diffs = Diffs::default();
        diffs.value("description", None, Some(&json!("")));
        diffs.value("tags", Some(&Value::Null), Some(&json!([])));
        diffs.value("properties", Some(&json!({})), None);
        assert!(diffs.into_vec().is_empty());
    }

    #[test]
    fn a_changed_value_shows_both_sides_shortened() {
        let mut diffs = Diffs::default();
        let long = "x".repeat(500);
        diffs.value("title", Some(&json!("AR")), Some(&json!(long)));
        let found = diffs.into_vec();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "title");
        assert_eq!(found[0].source, "AR");
        assert_eq!(found[0].target.chars().count(), SHOWN_CHARS);
        assert!(found[0].target.ends_with('…'));
    }

    #[test]
    fn sets_show_only_what_one_side_lacks() {
        let mut diffs = Diffs::default();
        let source: BTreeSet<String> = ["admin", "davis.reed", "jones.morris"]
            .map(String::from)
            .into();
        let target: BTreeSet<String> = ["admin", "davis.reed"].map(String::from).into();
        diffs.set("members", &source, &target);
        let found = diffs.into_vec();
        assert_eq!(found[0].source, "only here: jones.morris");
        assert_eq!(found[0].target, "nothing the other side lacks");
    }

    #[test]
    fn extents_compare_as_numbers_and_defaults_fill_in() {
        let mut diffs = Diffs::default();
        diffs.numbers(
            "extent",
            Some(&json!([[-94.62, 33.0], [-89.64, 36.5]])),
            Some(&json!([[-94.62, 33], [-89.64, 36.5]])),
        );
        diffs.with_default("units", None, Some(&json!("english")), "english");
        assert!(diffs.into_vec().is_empty());
        let mut diffs = Diffs::default();
        diffs.numbers("extent", Some(&json!([[0, 0], [1, 1]])), Some(&json!([])));
        assert_eq!(diffs.into_vec().len(), 1);
    }
}
