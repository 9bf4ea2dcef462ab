//! Deleting the target copy of an item that was deleted in the source: queued by a sync
//! round only when `sync.propagate_deletes = true` (see `service::sync`).

use serde::{Deserialize, Serialize};

use super::{finished, text, TaskError, TaskKind};
use crate::engine::Context;
use crate::store::Completion;

#[derive(Debug, Serialize, Deserialize)]
pub struct DeleteItemTask {
    pub item_id: String,
    pub title: String,
}

/// Deletes the target copy of an item deleted in the source. The copy's owner is asked of
/// the target (it may have been reassigned there); a copy already gone counts as deleted.
pub async fn run(ctx: &Context, job: DeleteItemTask) -> Result<Completion, TaskError> {
    let source_id = job.item_id.clone();
    let mapped = ctx
        .store
        .call(move |s| s.target_id(TaskKind::Item.as_str(), &source_id))
        .await?;
    let Some(target_id) = mapped else {
        return Ok(Completion {
            outcome: "skipped".into(),
            skipped: true,
            note: Some(format!(
                "item '{}' was never copied; nothing to delete",
                job.title
            )),
            ..Completion::default()
        });
    };
    let Some(copy) = ctx.target.item(&target_id).await? else {
        return Ok(finished("deleted"));
    };
    let owner = text(&copy, "owner")
        .ok_or_else(|| TaskError::Permanent(format!("the target item {target_id} has no owner")))?;
    ctx.target.delete_item(&owner, &target_id).await?;
    tracing::info!(item = %job.item_id, target = %target_id, "deleted the copy of an item deleted in the source");
    Ok(Completion {
        outcome: "deleted".into(),
        target_id: Some(target_id.clone()),
        note: Some(format!(
            "deleted target item {target_id}: '{}' was deleted in the source",
            job.title
        )),
        ..Completion::default()
    })
}
