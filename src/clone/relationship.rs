//! Item relationships (Service2Data, Map2Service, …), added by the origin item's owner.

use serde::{Deserialize, Serialize};

use super::{finished, require_target_id, target_username, text, TaskError, TaskKind};
use crate::engine::Context;
use crate::portal::Direction;
use crate::store::Completion;

#[derive(Debug, Serialize, Deserialize)]
pub struct RelationshipTask {
    pub relationship_type: String,
    pub origin: String,
    pub destination: String,
    pub owner: String,
}

pub async fn run(ctx: &Context, job: RelationshipTask) -> Result<Completion, TaskError> {
    let origin = require_target_id(ctx, TaskKind::Item, &job.origin).await?;
    let destination = require_target_id(ctx, TaskKind::Item, &job.destination).await?;
    let related = ctx
        .target
        .related_items(
            &origin,
            &[job.relationship_type.as_str()],
            Direction::Forward,
        )
        .await?;
    if related
        .iter()
        .any(|item| text(item, "id").as_deref() == Some(destination.as_str()))
    {
        return Ok(finished("adopted"));
    }
    let owner = target_username(ctx, &job.owner);
    ctx.target
        .add_relationship(&owner, &origin, &destination, &job.relationship_type)
        .await?;
    Ok(finished("created"))
}
