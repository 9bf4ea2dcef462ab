//! Folders: one level deep, titles unique per owner, so the title is the identity.

use serde::{Deserialize, Serialize};

use super::{existing_outcome, mapped, target_username, text, TaskError, TaskKind};
use crate::engine::Context;
use crate::store::Completion;

#[derive(Debug, Serialize, Deserialize)]
pub struct FolderTask {
    pub owner: String,
    pub folder_id: String,
    pub title: String,
}

pub async fn run(ctx: &Context, job: FolderTask) -> Result<Completion, TaskError> {
    let owner = target_username(ctx, &job.owner);
    let intent = super::intent_key(TaskKind::Folder, &job.folder_id);
    let listing = ctx.target.user_content(&owner, None).await?;
    let existing = listing.folders.iter().find(|folder| {
        text(folder, "title").is_some_and(|title| title.eq_ignore_ascii_case(&job.title))
    });
    if let Some(folder) = existing {
        let target_id = text(folder, "id").unwrap_or_default();
        if super::has_intent(ctx, &intent).await? {
            return Ok(mapped(
                TaskKind::Folder,
                &job.folder_id,
                &target_id,
                "created",
            ));
        }
        let what = format!("folder '{}' of {owner}", job.title);
        // Folders have no properties to update: "update" adopts.
        return Ok(existing_outcome(
            ctx.settings.existing.folders,
            &what,
            TaskKind::Folder,
            &job.folder_id,
            &target_id,
        )?
        .unwrap_or_else(|| mapped(TaskKind::Folder, &job.folder_id, &target_id, "adopted")));
    }
    super::set_intent(ctx, &intent).await?;
    let created = ctx.target.create_folder(&owner, &job.title).await?;
    let target_id = text(&created, "id").ok_or_else(|| {
        TaskError::Transient(format!(
            "createFolder '{}' answered without an id",
            job.title
        ))
    })?;
    Ok(mapped(
        TaskKind::Folder,
        &job.folder_id,
        &target_id,
        "created",
    ))
}
