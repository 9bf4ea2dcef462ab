//! Groups: search, read, members, create, update, membership, ownership, content.

use serde_json::Value;

use super::users::{missing_is_none, string_list};
use super::{
    expect_success, file_path, segment, thumbnail_part, Download, GroupMembers, Portal, PortalError,
};

/// The portal accepts at most 25 usernames per addUsers call.
const ADD_USERS_BATCH: usize = 25;

impl Portal {
    /// `community/groups`, every page.
    pub async fn search_groups(&self, q: &str) -> Result<Vec<Value>, PortalError> {
        self.paged("community/groups", &[("q", q.to_string())], "results")
            .await
    }

    /// `community/groups/<id>`; `None` when it does not exist.
    pub async fn group(&self, id: &str) -> Result<Option<Value>, PortalError> {
        self.get_existing(&format!("community/groups/{}", segment(id)), "id")
            .await
    }

    /// `community/groups/<id>/users`.
    pub async fn group_members(&self, id: &str) -> Result<GroupMembers, PortalError> {
        let path = format!("community/groups/{}/users", segment(id));
        let answer = self.get(&path, &[]).await?;
        let owner = answer
            .get("owner")
            .and_then(Value::as_str)
            .ok_or_else(|| self.invalid(&path, "no owner in the member list".into()))?
            .to_string();
        Ok(GroupMembers {
            owner,
            admins: string_list(answer.get("admins")),
            users: string_list(answer.get("users")),
        })
    }

    pub async fn group_thumbnail(
        &self,
        id: &str,
        thumbnail: &str,
    ) -> Result<Option<Download>, PortalError> {
        let path = format!(
            "community/groups/{}/info/{}",
            segment(id),
            file_path(thumbnail)
        );
        missing_is_none(self.download(&path).await)
    }

    /// `community/createGroup`; returns the new group object.
    pub async fn create_group(
        &self,
        params: &[(&str, String)],
        thumbnail: Option<(String, bytes::Bytes)>,
    ) -> Result<Value, PortalError> {
        let path = "community/createGroup";
        let files = thumbnail_part(thumbnail);
        let mut answer = if files.is_empty() {
            self.post(path, params).await?
        } else {
            self.post_multipart(path, params, files).await?
        };
        match answer.get_mut("group").map(Value::take) {
            Some(group) if group.get("id").and_then(Value::as_str).is_some() => Ok(group),
            _ => Err(self.invalid(path, "no group in the answer".into())),
        }
    }

    pub async fn update_group(
        &self,
        id: &str,
        params: &[(&str, String)],
        thumbnail: Option<(String, bytes::Bytes)>,
    ) -> Result<(), PortalError> {
        let path = format!("community/groups/{}/update", segment(id));
        self.post_with_thumbnail(&path, params, thumbnail).await
    }

    /// Adds members and admins in batches of 25; returns the usernames the portal did not add.
    pub async fn add_group_users(
        &self,
        id: &str,
        users: &[String],
        admins: &[String],
    ) -> Result<Vec<String>, PortalError> {
        let path = format!("community/groups/{}/addUsers", segment(id));
        let mut not_added = Vec::new();
        for (field, names) in [("users", users), ("admins", admins)] {
            for batch in names.chunks(ADD_USERS_BATCH) {
                let answer = self.post(&path, &[(field, batch.join(","))]).await?;
                not_added.extend(string_list(answer.get("notAdded")));
            }
        }
        Ok(not_added)
    }

    pub async fn reassign_group(&self, id: &str, new_owner: &str) -> Result<(), PortalError> {
        let path = format!("community/groups/{}/reassign", segment(id));
        let answer = self
            .post(&path, &[("targetUsername", new_owner.to_string())])
            .await?;
        expect_success(self, &path, &answer)
    }

    /// `content/groups/<id>`: the items shared with the group, every page.
    pub async fn group_content(&self, id: &str) -> Result<Vec<Value>, PortalError> {
        self.paged(&format!("content/groups/{}", segment(id)), &[], "items")
            .await
    }
}
