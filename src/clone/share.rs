//! Sharing an item with a group. Sharing is additive, so the item's own access level (org,
//! public) is passed along unchanged; it was set by the item task.

use serde::{Deserialize, Serialize};

use super::{finished, require_target_id, target_username, TaskError, TaskKind};
use crate::engine::Context;
use crate::store::Completion;

#[derive(Debug, Serialize, Deserialize)]
pub struct ShareTask {
    pub item_id: String,
    pub group_id: String,
    pub owner: String,
}

pub async fn run(ctx: &Context, job: ShareTask) -> Result<Completion, TaskError> {
    let item = require_target_id(ctx, TaskKind::Item, &job.item_id).await?;
    let group = require_target_id(ctx, TaskKind::Group, &job.group_id).await?;
    let owner = target_username(ctx, &job.owner);
    let (access, groups) = ctx.target.item_sharing(&owner, &item).await?;
    if groups.iter().any(|g| g == &group) {
        return Ok(finished("adopted"));
    }
    let everyone = access == "public";
    let org = everyone || access == "org";
    let not_shared = ctx
        .target
        .share_item(&owner, &item, everyone, org, std::slice::from_ref(&group))
        .await?;
    if !not_shared.is_empty() {
        return Err(TaskError::Permanent(format!(
            "the target portal did not share item {item} with group {group} (notSharedWith); is {owner} a member of it?"
        )));
    }
    Ok(finished("created"))
}
