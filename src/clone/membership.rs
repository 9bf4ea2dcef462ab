//! Group memberships, one task per (group, user), so one user's failure blocks only their own
//! memberships. Managers are added as admins, not as plain members.
//!
//! The tasks of one group that run at the same moment share their requests: the first one to
//! arrive opens a batch, waits a moment for the others, then reads the group's members once and
//! adds everyone missing in one `addUsers` call (the client splits it in calls of 25, the
//! portal's limit). Each task still succeeds or fails on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{finished, require_target_id, target_username, TaskError, TaskKind};
use crate::class::{Classify, ErrorClass};
use crate::engine::Context;
use crate::store::Completion;

/// How long the first task of a batch waits for others of the same group.
const GATHER: Duration = Duration::from_millis(25);
/// The portal's limit of usernames per `addUsers` call.
const BATCH: usize = 25;

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
    let outcome = ctx
        .memberships
        .join(
            ctx,
            &group,
            Request {
                username,
                admin: job.admin,
            },
        )
        .await?;
    Ok(finished(outcome))
}

/// One member to add to a target group.
struct Request {
    username: String,
    admin: bool,
}

/// What a batch tells each of its tasks: the outcome ("adopted", "updated", "created"), or
/// the error, by class, since a portal error cannot be handed to several tasks.
type Answer = Result<&'static str, (ErrorClass, String)>;

/// The members gathered for one group, each with the way to answer its task.
type Batch = Vec<(Request, oneshot::Sender<Answer>)>;

/// The open batches, by target group id.
#[derive(Default)]
pub struct MembershipBatches {
    open: Mutex<HashMap<String, Batch>>,
}

impl MembershipBatches {
    async fn join(
        &self,
        ctx: &Context,
        group: &str,
        request: Request,
    ) -> Result<&'static str, TaskError> {
        let (sender, receiver) = oneshot::channel();
        let leads = {
            let mut open = self
                .open
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match open.get_mut(group) {
                Some(waiting) if waiting.len() < BATCH => {
                    waiting.push((request, sender));
                    false
                }
                _ => {
                    open.insert(group.to_string(), vec![(request, sender)]);
                    true
                }
            }
        };
        if leads {
            tokio::time::sleep(GATHER).await;
            let batch = {
                let mut open = self
                    .open
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                open.remove(group).unwrap_or_default()
            };
            settle(ctx, group, batch).await;
        }
        match receiver.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err((ErrorClass::Transient, message))) => Err(TaskError::Transient(message)),
            Ok(Err((_, message))) => Err(TaskError::Permanent(message)),
            // The task leading the batch was stopped (shutdown): try again later.
            Err(_) => Err(TaskError::Transient(format!(
                "the membership batch of group {group} was interrupted"
            ))),
        }
    }
}

/// Reads the group's members once, then adds (or promotes) everyone of the batch not yet
/// there, and answers each task.
async fn settle(ctx: &Context, group: &str, batch: Batch) {
    let fail_all = |batch: Batch, class, message: String| {
        for (_, answer) in batch {
            let _ = answer.send(Err((class, message.clone())));
        }
    };
    let members = match ctx.target.group_members(group).await {
        Ok(members) => members,
        Err(error) => return fail_all(batch, error.class(), error.to_string()),
    };
    let is =
        |list: &[String], username: &str| list.iter().any(|u| u.eq_ignore_ascii_case(username));
    let (mut add_users, mut add_admins, mut promote) = (Vec::new(), Vec::new(), Vec::new());
    let mut pending = Vec::new();
    for (request, answer) in batch {
        let name = request.username.as_str();
        let present = members.owner.eq_ignore_ascii_case(name) || is(&members.admins, name);
        if present || (is(&members.users, name) && !request.admin) {
            let _ = answer.send(Ok("adopted"));
        } else if is(&members.users, name) {
            promote.push(request.username.clone());
            pending.push((request, answer, "updated"));
        } else {
            if request.admin {
                add_admins.push(request.username.clone());
            } else {
                add_users.push(request.username.clone());
            }
            pending.push((request, answer, "created"));
        }
    }
    add_users.sort();
    add_admins.sort();
    let mut not_added = Vec::new();
    if !add_users.is_empty() || !add_admins.is_empty() {
        match ctx
            .target
            .add_group_users(group, &add_users, &add_admins)
            .await
        {
            Ok(names) => not_added = names,
            Err(error) => {
                let batch = pending.into_iter().map(|(r, a, _)| (r, a)).collect();
                return fail_all(batch, error.class(), error.to_string());
            }
        }
    }
    if !promote.is_empty() {
        let path = format!("community/groups/{group}/updateUsers");
        if let Err(error) = ctx
            .target
            .post(&path, &[("admins", promote.join(","))])
            .await
        {
            let (class, message) = (error.class(), error.to_string());
            for (request, answer, outcome) in pending {
                let _ = if outcome == "updated" {
                    answer.send(Err((class, message.clone())))
                } else if is(&not_added, &request.username) {
                    answer.send(Err(refused(&request.username, group)))
                } else {
                    answer.send(Ok(outcome))
                };
            }
            return;
        }
    }
    for (request, answer, outcome) in pending {
        let _ = if is(&not_added, &request.username) {
            answer.send(Err(refused(&request.username, group)))
        } else {
            answer.send(Ok(outcome))
        };
    }
}

fn refused(username: &str, group: &str) -> (ErrorClass, String) {
    (
        ErrorClass::Permanent,
        format!(
            "the target portal did not add {username} to group {group} (notAdded); the user may be in too many groups or lack the required license"
        ),
    )
}
