//! Discovery: enumerating the source is itself queued work, so a crash halfway through a
//! large organisation loses nothing. `discover` lists users and groups and enqueues one
//! `discover_user` per user (its folders and items, page by page) and one `discover_group`
//! per group (members and shared content). A `link` task waits for all of them and then
//! turns what they found — shares, relationships, references between items — into tasks
//! whose both ends are known, so no task ever waits on something that will never exist.

mod filter;
mod references;

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clone::{self, text, TaskError, TaskKind};
use crate::engine::Context;
use crate::portal::Direction;
use crate::service::sync;
use crate::store::{Completion, Fact, NewTask, TaskKey};

pub use filter::Filters;
pub use references::{referenced_ids, HOLDS_REFERENCES};

/// Every relationship type a portal knows. There is no "list all relationships" call, so
/// discovery asks for all types at once and, only when something comes back, type by type.
pub const RELATIONSHIP_TYPES: &[&str] = &[
    "Map2Service",
    "WMA2Code",
    "Map2FeatureCollection",
    "MobileApp2Code",
    "Service2Data",
    "Service2Service",
    "Service2Layer",
    "Service2Style",
    "Style2Style",
    "Map2AppConfig",
    "Map2Area",
    "Area2Package",
    "Area2CustomPackage",
    "Item2Attachment",
    "Item2Report",
    "Listed2Provisioned",
    "Survey2Service",
    "Survey2Data",
    "SurveyAddIn2Data",
    "Service2Route",
    "TrackView2Map",
    "WorkforceMap2FeatureService",
    "Theme2Story",
    "WebStyle2DesktopStyle",
    "Solution2Item",
    "APIKey2Item",
    "Mission2Item",
    "Notebook2WebTool",
    "Map2IndoorsConfig",
    "Listed2ImplicitlyListed",
];

const ROOT_KEY: &str = "org";
/// Per-type relationship queries in flight at once for one item (each is one request).
const RELATIONSHIP_QUERIES_AT_ONCE: usize = 8;
const LINK_KEY: &str = "all";

/// `workers.count = 1` means one request at a time, inside tasks too: the sequential
/// baseline the benchmarks compare against (and a gentle mode for a fragile portal).
fn relationship_queries_at_once(ctx: &Context) -> usize {
    RELATIONSHIP_QUERIES_AT_ONCE.min(ctx.settings.workers.count.max(1))
}

pub(crate) fn key(kind: TaskKind, source_key: impl Into<String>) -> TaskKey {
    TaskKey {
        kind: kind.as_str().to_string(),
        source_key: source_key.into(),
    }
}

pub(crate) fn task(
    ctx: &Context,
    kind: TaskKind,
    source_key: impl Into<String>,
    title: impl Into<String>,
    payload: Value,
    depends_on: Vec<TaskKey>,
) -> NewTask {
    NewTask {
        kind: kind.as_str().to_string(),
        source_key: source_key.into(),
        title: title.into(),
        payload,
        depends_on,
        priority: kind.priority(),
        max_attempts: ctx.settings.retry.max_attempts,
    }
}

/// A sync round's update of an object modified in the source since its last copy: its own
/// key per version, after the object's first task.
fn update_task(
    ctx: &Context,
    kind: TaskKind,
    id: &str,
    modified: i64,
    what: String,
    payload: Value,
) -> NewTask {
    task(
        ctx,
        kind,
        sync::update_key(id, modified),
        format!("update {what} (modified in the source)"),
        payload,
        vec![key(kind, id.to_string())],
    )
}

/// Puts the root discovery task in the queue; a no-op when it is already there (the queue is
/// unique per kind and source key), which is what makes `run` safe to repeat.
pub async fn enqueue_discovery(ctx: &Context) -> Result<(), crate::store::StoreError> {
    enqueue_round(ctx, 0).await.map(|_| ())
}

/// Puts the root discovery task of sync round `round` in the queue (round 0 is the first
/// migration). Each round has its own discovery keys, so re-discovering is new work while
/// repeating a round is a no-op. Returns whether the task was new.
pub async fn enqueue_round(ctx: &Context, round: u64) -> Result<bool, crate::store::StoreError> {
    let what = if round == 0 {
        format!("discover the source portal {}", ctx.source.url())
    } else {
        format!(
            "sync round {round}: discover what changed in the source portal {}",
            ctx.source.url()
        )
    };
    let root = task(
        ctx,
        TaskKind::Discover,
        round_key(ROOT_KEY, round),
        what,
        serde_json::to_value(Round { round }).unwrap_or_default(),
        vec![],
    );
    ctx.store
        .call(move |s| s.enqueue(&[root]).map(|new| new > 0))
        .await
}

/// Which sync round a discovery task belongs to; absent (older state files) means 0.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Round {
    #[serde(default, skip_serializing_if = "is_first_round")]
    pub round: u64,
}

fn is_first_round(round: &u64) -> bool {
    *round == 0
}

/// `base` for round 0 (the keys of the first migration), `base@round` after.
pub fn round_key(base: &str, round: u64) -> String {
    if round == 0 {
        base.to_string()
    } else {
        format!("{base}@{round}")
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoverUser {
    pub username: String,
    #[serde(default, skip_serializing_if = "is_first_round")]
    pub round: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoverGroup {
    pub group_id: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "is_first_round")]
    pub round: u64,
}

/// Lists the source's users and groups (every page) and enqueues their tasks.
pub async fn discover_org(ctx: &Context, job: Round) -> Result<Completion, TaskError> {
    let round = job.round;
    let filters = Filters::new(&ctx.settings, &ctx.source.info().username);
    let users = ctx.source.paged("portals/self/users", &[], "users").await?;
    let org = ctx.source.info().id.clone();
    let groups = ctx.source.search_groups(&format!("orgid:{org}")).await?;

    // After the first migration, users and groups modified since become update tasks.
    let (user_seen, group_seen) = if round > 0 {
        ctx.store
            .call(|s| {
                Ok((
                    s.tasks_of_kind(TaskKind::User.as_str())?,
                    s.tasks_of_kind(TaskKind::Group.as_str())?,
                ))
            })
            .await?
    } else {
        (Vec::new(), Vec::new())
    };
    let user_seen = sync::latest_modified(&user_seen, "user", "username");
    let group_seen = sync::latest_modified(&group_seen, "group", "id");

    let mut spawn = Vec::new();
    let mut discovery = Vec::new();
    let mut migrated_users = HashSet::new();
    let mut skipped_users = 0usize;
    for user in &users {
        let Some(username) = text(user, "username") else {
            continue;
        };
        if !filters.user(&username) {
            skipped_users += 1;
            continue;
        }
        migrated_users.insert(username.clone());
        if let Some(modified) = sync::newer(user, user_seen.get(&username)) {
            spawn.push(update_task(
                ctx,
                TaskKind::User,
                &username,
                modified,
                format!("user {username}"),
                json!({ "user": user, "force_update": true }),
            ));
        }
        spawn.push(task(
            ctx,
            TaskKind::User,
            username.clone(),
            format!("user {username}"),
            json!({ "user": user }),
            vec![],
        ));
        let discover = task(
            ctx,
            TaskKind::DiscoverUser,
            round_key(&username, round),
            format!("discover the content of {username}"),
            serde_json::to_value(DiscoverUser {
                username: username.clone(),
                round,
            })
            .unwrap_or_default(),
            vec![],
        );
        discovery.push(key(TaskKind::DiscoverUser, round_key(&username, round)));
        spawn.push(discover);
    }

    let mut skipped_groups = 0usize;
    for group in &groups {
        let (Some(id), Some(title), Some(owner)) = (
            text(group, "id"),
            text(group, "title"),
            text(group, "owner"),
        ) else {
            continue;
        };
        if !filters.group(&title, &owner) {
            skipped_groups += 1;
            continue;
        }
        let mut deps = Vec::new();
        if migrated_users.contains(&owner) {
            deps.push(key(TaskKind::User, owner.clone()));
        }
        spawn.push(task(
            ctx,
            TaskKind::Group,
            id.clone(),
            format!("group '{title}'"),
            json!({ "group": group }),
            deps,
        ));
        if let Some(modified) = sync::newer(group, group_seen.get(&id)) {
            spawn.push(update_task(
                ctx,
                TaskKind::Group,
                &id,
                modified,
                format!("group '{title}'"),
                json!({ "group": group, "force_update": true }),
            ));
        }
        spawn.push(task(
            ctx,
            TaskKind::DiscoverGroup,
            round_key(&id, round),
            format!("discover members and content of group '{title}'"),
            serde_json::to_value(DiscoverGroup {
                group_id: id.clone(),
                owner,
                round,
            })
            .unwrap_or_default(),
            vec![],
        ));
        discovery.push(key(TaskKind::DiscoverGroup, round_key(&id, round)));
    }

    spawn.push(task(
        ctx,
        TaskKind::Link,
        round_key(LINK_KEY, round),
        "link shares, relationships and references found by discovery",
        serde_json::to_value(Round { round }).unwrap_or_default(),
        discovery,
    ));
    let mut note = format!(
        "source has {} users ({} migrated, {skipped_users} excluded) and {} groups ({skipped_groups} excluded)",
        users.len(),
        migrated_users.len(),
        groups.len()
    );
    let mut facts = Vec::new();
    if round > 0 {
        let gone =
            sync::vanished_accounts(ctx, round, &users, &groups, &user_seen, &group_seen).await?;
        if let Some(report) = gone.note {
            note = format!("{note}; {report}");
        }
        facts = gone.facts;
    }
    Ok(Completion {
        outcome: "discovered".into(),
        spawn,
        facts,
        note: Some(note),
        ..Completion::default()
    })
}

/// Lists one user's root folder and every folder (every page) and enqueues folder and item
/// tasks, plus the facts (references, relationships) that `link` turns into tasks.
pub async fn discover_user(ctx: &Context, job: DiscoverUser) -> Result<Completion, TaskError> {
    let filters = Filters::new(&ctx.settings, &ctx.source.info().username);
    let (username, round) = (job.username, job.round);
    let link_key = round_key(LINK_KEY, round);
    let root = ctx.source.user_content(&username, None).await?;
    // (folder id and title — none for the root — , the items listed there)
    type Listing = (Option<(String, String)>, Vec<Value>);
    let mut listings: Vec<Listing> = vec![(None, root.items)];
    for folder in &root.folders {
        let (Some(id), Some(title)) = (text(folder, "id"), text(folder, "title")) else {
            continue;
        };
        if !filters.folder(&title) {
            continue;
        }
        let content = ctx.source.user_content(&username, Some(&id)).await?;
        listings.push((Some((id, title)), content.items));
    }

    // After the first migration only new items and items modified since their last copy are
    // queued (and only they are read in depth); every listed item is marked present, which
    // is how `link` tells a deleted item from one it did not look at.
    let known = if round > 0 {
        let ids: Vec<(String, Option<i64>)> = listings
            .iter()
            .flat_map(|(_, items)| items.iter())
            .filter_map(|item| Some((text(item, "id")?, sync::modified(item))))
            .collect();
        ctx.store.call(move |s| sync::known_items(s, &ids)).await?
    } else {
        HashMap::new()
    };

    let mut spawn = Vec::new();
    let mut facts = Vec::new();
    let mut excluded = 0usize;
    let mut unchanged = 0usize;
    for (folder, items) in listings {
        if let Some((folder_id, title)) = &folder {
            spawn.push(task(
                ctx,
                TaskKind::Folder,
                format!("{username}/{folder_id}"),
                format!("folder '{title}' of {username}"),
                serde_json::to_value(clone::folder::FolderTask {
                    owner: username.clone(),
                    folder_id: folder_id.clone(),
                    title: title.clone(),
                })
                .unwrap_or_default(),
                vec![key(TaskKind::User, username.clone())],
            ));
        }
        for item in items {
            if !filters.item(&item) {
                excluded += 1;
                continue;
            }
            let Some(id) = text(&item, "id") else {
                continue;
            };
            facts.push(sync::present(&id, round));
            let change = match known.get(&id) {
                None => sync::Change::New,
                Some(sync::Known::Unchanged) => {
                    unchanged += 1;
                    continue;
                }
                Some(sync::Known::Modified(modified)) => sync::Change::Modified(*modified),
            };
            let item_type = text(&item, "type").unwrap_or_default();
            let mut deps = vec![key(TaskKind::User, username.clone())];
            if let Some((folder_id, _)) = &folder {
                deps.push(key(TaskKind::Folder, format!("{username}/{folder_id}")));
            }
            if let sync::Change::Modified(_) = change {
                deps.push(key(TaskKind::Item, id.clone()));
            }
            if HOLDS_REFERENCES.contains(&item_type.as_str()) || text(&item, "url").is_some() {
                let mut referenced = BTreeSet::new();
                if HOLDS_REFERENCES.contains(&item_type.as_str()) {
                    if let Some(data) = ctx.source.item_data(&id).await? {
                        let bytes = data.bytes().await?;
                        referenced.extend(referenced_ids(&String::from_utf8_lossy(&bytes)));
                    }
                }
                if let Some(url) = text(&item, "url") {
                    referenced.extend(referenced_ids(&url));
                }
                referenced.remove(&id);
                if !referenced.is_empty() {
                    deps.push(key(TaskKind::Link, link_key.clone()));
                    for other in referenced {
                        facts.push(Fact {
                            kind: "reference".into(),
                            subject: id.clone(),
                            object: other,
                            detail: Value::Null,
                        });
                    }
                }
            }
            facts.extend(discover_relationships(ctx, &id).await?);
            let title = text(&item, "title").unwrap_or_default();
            let (source_key, label) = match change {
                sync::Change::New => (id.clone(), format!("item '{title}' ({item_type}) of {username}")),
                sync::Change::Modified(modified) => (
                    sync::update_key(&id, modified),
                    format!("update item '{title}' ({item_type}) of {username} (modified in the source)"),
                ),
            };
            spawn.push(task(
                ctx,
                TaskKind::Item,
                source_key,
                label,
                serde_json::to_value(clone::item::ItemTask {
                    item,
                    folder_id: folder.as_ref().map(|(id, _)| id.clone()),
                    folder_title: folder.as_ref().map(|(_, title)| title.clone()),
                    force_update: matches!(change, sync::Change::Modified(_)),
                })
                .unwrap_or_default(),
                deps,
            ));
        }
    }
    let found = spawn.len();
    let note = if round == 0 {
        format!("{username}: {found} folders and items to migrate, {excluded} items excluded by filters")
    } else {
        let queued = spawn
            .iter()
            .filter(|t| t.kind == TaskKind::Item.as_str())
            .count();
        format!(
            "{username}: {queued} new or modified items, {unchanged} unchanged, {excluded} excluded by filters"
        )
    };
    Ok(Completion {
        outcome: "discovered".into(),
        spawn,
        facts,
        note: Some(note),
        ..Completion::default()
    })
}

async fn discover_relationships(ctx: &Context, id: &str) -> Result<Vec<Fact>, TaskError> {
    let any = ctx
        .source
        .related_items(id, RELATIONSHIP_TYPES, Direction::Forward)
        .await?;
    if any.is_empty() {
        return Ok(Vec::new());
    }
    // Something is related; results do not say of which type. Halve the type list until
    // each non-empty half is a single type: an item related by one type costs about 11
    // requests instead of 30, by two about 17 (the benchmark's discovery was 95 % these).
    let mut per_type: Vec<Result<(String, Vec<Value>), TaskError>> = Vec::new();
    let mut level: Vec<&'static [&'static str]> = halves(RELATIONSHIP_TYPES);
    while !level.is_empty() {
        // Owned futures in a Vec: a lazily mapped iterator borrowing `ctx` would make the
        // task's future not `Send` for the worker pool.
        let queries: Vec<_> = level
            .iter()
            .map(|types| {
                let (source, id, types) = (ctx.source.clone(), id.to_string(), *types);
                async move {
                    let related = source.related_items(&id, types, Direction::Forward).await?;
                    Ok::<_, TaskError>((types, related))
                }
            })
            .collect();
        type Answer = Result<(&'static [&'static str], Vec<Value>), TaskError>;
        let answers: Vec<Answer> = futures::stream::iter(queries)
            .buffer_unordered(relationship_queries_at_once(ctx))
            .collect()
            .await;
        let mut next = Vec::new();
        for answer in answers {
            let (types, related) = answer?;
            match types {
                _ if related.is_empty() => {}
                [only] => per_type.push(Ok((only.to_string(), related))),
                _ => next.extend(halves(types)),
            }
        }
        level = next;
    }
    let mut facts = Vec::new();
    for result in per_type {
        let (relationship_type, related) = result?;
        for destination in related.iter().filter_map(|item| text(item, "id")) {
            facts.push(Fact {
                kind: "relationship".into(),
                subject: id.to_string(),
                object: destination,
                detail: json!({ "type": relationship_type }),
            });
        }
    }
    facts.sort_by(|a, b| (&a.object, a.detail.to_string()).cmp(&(&b.object, b.detail.to_string())));
    Ok(facts)
}

fn halves(types: &'static [&'static str]) -> Vec<&'static [&'static str]> {
    let (left, right) = types.split_at(types.len() / 2);
    [left, right]
        .into_iter()
        .filter(|half| !half.is_empty())
        .collect()
}

/// Lists a group's members and shared items and enqueues memberships; shares become facts
/// because the items' tasks may not be discovered yet.
pub async fn discover_group(ctx: &Context, job: DiscoverGroup) -> Result<Completion, TaskError> {
    let members = ctx.source.group_members(&job.group_id).await?;
    let admins: HashSet<&String> = members.admins.iter().collect();
    let everyone: BTreeSet<&String> = members.admins.iter().chain(members.users.iter()).collect();
    let mut spawn = Vec::new();
    for username in everyone {
        if *username == members.owner {
            continue; // the owner is set by the group task itself
        }
        let user_key = key(TaskKind::User, username.clone());
        let probe = user_key.clone();
        let migrated = ctx
            .store
            .call(move |s| s.task_by_key(&probe))
            .await?
            .is_some();
        let mut deps = vec![key(TaskKind::Group, job.group_id.clone())];
        if migrated {
            deps.push(user_key);
        }
        spawn.push(task(
            ctx,
            TaskKind::Membership,
            format!("{}:{username}", job.group_id),
            format!(
                "{} {username} of group {}",
                if admins.contains(username) {
                    "manager"
                } else {
                    "member"
                },
                job.group_id
            ),
            serde_json::to_value(clone::membership::MembershipTask {
                group_id: job.group_id.clone(),
                username: username.clone(),
                admin: admins.contains(username),
                migrated,
            })
            .unwrap_or_default(),
            deps,
        ));
    }
    let facts = ctx
        .source
        .group_content(&job.group_id)
        .await?
        .iter()
        .filter_map(|item| text(item, "id"))
        .map(|item_id| Fact {
            kind: "share".into(),
            subject: item_id,
            object: job.group_id.clone(),
            detail: Value::Null,
        })
        .collect();
    Ok(Completion {
        outcome: "discovered".into(),
        spawn,
        facts,
        ..Completion::default()
    })
}

/// Runs once every discovery task is done: turns shares, relationships and references into
/// tasks and dependency edges between tasks that exist. What points outside the migration is
/// reported, not queued.
pub async fn link(ctx: &Context, job: Round) -> Result<Completion, TaskError> {
    let (items, groups, memberships, shares, relationships, references) = ctx
        .store
        .call(|s| {
            Ok((
                s.tasks_of_kind(TaskKind::Item.as_str())?,
                s.tasks_of_kind(TaskKind::Group.as_str())?,
                s.tasks_of_kind(TaskKind::Membership.as_str())?,
                s.facts("share")?,
                s.facts("relationship")?,
                s.facts("reference")?,
            ))
        })
        .await?;
    // Keyed by source item id: a sync's update task has its own key but the same item.
    let source_id = |row: &crate::store::TaskRow| {
        row.payload
            .get("item")
            .and_then(|item| text(item, "id"))
            .unwrap_or_else(|| row.source_key.clone())
    };
    let owners: HashMap<String, String> = items
        .iter()
        .map(|row| {
            let owner = row
                .payload
                .get("item")
                .and_then(|item| text(item, "owner"))
                .unwrap_or_default();
            (source_id(row), owner)
        })
        .collect();
    // Only tasks that have not started can be made to wait: in the first round every item,
    // in a sync the new and updated ones.
    let mut waiting: HashMap<String, Vec<crate::store::TaskKey>> = HashMap::new();
    for row in &items {
        if row.state == crate::store::TaskState::Pending {
            waiting.entry(source_id(row)).or_default().push(row.key());
        }
    }
    let group_ids: HashSet<&String> = groups.iter().map(|row| &row.source_key).collect();
    let membership_keys: HashSet<&String> = memberships.iter().map(|row| &row.source_key).collect();

    let mut spawn = Vec::new();
    let mut outside = Vec::new();
    for fact in &shares {
        let (item, group) = (&fact.subject, &fact.object);
        match (owners.get(item), group_ids.contains(group)) {
            (Some(owner), true) => {
                let mut deps = vec![
                    key(TaskKind::Item, item.clone()),
                    key(TaskKind::Group, group.clone()),
                ];
                // The portal lets an owner share only into groups they belong to.
                let membership = format!("{group}:{owner}");
                if membership_keys.contains(&membership) {
                    deps.push(key(TaskKind::Membership, membership));
                }
                spawn.push(task(
                    ctx,
                    TaskKind::Share,
                    format!("{item}:{group}"),
                    format!("share item {item} with group {group}"),
                    serde_json::to_value(clone::share::ShareTask {
                        item_id: item.clone(),
                        group_id: group.clone(),
                        owner: owner.clone(),
                    })
                    .unwrap_or_default(),
                    deps,
                ))
            }
            _ => outside.push(format!("share of item {item} with group {group}")),
        }
    }
    for fact in &relationships {
        let relationship_type = fact
            .detail
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (origin, destination) = (&fact.subject, &fact.object);
        match (owners.get(origin), owners.contains_key(destination)) {
            (Some(owner), true) => spawn.push(task(
                ctx,
                TaskKind::Relationship,
                format!("{relationship_type}:{origin}:{destination}"),
                format!("{relationship_type} relationship {origin} → {destination}"),
                serde_json::to_value(clone::relationship::RelationshipTask {
                    relationship_type,
                    origin: origin.clone(),
                    destination: destination.clone(),
                    owner: owner.clone(),
                })
                .unwrap_or_default(),
                vec![
                    key(TaskKind::Item, origin.clone()),
                    key(TaskKind::Item, destination.clone()),
                ],
            )),
            _ => outside.push(format!(
                "{relationship_type} relationship {origin} → {destination}"
            )),
        }
    }

    // A referencing item waits for what it references, unless that would close a cycle (two
    // apps pointing at each other, which would wait forever): that edge is dropped, and the
    // reference it stood for is reported as unmapped by the item created first.
    let mut graph: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut add_deps = Vec::new();
    for fact in &references {
        let (from, to) = (fact.subject.as_str(), fact.object.as_str());
        let Some(from_tasks) = waiting.get(from) else {
            continue;
        };
        if !owners.contains_key(to) || from == to || reaches(&graph, to, from) {
            continue;
        }
        graph.entry(from).or_default().push(to);
        for from_task in from_tasks {
            add_deps.push((from_task.clone(), key(TaskKind::Item, to.to_string())));
        }
    }
    let mut notes = Vec::new();
    if !outside.is_empty() {
        notes.push(format!(
            "{} relations point outside the migration and were not queued: {}",
            outside.len(),
            outside.join("; ")
        ));
    }
    let mut facts = Vec::new();
    if job.round > 0 {
        let deleted = sync::deleted_items(ctx, job.round, &items).await?;
        spawn.extend(deleted.spawn);
        facts = deleted.facts;
        notes.extend(deleted.note);
    }
    Ok(Completion {
        outcome: "linked".into(),
        spawn,
        add_deps,
        facts,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        ..Completion::default()
    })
}

fn reaches(graph: &HashMap<&str, Vec<&str>>, from: &str, to: &str) -> bool {
    let mut stack = vec![from];
    let mut seen = HashSet::new();
    while let Some(node) = stack.pop() {
        if node == to {
            return true;
        }
        if seen.insert(node) {
            if let Some(next) = graph.get(node) {
                stack.extend(next.iter().copied());
            }
        }
    }
    false
}
