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
use crate::store::{Completion, Fact, NewTask, TaskKey};

pub use filter::Filters;
pub use references::{referenced_ids, HOLDS_REFERENCES};

/// Every relationship type a portal knows. There is no "list all relationships" call, so
/// discovery asks for all types at once and, only when something comes back, type by type.
pub const RELATIONSHIP_TYPES: &[&str] = &[
    "Map2Service", "WMA2Code", "Map2FeatureCollection", "MobileApp2Code", "Service2Data",
    "Service2Service", "Service2Layer", "Service2Style", "Style2Style", "Map2AppConfig",
    "Map2Area", "Area2Package", "Area2CustomPackage", "Item2Attachment", "Item2Report",
    "Listed2Provisioned", "Survey2Service", "Survey2Data", "SurveyAddIn2Data", "Service2Route",
    "TrackView2Map", "WorkforceMap2FeatureService", "Theme2Story", "WebStyle2DesktopStyle",
    "Solution2Item", "APIKey2Item", "Mission2Item", "Notebook2WebTool", "Map2IndoorsConfig",
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

/// Puts the root discovery task in the queue; a no-op when it is already there (the queue is
/// unique per kind and source key), which is what makes `run` safe to repeat.
pub async fn enqueue_discovery(ctx: &Context) -> Result<(), crate::store::StoreError> {
    let root = task(
        ctx,
        TaskKind::Discover,
        ROOT_KEY,
        format!("discover the source portal {}", ctx.source.url()),
        json!({}),
        vec![],
    );
    ctx.store.call(move |s| s.enqueue(&[root]).map(|_| ())).await
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoverUser {
    pub username: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoverGroup {
    pub group_id: String,
    pub owner: String,
}

/// Lists the source's users and groups (every page) and enqueues their tasks.
pub async fn discover_org(ctx: &Context) -> Result<Completion, TaskError> {
    let filters = Filters::new(&ctx.settings, &ctx.source.info().username);
    let users = ctx.source.paged("portals/self/users", &[], "users").await?;
    let org = ctx.source.info().id.clone();
    let groups = ctx.source.search_groups(&format!("orgid:{org}")).await?;

    let mut spawn = Vec::new();
    let mut discovery = Vec::new();
    let mut migrated_users = HashSet::new();
    let mut skipped_users = 0usize;
    for user in &users {
        let Some(username) = text(user, "username") else { continue };
        if !filters.user(&username) {
            skipped_users += 1;
            continue;
        }
        migrated_users.insert(username.clone());
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
            username.clone(),
            format!("discover the content of {username}"),
            serde_json::to_value(DiscoverUser { username: username.clone() }).unwrap_or_default(),
            vec![],
        );
        discovery.push(key(TaskKind::DiscoverUser, username.clone()));
        spawn.push(discover);
    }

    let mut skipped_groups = 0usize;
    for group in &groups {
        let (Some(id), Some(title), Some(owner)) =
            (text(group, "id"), text(group, "title"), text(group, "owner"))
        else {
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
        spawn.push(task(
            ctx,
            TaskKind::DiscoverGroup,
            id.clone(),
            format!("discover members and content of group '{title}'"),
            serde_json::to_value(DiscoverGroup { group_id: id.clone(), owner }).unwrap_or_default(),
            vec![],
        ));
        discovery.push(key(TaskKind::DiscoverGroup, id));
    }

    spawn.push(task(
        ctx,
        TaskKind::Link,
        LINK_KEY,
        "link shares, relationships and references found by discovery",
        json!({}),
        discovery,
    ));
    Ok(Completion {
        outcome: "discovered".into(),
        spawn,
        note: Some(format!(
            "source has {} users ({} migrated, {skipped_users} excluded) and {} groups ({skipped_groups} excluded)",
            users.len(),
            migrated_users.len(),
            groups.len()
        )),
        ..Completion::default()
    })
}

/// Lists one user's root folder and every folder (every page) and enqueues folder and item
/// tasks, plus the facts (references, relationships) that `link` turns into tasks.
pub async fn discover_user(ctx: &Context, job: DiscoverUser) -> Result<Completion, TaskError> {
    let filters = Filters::new(&ctx.settings, &ctx.source.info().username);
    let username = job.username;
    let root = ctx.source.user_content(&username, None).await?;
    let mut listings: Vec<(Option<(String, String)>, Vec<Value>)> = vec![(None, root.items)];
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

    let mut spawn = Vec::new();
    let mut facts = Vec::new();
    let mut excluded = 0usize;
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
            let Some(id) = text(&item, "id") else { continue };
            let item_type = text(&item, "type").unwrap_or_default();
            let mut deps = vec![key(TaskKind::User, username.clone())];
            if let Some((folder_id, _)) = &folder {
                deps.push(key(TaskKind::Folder, format!("{username}/{folder_id}")));
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
                    deps.push(key(TaskKind::Link, LINK_KEY));
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
            spawn.push(task(
                ctx,
                TaskKind::Item,
                id.clone(),
                format!("item '{title}' ({item_type}) of {username}"),
                serde_json::to_value(clone::item::ItemTask {
                    item,
                    folder_id: folder.as_ref().map(|(id, _)| id.clone()),
                    folder_title: folder.as_ref().map(|(_, title)| title.clone()),
                })
                .unwrap_or_default(),
                deps,
            ));
        }
    }
    let found = spawn.len();
    Ok(Completion {
        outcome: "discovered".into(),
        spawn,
        facts,
        note: Some(format!(
            "{username}: {found} folders and items to migrate, {excluded} items excluded by filters"
        )),
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
    // Something is related: ask type by type, a few at a time, to learn which types.
    // The futures are built into a Vec of owned futures first: a lazily mapped iterator
    // borrowing `ctx` would make the task's future not `Send` for the worker pool.
    let queries: Vec<_> = RELATIONSHIP_TYPES
        .iter()
        .map(|relationship_type| {
            let (source, id) = (ctx.source.clone(), id.to_string());
            async move {
                let related = source
                    .related_items(&id, &[relationship_type], Direction::Forward)
                    .await?;
                Ok::<_, TaskError>((relationship_type.to_string(), related))
            }
        })
        .collect();
    let per_type: Vec<Result<(String, Vec<Value>), TaskError>> = futures::stream::iter(queries)
        .buffer_unordered(relationship_queries_at_once(ctx))
        .collect()
        .await;
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
                if admins.contains(username) { "manager" } else { "member" },
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
pub async fn link(ctx: &Context) -> Result<Completion, TaskError> {
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
    let owners: HashMap<String, String> = items
        .iter()
        .map(|row| {
            let owner = row
                .payload
                .get("item")
                .and_then(|item| text(item, "owner"))
                .unwrap_or_default();
            (row.source_key.clone(), owner)
        })
        .collect();
    let group_ids: HashSet<&String> = groups.iter().map(|row| &row.source_key).collect();
    let membership_keys: HashSet<&String> = memberships.iter().map(|row| &row.source_key).collect();

    let mut spawn = Vec::new();
    let mut outside = Vec::new();
    for fact in &shares {
        let (item, group) = (&fact.subject, &fact.object);
        match (owners.get(item), group_ids.contains(group)) {
            (Some(owner), true) => {
                let mut deps = vec![key(TaskKind::Item, item.clone()), key(TaskKind::Group, group.clone())];
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
                vec![key(TaskKind::Item, origin.clone()), key(TaskKind::Item, destination.clone())],
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
        if !owners.contains_key(to) || from == to || reaches(&graph, to, from) {
            continue;
        }
        graph.entry(from).or_default().push(to);
        add_deps.push((
            key(TaskKind::Item, from.to_string()),
            key(TaskKind::Item, to.to_string()),
        ));
    }
    let note = if outside.is_empty() {
        None
    } else {
        Some(format!(
            "{} relations point outside the migration and were not queued: {}",
            outside.len(),
            outside.join("; ")
        ))
    };
    Ok(Completion {
        outcome: "linked".into(),
        spawn,
        add_deps,
        note,
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
