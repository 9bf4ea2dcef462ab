//! Items: properties, owner and folder, sharing, data, thumbnail, metadata, relationships, and
//! references that still point at the source.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

use super::diff::{digest_stream, show, string_set, Diffs, FileDigest};
use super::objects::{gone_from_source, read_error};
use super::{Compared, Verifier};
use crate::clone::item::{source_keyword, ItemTask};
use crate::clone::remap::rewrite;
use crate::clone::text;
use crate::plan::{referenced_ids, RELATIONSHIP_TYPES};
use crate::portal::{Direction, Download, Portal, PortalError};

/// Per-type relationship queries in flight at once for one item, as discovery does.
const RELATIONSHIP_QUERIES_AT_ONCE: usize = 8;

pub(super) async fn item(
    v: &Verifier,
    task: &ItemTask,
    source_id: &str,
    target_id: &str,
) -> Result<Compared, String> {
    let (source, target) =
        tokio::try_join!(v.source.item(source_id), v.target.item(target_id)).map_err(read_error)?;
    let source = source.ok_or_else(|| gone_from_source(&format!("item {source_id}")))?;
    let Some(target) = target else {
        return Ok(Compared::Missing(format!(
            "the target has no item {target_id}"
        )));
    };
    let source_owner = text(&source, "owner")
        .or_else(|| text(&task.item, "owner"))
        .unwrap_or_default();
    let target_owner = text(&target, "owner").unwrap_or_default();

    let (source_folder, target_folder, sharing, data, thumbnails, metadata, relationships) =
        tokio::try_join!(
            folder_title(v, &source_owner, &source, task.folder_title.clone(), true),
            folder_title(v, &target_owner, &target, None, false),
            async {
                tokio::try_join!(
                    v.source.item_sharing(&source_owner, source_id),
                    v.target.item_sharing(&target_owner, target_id)
                )
            },
            compare_data(v, &source, source_id, target_id),
            async {
                tokio::try_join!(
                    item_thumbnail(&v.source, source_id, &source),
                    item_thumbnail(&v.target, target_id, &target)
                )
            },
            async {
                tokio::try_join!(
                    v.source.item_metadata(source_id),
                    v.target.item_metadata(target_id)
                )
            },
            relationships(v, source_id, target_id),
        )
        .map_err(read_error)?;

    let mut diffs = Diffs::default();
    let expected_owner = v.target_username(&source_owner);
    if !expected_owner.eq_ignore_ascii_case(&target_owner) {
        diffs.push("owner", expected_owner, target_owner.clone());
    }
    if source_folder != target_folder {
        let show_folder = |f: Option<String>| f.unwrap_or_else(|| "/".into());
        diffs.push(
            "folder",
            show_folder(source_folder),
            show_folder(target_folder),
        );
    }
    for name in [
        "title",
        "type",
        "description",
        "snippet",
        "spatialReference",
        "name",
        "accessInformation",
        "licenseInfo",
        "culture",
    ] {
        diffs.value(name, source.get(name), target.get(name));
    }
    let without_source_keywords = |item: &Value| -> BTreeSet<String> {
        let mut keywords = string_set(item.get("typeKeywords"));
        keywords.retain(|k| !k.starts_with("source-"));
        keywords
    };
    diffs.set(
        "typeKeywords",
        &without_source_keywords(&source),
        &without_source_keywords(&target),
    );
    // How the next run finds this copy again: without it the item would be copied twice.
    let keyword = source_keyword(source_id);
    if !string_set(target.get("typeKeywords")).contains(&keyword) {
        diffs.push("sourceKeyword", keyword, "(none)");
    }
    diffs.set(
        "tags",
        &string_set(source.get("tags")),
        &string_set(target.get("tags")),
    );
    diffs.set(
        "categories",
        &string_set(source.get("categories")),
        &string_set(target.get("categories")),
    );
    diffs.numbers("extent", source.get("extent"), target.get("extent"));
    diffs.value(
        "properties",
        source.get("properties"),
        target.get("properties"),
    );

    let expected_url = text(&source, "url").map(|url| {
        let ids = id_lookup(v, &url);
        let rewritten = rewrite(&url, &ids, &v.settings.references.url_map, source_id).text;
        // `?appid=<own id>` names the item itself, which only got its target id on creation.
        rewritten.replace(source_id, target_id)
    });
    let found_url = text(&target, "url");
    diffs.value(
        "url",
        expected_url.map(Value::String).as_ref(),
        found_url.clone().map(Value::String).as_ref(),
    );

    let ((source_access, source_groups), (_, target_groups)) = sharing;
    let expected_groups: BTreeSet<String> = source_groups
        .iter()
        .filter_map(|group| v.maps.groups.get(group).cloned())
        .collect();
    // Shares with groups outside the migration are not copied (the plan reports them), so an
    // item shared only with such groups stays private in the target.
    let source_access = text(&source, "access").unwrap_or(source_access);
    let expected_access = if source_access == "shared" && expected_groups.is_empty() {
        "private".to_string()
    } else {
        source_access
    };
    let found_access = text(&target, "access").unwrap_or_default();
    if expected_access != found_access {
        diffs.push("access", expected_access, found_access);
    }
    diffs.set(
        "groups",
        &expected_groups,
        &target_groups.into_iter().collect(),
    );

    if let Some((source_shown, target_shown)) = data.difference {
        diffs.push("data", source_shown, target_shown);
    }
    let (source_thumbnail, target_thumbnail) = thumbnails;
    diffs.digest("thumbnail", &source_thumbnail, &target_thumbnail);
    let (source_metadata, target_metadata) = metadata;
    let digest = |bytes: Option<Bytes>| bytes.map(|b| FileDigest::of(&b));
    diffs.digest(
        "metadata",
        &digest(source_metadata),
        &digest(target_metadata),
    );
    let (expected_relationships, found_relationships) = relationships;
    diffs.set(
        "relationships",
        &expected_relationships,
        &found_relationships,
    );

    let mut leftovers = BTreeSet::new();
    for text in data.target_text.iter().chain(found_url.iter()) {
        leftovers.extend(leftover_references(v, text));
    }
    if !leftovers.is_empty() {
        let list: Vec<String> = leftovers.into_iter().collect();
        diffs.push("leftoverReferences", "(none)", list.join(", "));
    }
    Ok(Compared::Diffs(diffs.into_vec()))
}

/// The title of the folder holding an item (`None` for the root). A portal that does not say
/// (`ownerFolder` absent) leaves the caller's fallback: what discovery recorded.
async fn folder_title(
    v: &Verifier,
    owner: &str,
    item: &Value,
    fallback: Option<String>,
    is_source: bool,
) -> Result<Option<String>, PortalError> {
    let id = match item.get("ownerFolder") {
        None => return Ok(fallback),
        Some(Value::String(id)) if !id.is_empty() && id != "/" => id.clone(),
        Some(_) => return Ok(None),
    };
    let folders = if is_source {
        v.source_folders(owner).await?
    } else {
        v.target_folders(owner).await?
    };
    Ok(Some(
        folders
            .iter()
            .find(|(folder_id, _)| folder_id == &id)
            .map(|(_, title)| title.clone())
            .unwrap_or_else(|| format!("(unknown folder {id})")),
    ))
}

async fn item_thumbnail(
    portal: &Portal,
    id: &str,
    item: &Value,
) -> Result<Option<FileDigest>, PortalError> {
    let Some(path) = text(item, "thumbnail") else {
        return Ok(None);
    };
    digest_stream(portal.item_thumbnail(id, &path).await?).await
}

/// What the data comparison found: the difference shown (expected, found), and the target's
/// text data, which is also searched for leftover references.
struct DataComparison {
    difference: Option<(String, String)>,
    target_text: Option<String>,
}

/// Text data (JSON of web maps, apps, …) is compared with what the migration would send now:
/// the source text with every mapped id and URL rewritten. File data is compared by SHA-256,
/// hashed as it streams in, so a file of any size costs one chunk of memory.
async fn compare_data(
    v: &Verifier,
    source: &Value,
    source_id: &str,
    target_id: &str,
) -> Result<DataComparison, PortalError> {
    let is_file = crate::clone::item::is_file_item(source);
    let (source_data, target_data) =
        tokio::try_join!(v.source.item_data(source_id), v.target.item_data(target_id))?;
    if is_file {
        let (source_digest, target_digest) =
            tokio::try_join!(digest_stream(source_data), digest_stream(target_data))?;
        let difference = (source_digest != target_digest).then(|| {
            (
                FileDigest::show(&source_digest),
                FileDigest::show(&target_digest),
            )
        });
        return Ok(DataComparison {
            difference,
            target_text: None,
        });
    }
    let (source_bytes, target_bytes) =
        tokio::try_join!(text_of(source_data), text_of(target_data))?;
    let expected = source_bytes.map(|text| {
        let ids = id_lookup(v, &text);
        rewrite(&text, &ids, &v.settings.references.url_map, source_id).text
    });
    let difference = match (&expected, &target_bytes) {
        (None, None) => None,
        (Some(expected), Some(found)) => text_difference(expected, found),
        (expected, found) => Some((
            expected.clone().unwrap_or_else(|| "(none)".into()),
            found.clone().unwrap_or_else(|| "(none)".into()),
        )),
    };
    Ok(DataComparison {
        difference,
        target_text: target_bytes,
    })
}

/// Small text bodies in memory (as the migration holds them); empty means no data.
async fn text_of(download: Option<Download>) -> Result<Option<String>, PortalError> {
    let Some(download) = download else {
        return Ok(None);
    };
    let bytes = download.bytes().await?;
    Ok((!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned()))
}

/// JSON is compared as JSON (a portal may reformat or reorder it) and the first differing
/// place is shown; other text must match exactly.
fn text_difference(expected: &str, found: &str) -> Option<(String, String)> {
    match (
        serde_json::from_str::<Value>(expected),
        serde_json::from_str::<Value>(found),
    ) {
        (Ok(a), Ok(b)) => first_difference(&a, &b, "$").map(|(path, a, b)| {
            (
                format!("{path} = {}", show(&a)),
                format!("{path} = {}", show(&b)),
            )
        }),
        _ if expected == found => None,
        _ => Some((expected.to_string(), found.to_string())),
    }
}

/// The first place (a JSON path) where two documents differ, with the values there.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<(String, Value, Value)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, value) in x {
                let here = format!("{path}.{key}");
                match y.get(key) {
                    Some(other) => {
                        if let Some(found) = first_difference(value, other, &here) {
                            return Some(found);
                        }
                    }
                    None => return Some((here, value.clone(), Value::Null)),
                }
            }
            y.iter()
                .find(|(key, _)| !x.contains_key(*key))
                .map(|(key, value)| (format!("{path}.{key}"), Value::Null, value.clone()))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some((path.to_string(), a.clone(), b.clone())),
    }
}

/// Every 32-hex token of `text` with its target id when it is a migrated item or group, as
/// `clone::remap::id_map_for` looks them up, but from the id map read at start.
fn id_lookup(v: &Verifier, text: &str) -> HashMap<String, Option<String>> {
    referenced_ids(text)
        .into_iter()
        .map(|id| {
            let target = v
                .maps
                .items
                .get(&id)
                .or_else(|| v.maps.groups.get(&id))
                .cloned();
            (id, target)
        })
        .collect()
}

/// Source ids that were migrated, and source service roots of the URL map, still present in
/// target text: references the migration should have rewritten.
fn leftover_references(v: &Verifier, text: &str) -> BTreeSet<String> {
    let mut found: BTreeSet<String> = referenced_ids(text)
        .into_iter()
        .filter(|id| {
            let mapped_elsewhere = |map: &HashMap<String, String>| {
                map.get(id).is_some_and(|t| !t.eq_ignore_ascii_case(id))
            };
            mapped_elsewhere(&v.maps.items) || mapped_elsewhere(&v.maps.groups)
        })
        .collect();
    for (from, to) in &v.settings.references.url_map {
        // A target root that contains the source root cannot be told apart from it.
        if !to.contains(from.as_str()) && text.contains(from.as_str()) {
            found.insert(from.clone());
        }
    }
    found
}

/// Forward relationships as `Type → target id`: the source's, mapped (relationships to items
/// outside the migration are not copied), and the target's. The portal cannot list an item's
/// relationships with their types in one call, so types are asked one by one, and only when
/// the item has any relationship at all.
async fn relationships(
    v: &Verifier,
    source_id: &str,
    target_id: &str,
) -> Result<(BTreeSet<String>, BTreeSet<String>), PortalError> {
    let (source_any, target_any) = tokio::try_join!(
        v.source
            .related_items(source_id, RELATIONSHIP_TYPES, Direction::Forward),
        v.target
            .related_items(target_id, RELATIONSHIP_TYPES, Direction::Forward),
    )?;
    let mut expected = BTreeSet::new();
    let mut expected_types = Vec::new();
    if !source_any.is_empty() {
        for (relationship_type, related) in
            per_type(&v.source, source_id, RELATIONSHIP_TYPES).await?
        {
            for destination in related {
                if let Some(mapped) = v.maps.items.get(&destination) {
                    expected.insert(format!("{relationship_type} → {mapped}"));
                    expected_types.push(relationship_type);
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    if !target_any.is_empty() {
        expected_types.sort_unstable();
        expected_types.dedup();
        let mut explained = BTreeSet::new();
        for (relationship_type, related) in per_type(&v.target, target_id, &expected_types).await? {
            for destination in related {
                found.insert(format!("{relationship_type} → {destination}"));
                explained.insert(destination);
            }
        }
        // Related through a type the source does not use: named without asking all types.
        for destination in target_any.iter().filter_map(|item| text(item, "id")) {
            if !explained.contains(&destination) {
                found.insert(format!("(another type) → {destination}"));
            }
        }
    }
    Ok((expected, found))
}

async fn per_type(
    portal: &Portal,
    id: &str,
    types: &[&'static str],
) -> Result<Vec<(&'static str, Vec<String>)>, PortalError> {
    let queries: Vec<_> = types
        .iter()
        .map(|relationship_type| {
            let (portal, id) = (portal.clone(), id.to_string());
            async move {
                let related = portal
                    .related_items(&id, &[relationship_type], Direction::Forward)
                    .await?;
                let ids = related.iter().filter_map(|item| text(item, "id")).collect();
                Ok::<_, PortalError>((*relationship_type, ids))
            }
        })
        .collect();
    futures::stream::iter(queries)
        .buffer_unordered(RELATIONSHIP_QUERIES_AT_ONCE)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_data_shows_the_first_place_it_differs() {
        let expected = r#"{"operationalLayers":[{"itemId":"aaa","url":"u"}],"version":"2.7"}"#;
        let found = r#"{"version":"2.7","operationalLayers":[{"url":"u","itemId":"bbb"}]}"#;
        let (a, b) = text_difference(expected, found).expect("they differ");
        assert_eq!(a, "$.operationalLayers[0].itemId = aaa");
        assert_eq!(b, "$.operationalLayers[0].itemId = bbb");
        assert_eq!(
            text_difference(
                expected,
                &json!({"version":"2.7","operationalLayers":[{"url":"u","itemId":"aaa"}]})
                    .to_string()
            ),
            None
        );
    }

    #[test]
    fn plain_text_must_match_exactly() {
        assert_eq!(text_difference("a,b\n1,2\n", "a,b\n1,2\n"), None);
        assert!(text_difference("a,b\n1,2\n", "a,b\n1,3\n").is_some());
    }
}
