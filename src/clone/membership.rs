//! Group memberships, one task per (group, user), so one user's failure blocks only their own
//! memberships. Managers are added as admins, not as plain members.

use serde::{Deserialize, Serialize};

use super::{finished, require_target_id, target_username, TaskError, TaskKind};
use crate::engine::Context;
use crate::store::Completion;

#[derive(Debug, Serialize, Deserialize)]
pub struct MembershipTask {
    pub group_id: String,
    pub username: String,
    pub admin: bool,
    /// False for members the migration does not copy (system accounts, filtered users):
    /// they are added only if an account of that name already exists in the target.
    pub migrated: bool,
}

pub async fn run(ctx: &Context, job: MembershipTask) -> Result<Completion, TaskError> {
    let group = require_target_id(ctx, TaskKind::Group, &job.group_id).await?;
    let username = target_username(ctx, &job.username);
    if !job.migrated && ctx.target.user(&username).await?.is_none() {
        return Ok(Completion {
            outcome: "skipped".into(),
            skipped: true,
            note: Some(format!(
                "{username} is a member of the source group but is not migrated and has no account in the target"
            )),
            ..Completion::default()
        });
    }
    let members = ctx.target.group_members(&group).await?;
    let is = |list: &[String]| list.iter().any(|u| u.eq_ignore_ascii_case(&username));
    if members.owner.eq_ignore_ascii_case(&username) || is(&members.admins) {
        return Ok(finished("adopted"));
    }
    if is(&members.users) && !job.admin {
        return Ok(finished("adopted"));
    }
    if is(&members.users) && job.admin {
        ctx.target
            .post(
                &format!("community/groups/{group}/updateUsers"),
                &[("admins", username.clone())],
            )
            .await?;
        return Ok(finished("updated"));
    }
    let (users, admins) = if job.admin {
        (vec![], vec![username.clone()])
    } else {
        (vec![username.clone()], vec![])
    };
    let not_added = ctx.target.add_group_users(&group, &users, &admins).await?;
    if !not_added.is_empty() {
        return Err(TaskError::Permanent(format!(
            "the target portal did not add {username} to group {group} (notAdded); the user may be in too many groups or lack the required license"
        )));
    }
    Ok(finished("created"))
}
