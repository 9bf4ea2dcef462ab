//! Content: folders, items and their files, sharing, relationships, search.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;

use super::users::{missing_is_none, string_list};
use super::{
    as_number, expect_success, file_path, segment, thumbnail_part, Direction, Download, FilePart,
    PartBody, Portal, PortalError, Upload, UserContent,
};
use crate::class::{Classify, ErrorClass};

/// Chunk size when a large in-memory file is fed to the part uploader.
const BYTES_CHUNK: usize = 1024 * 1024;
/// Longest pause between attempts of one part.
const MAX_PART_BACKOFF: Duration = Duration::from_secs(60);

/// An item's data, sorted by how it travels.
enum ItemData {
    Text(String),
    /// One multipart request.
    Small(FilePart),
    /// addItem/update with `multipart=true`, then addPart × n, commit, status.
    Large {
        file_name: String,
        source: BoxStream<'static, Result<Bytes, PortalError>>,
    },
}

impl Portal {
    /// `content/users/<u>` (root, with the folder list) or `content/users/<u>/<folder>`,
    /// every page.
    pub async fn user_content(
        &self,
        username: &str,
        folder_id: Option<&str>,
    ) -> Result<UserContent, PortalError> {
        let path = match folder_id {
            Some(folder) => format!("content/users/{}/{}", segment(username), segment(folder)),
            None => format!("content/users/{}", segment(username)),
        };
        let mut content = UserContent::default();
        let mut first = true;
        self.for_each_page(&path, &[], "items", |page, items| {
            if first {
                if let Some(Value::Array(folders)) = page.get("folders") {
                    content.folders = folders.clone();
                }
                first = false;
            }
            content.items.extend(items);
        })
        .await?;
        Ok(content)
    }

    /// `content/users/<u>/createFolder`; returns the folder (`{id, title, username}`).
    pub async fn create_folder(&self, username: &str, title: &str) -> Result<Value, PortalError> {
        let path = format!("content/users/{}/createFolder", segment(username));
        let mut answer = self.post(&path, &[("title", title.to_string())]).await?;
        match answer.get_mut("folder").map(Value::take) {
            Some(folder) if folder.get("id").and_then(Value::as_str).is_some() => Ok(folder),
            _ => Err(self.invalid(&path, "no folder in the answer".into())),
        }
    }

    /// `content/items/<id>`; `None` on CONT_0001 (does not exist or is inaccessible).
    pub async fn item(&self, id: &str) -> Result<Option<Value>, PortalError> {
        self.get_existing(&format!("content/items/{}", segment(id)), "id")
            .await
    }

    /// `content/users/<owner>/items/<id>/delete`. An item that is already gone counts as
    /// deleted, so a retried delete succeeds.
    pub async fn delete_item(&self, owner: &str, id: &str) -> Result<(), PortalError> {
        let path = format!(
            "content/users/{}/items/{}/delete",
            segment(owner),
            segment(id)
        );
        match self.post(&path, &[]).await {
            Ok(answer) => expect_success(self, &path, &answer),
            Err(error) if error.is_not_found() => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The owner's view of an item: its access and the ids of the groups it is shared with.
    pub async fn item_sharing(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<(String, Vec<String>), PortalError> {
        let path = format!("content/users/{}/items/{}", segment(owner), segment(id));
        let answer = self.get(&path, &[]).await?;
        let sharing = answer.get("sharing");
        let access = sharing
            .and_then(|s| s.get("access"))
            .or_else(|| answer.get("item").and_then(|i| i.get("access")))
            .and_then(Value::as_str)
            .ok_or_else(|| self.invalid(&path, "no sharing.access in the answer".into()))?
            .to_string();
        let groups = string_list(sharing.and_then(|s| s.get("groups")));
        Ok((access, groups))
    }

    /// `content/items/<id>/data` as a stream; `None` when the item has no data.
    pub async fn item_data(&self, id: &str) -> Result<Option<Download>, PortalError> {
        match self
            .download(&format!("content/items/{}/data", segment(id)))
            .await
        {
            // Some portals answer a data-less file item with 500 "Item does not have a file."
            Err(error)
                if error
                    .api_message()
                    .is_some_and(|m| m.to_ascii_lowercase().contains("does not have a file")) =>
            {
                Ok(None)
            }
            other => other,
        }
    }

    pub async fn item_thumbnail(
        &self,
        id: &str,
        thumbnail: &str,
    ) -> Result<Option<Download>, PortalError> {
        let path = format!(
            "content/items/{}/info/{}",
            segment(id),
            file_path(thumbnail)
        );
        missing_is_none(self.download(&path).await)
    }

    /// `content/items/<id>/info/metadata/metadata.xml`; `None` when the item has none (the
    /// portal then answers with an error body or 404).
    pub async fn item_metadata(&self, id: &str) -> Result<Option<Bytes>, PortalError> {
        let path = format!("content/items/{}/info/metadata/metadata.xml", segment(id));
        match self.download(&path).await {
            Ok(Some(download)) => Ok(Some(download.bytes().await?)),
            Ok(None) => Ok(None),
            Err(PortalError::Api { code, .. }) if !matches!(code, 429 | 498 | 499 | 502..=504) => {
                Ok(None)
            }
            Err(PortalError::Http { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `content/users/<owner>/[<folder>/]addItem`; returns the new item id. Files above the
    /// upload threshold go as a multipart upload (parts, commit, status).
    pub async fn add_item(
        &self,
        owner: &str,
        folder_id: Option<&str>,
        params: &[(&str, String)],
        data: Option<Upload>,
        thumbnail: Option<(String, Bytes)>,
        metadata: Option<Bytes>,
    ) -> Result<String, PortalError> {
        let path = match folder_id {
            Some(folder) => format!(
                "content/users/{}/{}/addItem",
                segment(owner),
                segment(folder)
            ),
            None => format!("content/users/{}/addItem", segment(owner)),
        };
        let (answer, large) = self
            .send_item(&path, params, data, thumbnail, metadata)
            .await?;
        let id = answer
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| self.invalid(&path, "no item id in the answer".into()))?
            .to_string();
        if let Some((file_name, source)) = large {
            if let Err(error) = self
                .upload_parts_and_commit(owner, &id, params, &file_name, source)
                .await
            {
                // A half-uploaded item must not be found and adopted by the next attempt.
                let delete = format!(
                    "content/users/{}/items/{}/delete",
                    segment(owner),
                    segment(&id)
                );
                if let Err(cleanup) = self.post(&delete, &[]).await {
                    tracing::warn!(portal = %self.label(), item = %id, error = %cleanup, "could not delete a partial upload");
                }
                return Err(error);
            }
        }
        Ok(id)
    }

    /// `content/users/<owner>/items/<id>/update`, with new data, thumbnail or metadata.
    pub async fn update_item(
        &self,
        owner: &str,
        id: &str,
        params: &[(&str, String)],
        data: Option<Upload>,
        thumbnail: Option<(String, Bytes)>,
        metadata: Option<Bytes>,
    ) -> Result<(), PortalError> {
        let path = format!(
            "content/users/{}/items/{}/update",
            segment(owner),
            segment(id)
        );
        let (answer, large) = self
            .send_item(&path, params, data, thumbnail, metadata)
            .await?;
        expect_success(self, &path, &answer)?;
        if let Some((file_name, source)) = large {
            self.upload_parts_and_commit(owner, id, params, &file_name, source)
                .await?;
        }
        Ok(())
    }

    /// The addItem/update request itself. For a large file it only announces the upload
    /// (`multipart=true`, `filename`) and hands the source back for the parts.
    #[allow(clippy::type_complexity)]
    async fn send_item(
        &self,
        path: &str,
        params: &[(&str, String)],
        data: Option<Upload>,
        thumbnail: Option<(String, Bytes)>,
        metadata: Option<Bytes>,
    ) -> Result<
        (
            Value,
            Option<(String, BoxStream<'static, Result<Bytes, PortalError>>)>,
        ),
        PortalError,
    > {
        let mut params: Vec<(&str, String)> = params.to_vec();
        let mut files = thumbnail_part(thumbnail);
        if let Some(metadata) = metadata {
            files.push(FilePart::bytes("metadata", "metadata.xml", metadata));
        }
        let mut large = None;
        match data.map(|d| self.item_data_plan(d)) {
            None => {}
            Some(ItemData::Text(text)) => params.push(("text", text)),
            Some(ItemData::Small(part)) => files.push(part),
            Some(ItemData::Large { file_name, source }) => {
                params.push(("multipart", "true".into()));
                params.push(("filename", file_name.clone()));
                large = Some((file_name, source));
            }
        }
        let answer = if files.is_empty() {
            self.post(path, &params).await?
        } else {
            self.post_multipart(path, &params, files).await?
        };
        Ok((answer, large))
    }

    fn item_data_plan(&self, data: Upload) -> ItemData {
        let threshold = self.upload.multipart_threshold;
        match data {
            Upload::Text(text) => ItemData::Text(text),
            Upload::Bytes { file_name, bytes } if bytes.len() as u64 > threshold => {
                let chunks: Vec<Result<Bytes, PortalError>> = (0..bytes.len())
                    .step_by(BYTES_CHUNK)
                    .map(|start| Ok(bytes.slice(start..(start + BYTES_CHUNK).min(bytes.len()))))
                    .collect();
                ItemData::Large {
                    file_name,
                    source: futures::stream::iter(chunks).boxed(),
                }
            }
            Upload::Bytes { file_name, bytes } => {
                ItemData::Small(FilePart::bytes("file", file_name, bytes))
            }
            Upload::Stream {
                file_name,
                length,
                download,
            } if length > threshold => ItemData::Large {
                file_name,
                source: download.into_boxed_stream(),
            },
            Upload::Stream {
                file_name,
                length,
                download,
            } => ItemData::Small(FilePart {
                field: "file".into(),
                file_name,
                body: PartBody::Stream { length, download },
            }),
        }
    }

    /// Reads the source one part at a time (memory stays at about one part), uploads each
    /// part with its own retries, commits, and waits until the portal has processed it.
    async fn upload_parts_and_commit(
        &self,
        owner: &str,
        id: &str,
        params: &[(&str, String)],
        file_name: &str,
        mut source: BoxStream<'static, Result<Bytes, PortalError>>,
    ) -> Result<(), PortalError> {
        let items = format!("content/users/{}/items/{}", segment(owner), segment(id));
        let part_size = self.upload.part_size.max(1);
        let mut buffer = BytesMut::with_capacity(part_size);
        let mut source_done = false;
        let mut part_number: u32 = 1;
        loop {
            while !source_done && buffer.len() < part_size {
                match source.next().await {
                    Some(chunk) => buffer.extend_from_slice(&chunk?),
                    None => source_done = true,
                }
            }
            if buffer.is_empty() {
                break;
            }
            let part = buffer.split_to(part_size.min(buffer.len())).freeze();
            self.add_part(&format!("{items}/addPart"), part_number, file_name, part)
                .await?;
            part_number += 1;
        }

        let commit_params: Vec<(&str, String)> = params
            .iter()
            .filter(|(key, _)| *key == "type")
            .cloned()
            .collect();
        let commit = format!("{items}/commit");
        let answer = self.post(&commit, &commit_params).await?;
        expect_success(self, &commit, &answer)?;
        self.wait_for_upload(&format!("{items}/status")).await
    }

    async fn add_part(
        &self,
        path: &str,
        part_number: u32,
        file_name: &str,
        part: Bytes,
    ) -> Result<(), PortalError> {
        let mut attempt: u32 = 1;
        loop {
            let file = FilePart::bytes("file", file_name, part.clone());
            let result = self
                .post_multipart(path, &[("partNum", part_number.to_string())], vec![file])
                .await
                .and_then(|answer| expect_success(self, path, &answer));
            match result {
                Ok(()) => return Ok(()),
                Err(error)
                    if error.class() == ErrorClass::Transient
                        && attempt < self.upload.part_attempts =>
                {
                    let backoff = self
                        .upload
                        .part_backoff
                        .saturating_mul(2u32.saturating_pow(attempt - 1))
                        .min(MAX_PART_BACKOFF);
                    let pause = error.retry_after().unwrap_or(backoff);
                    tracing::debug!(portal = %self.label(), part = part_number, attempt, error = %error, "retrying upload part");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn wait_for_upload(&self, status_path: &str) -> Result<(), PortalError> {
        let deadline = Instant::now() + self.upload.status_timeout;
        loop {
            let answer = self.get(status_path, &[]).await?;
            match answer.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(()),
                Some("failed") => {
                    return Err(PortalError::Api {
                        portal: self.core.portal.clone(),
                        code: 0,
                        message_code: None,
                        message: "the portal failed to process the uploaded file".into(),
                        details: answer
                            .get("statusMessage")
                            .and_then(Value::as_str)
                            .map(|m| vec![m.to_string()])
                            .unwrap_or_default(),
                        endpoint: status_path.into(),
                    })
                }
                Some(_) => {}
                None => return Err(self.invalid(status_path, "no status in the answer".into())),
            }
            if Instant::now() >= deadline {
                return Err(PortalError::Timeout {
                    portal: self.core.portal.clone(),
                    endpoint: status_path.into(),
                });
            }
            tokio::time::sleep(self.upload.status_poll).await;
        }
    }

    /// `content/users/<owner>/items/<id>/share`; returns `notSharedWith`.
    pub async fn share_item(
        &self,
        owner: &str,
        id: &str,
        everyone: bool,
        org: bool,
        groups: &[String],
    ) -> Result<Vec<String>, PortalError> {
        let path = format!(
            "content/users/{}/items/{}/share",
            segment(owner),
            segment(id)
        );
        let mut params: Vec<(&str, String)> = vec![
            ("everyone", everyone.to_string()),
            ("org", org.to_string()),
            ("groups", groups.join(",")),
        ];
        if !groups.is_empty() {
            // Without it, sharing into a shared-update group is refused.
            params.push(("confirmItemControl", "true".into()));
        }
        let answer = self.post(&path, &params).await?;
        Ok(string_list(answer.get("notSharedWith")))
    }

    /// `content/items/<id>/relatedItems` for the given relationship types, every page.
    pub async fn related_items(
        &self,
        id: &str,
        types: &[&str],
        direction: Direction,
    ) -> Result<Vec<Value>, PortalError> {
        let path = format!("content/items/{}/relatedItems", segment(id));
        let mut related = Vec::new();
        let mut start: i64 = 1;
        loop {
            let params = [
                ("relationshipTypes", types.join(",")),
                ("direction", direction.as_param().to_string()),
                ("start", start.to_string()),
                ("num", "100".to_string()),
            ];
            let mut answer = self.get(&path, &params).await?;
            let page = match answer.get_mut("relatedItems").map(Value::take) {
                Some(Value::Array(page)) => page,
                _ => Vec::new(),
            };
            let count = page.len();
            related.extend(page);
            // Spelled nextkey, nextKey or (rarely) nextStart depending on the portal.
            let next = ["nextkey", "nextKey", "nextStart"]
                .iter()
                .find_map(|key| answer.get(*key).and_then(as_number));
            match next {
                Some(next) if next > 0 => {
                    if next <= start || count == 0 {
                        return Err(self.invalid(
                            &path,
                            format!("paging did not advance (start {start}, next {next})"),
                        ));
                    }
                    start = next;
                }
                _ => return Ok(related),
            }
        }
    }

    /// `content/users/<owner>/addRelationship`.
    pub async fn add_relationship(
        &self,
        owner: &str,
        origin: &str,
        destination: &str,
        relationship_type: &str,
    ) -> Result<(), PortalError> {
        let path = format!("content/users/{}/addRelationship", segment(owner));
        let answer = self
            .post(
                &path,
                &[
                    ("originItemId", origin.to_string()),
                    ("destinationItemId", destination.to_string()),
                    ("relationshipType", relationship_type.to_string()),
                ],
            )
            .await?;
        expect_success(self, &path, &answer)
    }

    /// `search`, every page. The index lags writes: not for exact lookups after a create.
    pub async fn search_items(&self, q: &str) -> Result<Vec<Value>, PortalError> {
        self.paged("search", &[("q", q.to_string())], "results")
            .await
    }
}
