//! One module per task kind. Each object kind follows the same three steps: look in the
//! target for what exists (including what an interrupted earlier attempt made), create or
//! adopt according to the `existing` policy, and return a [`Completion`] that records the
//! source→target id in the same transaction that marks the task done.

pub mod delete_item;
pub mod folder;
pub mod group;
pub mod item;
pub mod membership;
pub mod relationship;
pub mod remap;
pub mod share;
pub mod user;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::class::{Classify, ErrorClass};
use crate::engine::Context;
use crate::portal::PortalError;
use crate::settings::ExistingPolicy;
use crate::store::{ClaimedTask, Completion, StoreError};

/// Every kind of task in the queue. The string forms are what the state file shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    Discover,
    DiscoverUser,
    DiscoverGroup,
    Link,
    User,
    Group,
    Folder,
    Item,
    Membership,
    Share,
    Relationship,
    /// A sync found the item deleted in the source and `sync.propagate_deletes` is on.
    DeleteItem,
}

impl TaskKind {
    pub const ALL: [TaskKind; 12] = [
        TaskKind::Discover,
        TaskKind::DiscoverUser,
        TaskKind::DiscoverGroup,
        TaskKind::Link,
        TaskKind::User,
        TaskKind::Group,
        TaskKind::Folder,
        TaskKind::Item,
        TaskKind::Membership,
        TaskKind::Share,
        TaskKind::Relationship,
        TaskKind::DeleteItem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Discover => "discover",
            TaskKind::DiscoverUser => "discover_user",
            TaskKind::DiscoverGroup => "discover_group",
            TaskKind::Link => "link",
            TaskKind::User => "user",
            TaskKind::Group => "group",
            TaskKind::Folder => "folder",
            TaskKind::Item => "item",
            TaskKind::Membership => "membership",
            TaskKind::Share => "share",
            TaskKind::Relationship => "relationship",
            TaskKind::DeleteItem => "delete_item",
        }
    }

    pub fn parse(kind: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// Claim order: discovery first so the queue fills early, then objects in the order their
    /// dependencies usually resolve. Dependencies, not priorities, guarantee correctness.
    pub fn priority(self) -> i64 {
        match self {
            TaskKind::Discover => 0,
            TaskKind::DiscoverUser | TaskKind::DiscoverGroup => 1,
            TaskKind::Link => 2,
            TaskKind::User => 10,
            TaskKind::Group => 20,
            TaskKind::Folder => 30,
            TaskKind::Item => 40,
            TaskKind::Membership => 50,
            TaskKind::Share => 60,
            TaskKind::Relationship => 70,
            TaskKind::DeleteItem => 80,
        }
    }

    /// The id map's kind for objects of this task kind. A deletion copies nothing, so it is
    /// not one (and never appears in a fresh `plan`).
    pub fn is_object(self) -> bool {
        !matches!(
            self,
            TaskKind::Discover
                | TaskKind::DiscoverUser
                | TaskKind::DiscoverGroup
                | TaskKind::Link
                | TaskKind::DeleteItem
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Boxed: a portal error carries the portal's whole message, and tasks return
    /// `Result<_, TaskError>` everywhere.
    #[error(transparent)]
    Portal(Box<PortalError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This object cannot be copied as it is (bad data, a conflict the policy forbids).
    #[error("{0}")]
    Permanent(String),
    /// Worth another try later (e.g. the target has not caught up yet).
    #[error("{0}")]
    Transient(String),
}

impl From<PortalError> for TaskError {
    fn from(error: PortalError) -> TaskError {
        TaskError::Portal(Box::new(error))
    }
}

impl Classify for TaskError {
    fn class(&self) -> ErrorClass {
        match self {
            TaskError::Portal(e) => e.class(),
            TaskError::Store(e) => e.class(),
            TaskError::Permanent(_) => ErrorClass::Permanent,
            TaskError::Transient(_) => ErrorClass::Transient,
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            TaskError::Portal(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Runs one claimed task.
pub async fn execute(ctx: &Context, task: &ClaimedTask) -> Result<Completion, TaskError> {
    let Some(kind) = TaskKind::parse(&task.kind) else {
        return Err(TaskError::Permanent(format!(
            "unknown task kind '{}' in the state file (written by a newer portal-migrate?)",
            task.kind
        )));
    };
    match kind {
        TaskKind::Discover => crate::plan::discover_org(ctx, payload(task)?).await,
        TaskKind::DiscoverUser => crate::plan::discover_user(ctx, payload(task)?).await,
        TaskKind::DiscoverGroup => crate::plan::discover_group(ctx, payload(task)?).await,
        TaskKind::Link => crate::plan::link(ctx, payload(task)?).await,
        TaskKind::User => user::run(ctx, payload(task)?).await,
        TaskKind::Group => group::run(ctx, payload(task)?).await,
        TaskKind::Folder => folder::run(ctx, payload(task)?).await,
        TaskKind::Item => item::run(ctx, task, payload(task)?).await,
        TaskKind::Membership => membership::run(ctx, payload(task)?).await,
        TaskKind::Share => share::run(ctx, payload(task)?).await,
        TaskKind::Relationship => relationship::run(ctx, payload(task)?).await,
        TaskKind::DeleteItem => delete_item::run(ctx, payload(task)?).await,
    }
}

fn payload<T: DeserializeOwned>(task: &ClaimedTask) -> Result<T, TaskError> {
    serde_json::from_value(task.payload.clone()).map_err(|e| {
        TaskError::Permanent(format!(
            "task {} ({}) has a payload this version cannot read: {e}",
            task.id, task.title
        ))
    })
}

/// What to do with an object that already exists in the target, per the `existing` policy.
/// `Ok(Some(completion))` ends the task; `Ok(None)` means "go on and update it".
pub(crate) fn existing_outcome(
    policy: ExistingPolicy,
    what: &str,
    kind: TaskKind,
    source_id: &str,
    target_id: &str,
) -> Result<Option<Completion>, TaskError> {
    match policy {
        ExistingPolicy::Adopt => Ok(Some(mapped(kind, source_id, target_id, "adopted"))),
        ExistingPolicy::Skip => Ok(Some(Completion {
            outcome: "skipped".into(),
            skipped: true,
            note: Some(format!("{what} exists in the target; skipped by policy")),
            ..Completion::default()
        })),
        ExistingPolicy::Fail => Err(TaskError::Permanent(format!(
            "{what} already exists in the target (id {target_id}) and existing.{} = \"fail\"",
            kind.as_str()
        ))),
        ExistingPolicy::Update => Ok(None),
    }
}

/// A completion that maps one source object to its target counterpart.
pub(crate) fn mapped(
    kind: TaskKind,
    source_id: &str,
    target_id: &str,
    outcome: &str,
) -> Completion {
    Completion {
        outcome: outcome.to_string(),
        target_id: Some(target_id.to_string()),
        id_map: vec![(
            kind.as_str().to_string(),
            source_id.to_string(),
            target_id.to_string(),
        )],
        ..Completion::default()
    }
}

/// A completion for relation-like tasks (membership, share, relationship) that map nothing.
pub(crate) fn finished(outcome: &str) -> Completion {
    Completion {
        outcome: outcome.to_string(),
        ..Completion::default()
    }
}

/// The target id of a source object that an earlier task mapped. Missing means the dependency
/// graph was bypassed (a bug) or the state file was edited: permanent for this task.
pub(crate) async fn require_target_id(
    ctx: &Context,
    kind: TaskKind,
    source_id: &str,
) -> Result<String, TaskError> {
    let (k, id) = (kind.as_str().to_string(), source_id.to_string());
    ctx.store
        .call(move |s| s.target_id(&k, &id))
        .await?
        .ok_or_else(|| {
            TaskError::Permanent(format!(
                "the {} {source_id} has no counterpart in the target (it was not migrated)",
                kind.as_str()
            ))
        })
}

/// The target username for a source username: the configured rename, else the same name.
pub(crate) fn target_username(ctx: &Context, source_username: &str) -> String {
    ctx.settings
        .users
        .rename
        .get(source_username)
        .cloned()
        .unwrap_or_else(|| source_username.to_string())
}

/// A string field of a portal JSON object, `None` when missing or null.
pub(crate) fn text(value: &Value, field: &str) -> Option<String> {
    value.get(field).and_then(Value::as_str).map(str::to_string)
}

/// Comma-joined array field, as the portal takes lists in forms.
pub(crate) fn joined(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Durable "I am about to create this" markers. The window between a create and the commit
/// that records it cannot be closed, so when a later attempt finds the object, the marker
/// tells "an earlier attempt of ours made it: finish it" from "it was there before: apply
/// the existing-object policy".
pub(crate) fn intent_key(kind: TaskKind, source_key: &str) -> String {
    format!("intent/{}/{source_key}", kind.as_str())
}

pub(crate) async fn set_intent(ctx: &Context, key: &str) -> Result<(), TaskError> {
    let key = key.to_string();
    Ok(ctx
        .store
        .call(move |s| s.set_control(&key, Some("1")))
        .await?)
}

pub(crate) async fn has_intent(ctx: &Context, key: &str) -> Result<bool, TaskError> {
    let key = key.to_string();
    Ok(ctx.store.call(move |s| s.control(&key)).await?.is_some())
}
