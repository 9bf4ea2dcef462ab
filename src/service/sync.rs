//! Incremental sync: what a sync round (every round after the first migration) adds to
//! discovery. Discovery tasks are unique per (kind, source key), so each round has its own
//! keys (`org@3`, `<user>@3`, `all@3`); objects keep their keys, so a new object is enqueued
//! once and an unchanged one never again. An object whose source `modified` is newer than
//! the one recorded in its task payload gets an update task keyed `<id>@<modified>`, which
//! overwrites the mapped copy (payload flag `force_update`).
//!
//! Deletions: every item a round lists is marked present (a fact); after the round's
//! discovery, `link` asks the source about each migrated item not marked, and only an item
//! the source confirms gone is reported deleted — never one that merely left the filters.
//! With `sync.propagate_deletes = true` its copy is deleted from the target by a
//! `delete_item` task. Users and groups deleted in the source are reported, never deleted
//! in the target: removing an account or a group there loses what others own or share.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{json, Value};

use crate::clone::{self, text, TaskError, TaskKind};
use crate::engine::Context;
use crate::store::{Fact, NewTask, Store, StoreError, TaskKey, TaskRow, TaskState};

/// `control` keys recording the sync rounds (the state file is the only memory).
pub const ROUND_KEY: &str = "sync.round";
pub const ROUND_STARTED_KEY: &str = "sync.round_started_at";
pub const COMPLETED_ROUND_KEY: &str = "sync.completed_round";
pub const COMPLETED_AT_KEY: &str = "sync.completed_at";

/// The fact kinds this module records.
pub const PRESENT_FACT: &str = "present";
pub const DELETED_FACT: &str = "deleted";

/// The rounds as the state file records them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncRecord {
    /// The round being worked on (or last worked on): 0 is the first migration.
    pub round: u64,
    /// Epoch ms when that round began.
    pub round_started_at: Option<i64>,
    /// The last round whose queue drained.
    pub completed_round: Option<u64>,
    /// Epoch ms when it drained.
    pub completed_at: Option<i64>,
}

impl SyncRecord {
    pub fn read(store: &Store) -> Result<SyncRecord, StoreError> {
        let number = |key: &str| -> Result<Option<i64>, StoreError> {
            Ok(store
                .control(key)?
                .and_then(|v| v.trim().parse::<i64>().ok()))
        };
        Ok(SyncRecord {
            round: number(ROUND_KEY)?
                .and_then(|r| u64::try_from(r).ok())
                .unwrap_or(0),
            round_started_at: number(ROUND_STARTED_KEY)?,
            completed_round: number(COMPLETED_ROUND_KEY)?.and_then(|r| u64::try_from(r).ok()),
            completed_at: number(COMPLETED_AT_KEY)?,
        })
    }

    /// Whether the current round has drained already.
    pub fn current_round_completed(&self) -> bool {
        self.completed_round == Some(self.round)
    }
}

pub fn begin_round(store: &Store, round: u64, now: i64) -> Result<(), StoreError> {
    store.set_control(ROUND_KEY, Some(&round.to_string()))?;
    store.set_control(ROUND_STARTED_KEY, Some(&now.to_string()))
}

pub fn complete_round(store: &Store, round: u64, now: i64) -> Result<(), StoreError> {
    store.set_control(COMPLETED_ROUND_KEY, Some(&round.to_string()))?;
    store.set_control(COMPLETED_AT_KEY, Some(&now.to_string()))
}

/// A portal object's `modified` (epoch ms), which some portals send as a string.
pub fn modified(object: &Value) -> Option<i64> {
    let value = object.get("modified")?;
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The key of the update task for an object modified at `modified`.
pub fn update_key(source_id: &str, modified: i64) -> String {
    format!("{source_id}@{modified}")
}

/// Per source id, the newest `modified` any task of this kind recorded in its payload
/// (`payload[field]`, identified by `payload[field][id_field]`).
pub fn latest_modified(rows: &[TaskRow], field: &str, id_field: &str) -> HashMap<String, i64> {
    let mut latest: HashMap<String, i64> = HashMap::new();
    for row in rows {
        let Some(object) = row.payload.get(field) else {
            continue;
        };
        let (Some(id), Some(when)) = (text(object, id_field), modified(object)) else {
            continue;
        };
        let entry = latest.entry(id).or_insert(when);
        *entry = (*entry).max(when);
    }
    latest
}

/// `Some(modified)` when `object` changed after what was recorded; `None` for an unchanged
/// object and for one never recorded (which is new, not modified).
pub fn newer(object: &Value, recorded: Option<&i64>) -> Option<i64> {
    let now = modified(object)?;
    (now > *recorded?).then_some(now)
}

/// What a sync round does with a listed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    New,
    Modified(i64),
}

/// An item the queue already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Unchanged,
    Modified(i64),
}

/// Looks up listed items (id, current `modified`) by key: one indexed read per item (two for
/// a modified one), rather than loading every item task for every user.
pub fn known_items(
    store: &Store,
    listed: &[(String, Option<i64>)],
) -> Result<HashMap<String, Known>, StoreError> {
    let kind = TaskKind::Item.as_str();
    let mut known = HashMap::new();
    for (id, now) in listed {
        let Some(row) = store.task_by_key(&TaskKey::new(kind, id.clone()))? else {
            continue;
        };
        let recorded = row.payload.get("item").and_then(modified);
        let verdict = match (now, recorded) {
            (Some(now), Some(recorded)) if *now > recorded => {
                let update = TaskKey::new(kind, update_key(id, *now));
                if store.task_by_key(&update)?.is_some() {
                    Known::Unchanged
                } else {
                    Known::Modified(*now)
                }
            }
            _ => Known::Unchanged,
        };
        known.insert(id.clone(), verdict);
    }
    Ok(known)
}

pub fn present(item_id: &str, round: u64) -> Fact {
    Fact {
        kind: PRESENT_FACT.into(),
        subject: item_id.to_string(),
        object: "item".into(),
        detail: json!({ "round": round }),
    }
}

fn deleted_fact(kind: &str, id: &str, round: u64, title: &str, propagated: bool) -> Fact {
    Fact {
        kind: DELETED_FACT.into(),
        subject: id.to_string(),
        object: kind.to_string(),
        detail: json!({ "round": round, "title": title, "deleted_in_target": propagated }),
    }
}

/// What a round found gone from the source.
#[derive(Debug, Default)]
pub struct Vanished {
    pub spawn: Vec<NewTask>,
    pub facts: Vec<Fact>,
    pub note: Option<String>,
}

/// Users and groups that have tasks but are no longer in the source's complete listings.
/// Reported once each (a `deleted` fact), never deleted in the target.
pub async fn vanished_accounts(
    ctx: &Context,
    round: u64,
    users: &[Value],
    groups: &[Value],
    user_seen: &HashMap<String, i64>,
    group_seen: &HashMap<String, i64>,
) -> Result<Vanished, TaskError> {
    let reported: HashSet<(String, String)> = ctx
        .store
        .call(|s| s.facts(DELETED_FACT))
        .await?
        .into_iter()
        .map(|f| (f.object, f.subject))
        .collect();
    let listed_users: HashSet<String> = users.iter().filter_map(|u| text(u, "username")).collect();
    let listed_groups: HashSet<String> = groups.iter().filter_map(|g| text(g, "id")).collect();
    let mut found = Vanished::default();
    let mut lines = Vec::new();
    // Only accounts whose tasks recorded a `modified` are in the *_seen maps; the first
    // migration records it for every user and group the portal lists.
    let mut gone_users: Vec<&String> = user_seen
        .keys()
        .filter(|u| !listed_users.contains(*u))
        .collect();
    gone_users.sort();
    for username in gone_users {
        if reported.contains(&("user".to_string(), username.clone())) {
            continue;
        }
        found
            .facts
            .push(deleted_fact("user", username, round, username, false));
        lines.push(format!("user {username}"));
    }
    let mut gone_groups: Vec<&String> = group_seen
        .keys()
        .filter(|g| !listed_groups.contains(*g))
        .collect();
    gone_groups.sort();
    for group in gone_groups {
        if reported.contains(&("group".to_string(), group.clone())) {
            continue;
        }
        found
            .facts
            .push(deleted_fact("group", group, round, group, false));
        lines.push(format!("group {group}"));
    }
    if !lines.is_empty() {
        tracing::warn!(
            round,
            deleted = lines.len(),
            "deleted in the source (users and groups are never deleted in the target): {}",
            lines.join(", ")
        );
        found.note = Some(format!(
            "deleted in the source, left in the target (users and groups are never deleted by a sync): {}",
            lines.join(", ")
        ));
    }
    Ok(found)
}

/// Migrated items this round did not list, confirmed gone by the source itself.
pub async fn deleted_items(
    ctx: &Context,
    round: u64,
    items: &[TaskRow],
) -> Result<Vanished, TaskError> {
    let (present, reported) = ctx
        .store
        .call(|s| Ok((s.facts(PRESENT_FACT)?, s.facts(DELETED_FACT)?)))
        .await?;
    let seen_this_round: HashSet<String> = present
        .into_iter()
        .filter(|f| f.detail.get("round").and_then(Value::as_u64) == Some(round))
        .map(|f| f.subject)
        .collect();
    let reported: HashSet<String> = reported
        .into_iter()
        .filter(|f| f.object == "item")
        .map(|f| f.subject)
        .collect();
    let propagate = ctx.settings.sync.propagate_deletes;
    let mut found = Vanished::default();
    let mut lines = Vec::new();
    // The first migration's task of each item has the bare id as its key.
    for row in items
        .iter()
        .filter(|row| row.state == TaskState::Done && !row.source_key.contains('@'))
    {
        let id = &row.source_key;
        if seen_this_round.contains(id) || reported.contains(id) {
            continue;
        }
        // Not listed: deleted, or only out of sight (moved out of the filters, owner not
        // migrated any more). Only the source can tell.
        if ctx.source.item(id).await?.is_some() {
            continue;
        }
        let title = row
            .payload
            .get("item")
            .and_then(|item| text(item, "title"))
            .unwrap_or_default();
        found
            .facts
            .push(deleted_fact("item", id, round, &title, propagate));
        lines.push(format!("item '{title}' ({id})"));
        if propagate {
            found.spawn.push(NewTask {
                kind: TaskKind::DeleteItem.as_str().to_string(),
                source_key: id.clone(),
                title: format!("delete the copy of item '{title}' (deleted in the source)"),
                payload: serde_json::to_value(clone::delete_item::DeleteItemTask {
                    item_id: id.clone(),
                    title: title.clone(),
                })
                .unwrap_or_default(),
                depends_on: vec![],
                priority: TaskKind::DeleteItem.priority(),
                max_attempts: ctx.settings.retry.max_attempts,
            });
        }
    }
    if !lines.is_empty() {
        let what = if propagate {
            "deleted in the source; their copies will be deleted in the target"
        } else {
            "deleted in the source; copies left in the target (sync.propagate_deletes = false)"
        };
        tracing::warn!(round, deleted = lines.len(), "{what}: {}", lines.join(", "));
        found.note = Some(format!(
            "{} items {what}: {}",
            lines.len(),
            lines.join(", ")
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_newer_modified_is_a_change() {
        let object = json!({ "modified": 2000 });
        assert_eq!(newer(&object, Some(&1000)), Some(2000));
        assert_eq!(newer(&object, Some(&2000)), None);
        assert_eq!(
            newer(&object, None),
            None,
            "never recorded is new, not modified"
        );
        assert_eq!(
            newer(&json!({ "modified": "3000" }), Some(&2000)),
            Some(3000)
        );
        assert_eq!(newer(&json!({}), Some(&1)), None);
    }

    #[test]
    fn update_keys_name_the_version() {
        assert_eq!(update_key("abc", 1700000000000), "abc@1700000000000");
    }
}
