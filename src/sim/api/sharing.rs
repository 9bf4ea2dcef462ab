//! Sharing (item access levels and groups), the groups an item is in, and item
//! relationships.

use super::{can_manage_group, can_see_group, can_see_item, visible_item, Ctx, Reply};
use crate::fixture::Relationship;
use crate::sim::error::{ApiError, ApiResult};
use crate::sim::render::{group_json, item_json, member_type};
use crate::sim::state::{contains_user, State};
use serde_json::{json, Value};

/// The access an item ends up with: its level, or `shared`/`private` by its groups.
fn recompute_access(level: Option<&str>, groups: &[String]) -> String {
    match level {
        Some(level) => level.to_owned(),
        None if groups.is_empty() => "private".into(),
        None => "shared".into(),
    }
}

/// Shares one item. Returns the groups it could not be shared with.
fn share_one(
    ctx: &Ctx,
    state: &mut State,
    id: &str,
    everyone: Option<bool>,
    org: Option<bool>,
    groups: &[String],
) -> ApiResult<Vec<String>> {
    let caller = ctx.require_user()?.to_owned();
    let item = state.items.get(id).ok_or_else(ApiError::item_not_found)?;
    let is_owner = ctx.is_admin || item.item.owner.eq_ignore_ascii_case(&caller);
    if !is_owner && !can_see_item(ctx, state, item) {
        return Err(ApiError::item_not_found());
    }
    let mut not_shared = Vec::new();
    let mut to_add = Vec::new();
    for group_id in groups {
        let allowed = state.groups.get(group_id).is_some_and(|g| {
            let g = &g.group;
            ctx.is_admin
                || can_manage_group(ctx, g)
                || (is_owner && contains_user(&g.users, &caller) && !g.is_view_only)
        });
        if allowed {
            to_add.push(group_id.clone());
        } else {
            not_shared.push(group_id.clone());
        }
    }
    let sim = state
        .items
        .get_mut(id)
        .ok_or_else(ApiError::item_not_found)?;
    let item = &mut sim.item;
    let mut level = match item.access.as_str() {
        "public" => Some("public"),
        "org" => Some("org"),
        _ => None,
    };
    if is_owner {
        if let Some(everyone) = everyone {
            if everyone {
                level = Some("public");
            } else if level == Some("public") {
                level = if org == Some(true) { Some("org") } else { None };
            }
        }
        if let Some(org) = org {
            if org && level != Some("public") {
                level = Some("org");
            } else if !org && level == Some("org") {
                level = None;
            }
        }
    }
    for group_id in to_add {
        if !item.groups.contains(&group_id) {
            item.groups.push(group_id);
        }
    }
    item.access = recompute_access(level, &item.groups);
    item.modified = ctx.now;
    Ok(not_shared)
}

fn unshare_one(
    ctx: &Ctx,
    state: &mut State,
    id: &str,
    groups: &[String],
) -> ApiResult<Vec<String>> {
    let caller = ctx.require_user()?.to_owned();
    let item = state.items.get(id).ok_or_else(ApiError::item_not_found)?;
    let is_owner = ctx.is_admin || item.item.owner.eq_ignore_ascii_case(&caller);
    let mut not_unshared = Vec::new();
    let mut to_remove = Vec::new();
    for group_id in groups {
        let allowed = state
            .groups
            .get(group_id)
            .is_some_and(|g| is_owner || can_manage_group(ctx, &g.group));
        if allowed {
            to_remove.push(group_id.clone());
        } else {
            not_unshared.push(group_id.clone());
        }
    }
    let item = &mut state
        .items
        .get_mut(id)
        .ok_or_else(ApiError::item_not_found)?
        .item;
    item.groups.retain(|g| !to_remove.contains(g));
    let level = match item.access.as_str() {
        "public" => Some("public"),
        "org" => Some("org"),
        _ => None,
    };
    item.access = recompute_access(level, &item.groups);
    Ok(not_unshared)
}

fn org_param(ctx: &Ctx) -> Option<bool> {
    ctx.req.bool("org").or_else(|| ctx.req.bool("account"))
}

/// `content/users/<u>/items/<id>/share` (owner route) and `content/items/<id>/share`.
pub fn share_item(
    ctx: &Ctx,
    state: &mut State,
    _owner: Option<&str>,
    id: &str,
) -> ApiResult<Reply> {
    let groups = ctx.req.list("groups");
    let not_shared = share_one(
        ctx,
        state,
        id,
        ctx.req.bool("everyone"),
        org_param(ctx),
        &groups,
    )?;
    Ok(Reply::Json(
        json!({"notSharedWith": not_shared, "itemId": id}),
    ))
}

pub fn unshare_item(
    ctx: &Ctx,
    state: &mut State,
    _owner: Option<&str>,
    id: &str,
) -> ApiResult<Reply> {
    let groups = ctx.req.list("groups");
    let not_unshared = unshare_one(ctx, state, id, &groups)?;
    Ok(Reply::Json(
        json!({"notUnsharedFrom": not_unshared, "itemId": id}),
    ))
}

/// `shareItems` / `unshareItems`: one result per item, each with its own error.
pub fn share_items(ctx: &Ctx, state: &mut State, username: &str, share: bool) -> ApiResult<Reply> {
    ctx.require_self_or_admin(username)?;
    let items = ctx.req.list("items");
    let groups = ctx.req.list("groups");
    let results: Vec<Value> = items
        .iter()
        .map(|id| {
            let outcome = if share {
                share_one(
                    ctx,
                    state,
                    id,
                    ctx.req.bool("everyone"),
                    org_param(ctx),
                    &groups,
                )
            } else {
                unshare_one(ctx, state, id, &groups)
            };
            let key = if share {
                "notSharedWith"
            } else {
                "notUnsharedFrom"
            };
            match outcome {
                Ok(missed) => json!({"itemId": id, "success": true, key: missed}),
                Err(error) => json!({
                    "itemId": id, "success": false, key: [],
                    "error": {"code": error.code, "message": error.message},
                }),
            }
        })
        .collect();
    Ok(Reply::Json(json!({ "results": results })))
}

/// `content/items/<id>/groups`: the groups the caller can see, bucketed by their role.
pub fn item_groups(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let item = visible_item(ctx, state, id)?;
    let (mut admin, mut member, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for group_id in &item.item.groups {
        let Some(group) = state.groups.get(group_id).map(|g| &g.group) else {
            continue;
        };
        if !can_see_group(ctx, group) {
            continue;
        }
        let caller = ctx.caller.as_deref();
        let json = group_json(state, group, caller);
        match caller.map(|c| member_type(group, c)) {
            Some("owner") | Some("admin") => admin.push(json),
            Some("member") => member.push(json),
            _ => other.push(json),
        }
    }
    Ok(Reply::Json(
        json!({"admin": admin, "member": member, "other": other}),
    ))
}

fn relationship_types(ctx: &Ctx) -> Vec<String> {
    let mut types = ctx.req.list("relationshiptype");
    types.extend(ctx.req.list("relationshiptypes"));
    types
}

pub fn related_items(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    visible_item(ctx, state, id)?;
    let types = relationship_types(ctx);
    let reverse = ctx
        .req
        .get("direction")
        .is_some_and(|d| d.eq_ignore_ascii_case("reverse"));
    let candidates: Vec<&crate::fixture::Relationship> = if reverse {
        state.relationships.with_destination(id).collect()
    } else {
        state.relationships.with_origin(id).collect()
    };
    let related: Vec<Value> = candidates
        .into_iter()
        .filter(|r| {
            types.is_empty()
                || types
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(&r.relationship_type))
        })
        .map(|r| if reverse { &r.origin } else { &r.destination })
        .filter_map(|other| state.items.get(other))
        .filter(|other| can_see_item(ctx, state, other))
        .map(|other| item_json(state, other))
        .collect();
    Ok(Reply::Json(
        json!({"total": related.len(), "relatedItems": related}),
    ))
}

/// The relationship named by the request, with both items checked.
fn requested_relationship(ctx: &Ctx, state: &State) -> ApiResult<Relationship> {
    let origin = ctx.req.require("originitemid")?.to_owned();
    let destination = ctx.req.require("destinationitemid")?.to_owned();
    let relationship_type = relationship_types(ctx)
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::missing("relationshipType"))?;
    let origin_item = visible_item(ctx, state, &origin)?;
    visible_item(ctx, state, &destination)?;
    let caller = ctx.require_user()?;
    if !(ctx.is_admin || origin_item.item.owner.eq_ignore_ascii_case(caller)) {
        return Err(ApiError::no_permission());
    }
    Ok(Relationship {
        relationship_type,
        origin,
        destination,
    })
}

pub fn add_relationship(ctx: &Ctx, state: &mut State, username: &str) -> ApiResult<Reply> {
    ctx.require_self_or_admin(username)?;
    let wanted = requested_relationship(ctx, state)?;
    // Adding an existing relationship again changes nothing and still succeeds.
    if !state.relationships.contains(&wanted) {
        state.relationships.push(wanted);
    }
    Ok(Reply::Json(json!({"success": true})))
}

pub fn delete_relationship(ctx: &Ctx, state: &mut State, username: &str) -> ApiResult<Reply> {
    ctx.require_self_or_admin(username)?;
    let wanted = requested_relationship(ctx, state)?;
    let before = state.relationships.len();
    state.relationships.retain(|r| r != &wanted);
    if state.relationships.len() == before {
        return Err(ApiError::bad_request("Relationship does not exist."));
    }
    Ok(Reply::Json(json!({"success": true})))
}
