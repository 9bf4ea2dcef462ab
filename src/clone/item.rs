//! Items. The copy carries the typeKeyword `source-<source id>` (the convention of the
//! portal's own cloner), which is how a later attempt finds it again: by listing the owner's
//! folder, which, unlike search, sees writes at once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::remap::{id_map_for, rewrite};
use super::{
    existing_outcome, mapped, require_target_id, target_username, text, TaskError, TaskKind,
};
use crate::engine::Context;
use crate::portal::Upload;
use crate::store::{ClaimedTask, Completion};

#[derive(Debug, Serialize, Deserialize)]
pub struct ItemTask {
    /// The item as the source's folder listing returned it.
    pub item: Value,
    pub folder_id: Option<String>,
    pub folder_title: Option<String>,
    /// Set on the update tasks a sync enqueues for an item modified in the source: overwrite
    /// the mapped copy whatever the `existing` policy says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_update: bool,
}

/// Types whose `/data` is JSON or text sent back as `text`; everything else with a file name
/// is a file item.
const TEXT_TYPES: &[&str] = &[
    "Web Map",
    "Web Scene",
    "Web Mapping Application",
    "Dashboard",
    "Operation View",
    "Feature Collection",
    "Feature Collection Template",
    "Workforce Project",
    "Hub Site Application",
    "Hub Page",
    "Hub Initiative",
    "Insights Model",
    "Insights Page",
    "Insights Workbook",
    "Insights Theme",
    "Mobile Application",
    "Symbol Set",
    "Color Set",
    "Content Category Set",
    "Windows Viewer Configuration",
    "StoryMap",
    "Web Experience",
    "Solution",
    "Data Pipeline",
    "Style",
    "QuickCapture Project",
    "Feature Service",
    "Map Service",
    "Image Service",
    "Vector Tile Service",
    "Scene Service",
    "WMS",
    "WFS",
    "WMTS",
    "Geoprocessing Service",
    "Geocoding Service",
    "Application",
    "Document Link",
];

/// Whether an item's data is a file (copied byte for byte) rather than JSON or text (copied
/// with its references rewritten).
pub(crate) fn is_file_item(item: &Value) -> bool {
    let item_type = text(item, "type").unwrap_or_default();
    text(item, "name").is_some() && !TEXT_TYPES.contains(&item_type.as_str())
}

pub fn source_keyword(source_id: &str) -> String {
    format!("source-{source_id}")
}

pub async fn run(
    ctx: &Context,
    _task: &ClaimedTask,
    job: ItemTask,
) -> Result<Completion, TaskError> {
    let item = &job.item;
    let source_id =
        text(item, "id").ok_or_else(|| TaskError::Permanent("source item has no id".into()))?;
    let title = text(item, "title").unwrap_or_default();
    let item_type = text(item, "type").unwrap_or_default();
    let owner = target_username(ctx, &text(item, "owner").unwrap_or_default());
    let folder = match &job.folder_id {
        Some(folder) => Some(require_target_id(ctx, TaskKind::Folder, folder).await?),
        None => None,
    };
    let intent = super::intent_key(TaskKind::Item, &source_id);

    if job.force_update {
        let mapped_copy = {
            let id = source_id.clone();
            ctx.store
                .call(move |s| s.target_id(TaskKind::Item.as_str(), &id))
                .await?
        };
        // By the id map, not the folder listing: the item may have moved folders since.
        if let Some(target_id) = mapped_copy {
            let copy = Copy {
                item,
                source_id: &source_id,
                item_type: &item_type,
                owner: &owner,
                target_id: &target_id,
            };
            return copy.overwrite(ctx, "updated").await;
        }
    }

    if let Some(existing) = find_copy(ctx, &owner, folder.as_deref(), &source_id).await? {
        let target_id = text(&existing, "id").unwrap_or_default();
        let copy = Copy {
            item,
            source_id: &source_id,
            item_type: &item_type,
            owner: &owner,
            target_id: &target_id,
        };
        if super::has_intent(ctx, &intent).await? {
            // An earlier attempt of ours created it but may have died mid-upload (a multipart
            // item left `partial`) or before the thumbnail: send everything again over it.
            return copy.overwrite(ctx, "created").await;
        }
        let what = format!("item '{title}' ({item_type}) of {owner}");
        if let Some(done) = existing_outcome(
            ctx.settings.existing.items,
            &what,
            TaskKind::Item,
            &source_id,
            &target_id,
        )? {
            return Ok(done);
        }
        return copy.overwrite(ctx, "updated").await;
    }

    let content = Content::fetch(ctx, item, &source_id, &item_type).await?;
    let note = content.note();
    super::set_intent(ctx, &intent).await?;
    let target_id = ctx
        .target
        .add_item(
            &owner,
            folder.as_deref(),
            &content.params,
            content.data,
            content.thumbnail,
            content.metadata,
        )
        .await?;
    finish(ctx, item, &source_id, &owner, &target_id).await?;
    let mut completion = mapped(TaskKind::Item, &source_id, &target_id, "created");
    completion.note = note;
    Ok(completion)
}

/// A source item and the target item that is its copy.
struct Copy<'a> {
    item: &'a Value,
    source_id: &'a str,
    item_type: &'a str,
    owner: &'a str,
    target_id: &'a str,
}

impl Copy<'_> {
    /// Sends the source's properties, data, thumbnail and metadata over the copy.
    async fn overwrite(&self, ctx: &Context, outcome: &str) -> Result<Completion, TaskError> {
        let content = Content::fetch(ctx, self.item, self.source_id, self.item_type).await?;
        let note = content.note();
        ctx.target
            .update_item(
                self.owner,
                self.target_id,
                &content.params,
                content.data,
                content.thumbnail,
                content.metadata,
            )
            .await?;
        finish(ctx, self.item, self.source_id, self.owner, self.target_id).await?;
        let mut completion = mapped(TaskKind::Item, self.source_id, self.target_id, outcome);
        completion.note = note;
        Ok(completion)
    }
}

/// The copy an earlier attempt (or an earlier migration) made, found by its source keyword.
async fn find_copy(
    ctx: &Context,
    owner: &str,
    folder: Option<&str>,
    source_id: &str,
) -> Result<Option<Value>, TaskError> {
    let keyword = source_keyword(source_id);
    let listing = ctx.target.user_content(owner, folder).await?;
    Ok(listing.items.into_iter().find(|item| {
        item.get("typeKeywords")
            .and_then(Value::as_array)
            .is_some_and(|keywords| {
                keywords
                    .iter()
                    .any(|k| k.as_str() == Some(keyword.as_str()))
            })
    }))
}

/// Steps after the item exists, all idempotent: the item's own access level, and its URL when
/// it names the item itself (`?appid=<id>`), which only now has its target id.
async fn finish(
    ctx: &Context,
    item: &Value,
    source_id: &str,
    owner: &str,
    target_id: &str,
) -> Result<(), TaskError> {
    if let Some(url) = text(item, "url") {
        if url.contains(source_id) {
            let fixed = url.replace(source_id, target_id);
            ctx.target
                .update_item(owner, target_id, &[("url", fixed)], None, None, None)
                .await?;
        }
    }
    let access = text(item, "access").unwrap_or_default();
    if access == "org" || access == "public" {
        let everyone = access == "public";
        ctx.target
            .share_item(owner, target_id, everyone, true, &[])
            .await?;
    }
    Ok(())
}

/// Everything sent to addItem/update for one item.
struct Content {
    params: Vec<(&'static str, String)>,
    data: Option<Upload>,
    thumbnail: Option<(String, bytes::Bytes)>,
    metadata: Option<bytes::Bytes>,
    unmapped: Vec<String>,
}

impl Content {
    async fn fetch(
        ctx: &Context,
        item: &Value,
        source_id: &str,
        item_type: &str,
    ) -> Result<Content, TaskError> {
        let mut params: Vec<(&'static str, String)> = Vec::new();
        for field in [
            "title",
            "type",
            "description",
            "snippet",
            "accessInformation",
            "licenseInfo",
            "culture",
            "spatialReference",
        ] {
            if let Some(value) = text(item, field) {
                params.push((field, value));
            }
        }
        let mut keywords: Vec<String> = item
            .get("typeKeywords")
            .and_then(Value::as_array)
            .map(|k| {
                k.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        keywords.retain(|k| !k.starts_with("source-"));
        keywords.push(source_keyword(source_id));
        params.push(("typeKeywords", keywords.join(",")));
        params.push(("tags", super::joined(item, "tags")));
        let categories = super::joined(item, "categories");
        if !categories.is_empty() {
            params.push(("categories", categories));
        }
        if let Some(extent) = extent_param(item.get("extent")) {
            params.push(("extent", extent));
        }
        if let Some(properties) = item.get("properties").filter(|p| !p.is_null()) {
            params.push(("properties", properties.to_string()));
        }
        let mut unmapped = Vec::new();
        if let Some(url) = text(item, "url") {
            let ids = id_map_for(ctx, &url).await?;
            let rewritten = rewrite(&url, &ids, &ctx.settings.references.url_map, source_id);
            unmapped.extend(rewritten.unmapped);
            params.push(("url", rewritten.text));
        }

        let is_file = is_file_item(item);
        let data = match ctx.source.item_data(source_id).await? {
            // An empty body is a 0-byte file for a file item: the copy gets its (empty)
            // file, not an item without one.
            None if is_file => text(item, "name").map(|file_name| Upload::Bytes {
                file_name,
                bytes: bytes::Bytes::new(),
            }),
            None => None,
            Some(download) if is_file => {
                let file_name = text(item, "name")
                    .or_else(|| download.file_name().map(str::to_string))
                    .unwrap_or_else(|| "data".into());
                match download.content_length() {
                    Some(length) => Some(Upload::Stream {
                        file_name,
                        length,
                        download,
                    }),
                    None => Some(Upload::Bytes {
                        file_name,
                        bytes: download.bytes().await?,
                    }),
                }
            }
            Some(download) => {
                let bytes = download.bytes().await?;
                if bytes.is_empty() {
                    None
                } else {
                    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                        TaskError::Permanent(format!(
                            "the data of this {item_type} item is not UTF-8 text"
                        ))
                    })?;
                    if text.trim_start().starts_with('{') || text.trim_start().starts_with('[') {
                        serde_json::from_str::<Value>(&text).map_err(|e| {
                            TaskError::Permanent(format!("the data of this {item_type} item is invalid JSON ({e}); fix it in the source and run `retry`"))
                        })?;
                    }
                    let ids = id_map_for(ctx, &text).await?;
                    let rewritten =
                        rewrite(&text, &ids, &ctx.settings.references.url_map, source_id);
                    unmapped.extend(rewritten.unmapped);
                    Some(Upload::Text(rewritten.text))
                }
            }
        };
        let thumbnail = match text(item, "thumbnail") {
            Some(path) => match ctx.source.item_thumbnail(source_id, &path).await? {
                Some(download) => Some((super::user::file_name(&path), download.bytes().await?)),
                None => None,
            },
            None => None,
        };
        let metadata = ctx.source.item_metadata(source_id).await?;
        unmapped.sort();
        unmapped.dedup();
        Ok(Content {
            params,
            data,
            thumbnail,
            metadata,
            unmapped,
        })
    }

    fn note(&self) -> Option<String> {
        (!self.unmapped.is_empty()).then(|| {
            format!(
                "references not migrated (still pointing at the source): {}",
                self.unmapped.join(", ")
            )
        })
    }
}

/// `[[xmin,ymin],[xmax,ymax]]` as the `xmin,ymin,xmax,ymax` string addItem takes.
fn extent_param(extent: Option<&Value>) -> Option<String> {
    let corners = extent?.as_array()?;
    if corners.len() != 2 {
        return None;
    }
    let numbers: Vec<f64> = corners
        .iter()
        .filter_map(Value::as_array)
        .flat_map(|corner| corner.iter().filter_map(Value::as_f64))
        .collect();
    (numbers.len() == 4).then(|| {
        numbers
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extent_becomes_the_form_string() {
        let extent = serde_json::json!([[-94.62, 33.0], [-89.64, 36.5]]);
        assert_eq!(
            extent_param(Some(&extent)).as_deref(),
            Some("-94.62,33,-89.64,36.5")
        );
        assert_eq!(extent_param(Some(&serde_json::json!([]))), None);
    }
}
