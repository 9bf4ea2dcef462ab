//! Groups: search, create (title unique in the org), read, update, delete, membership,
//! reassignment, thumbnails and the items shared with a group.

use super::users::parse_query;
use super::{
    can_manage_group, can_see_group, can_see_item, page, sort_by_request, text_key, Ctx, Reply,
    SortKey,
};
use crate::fixture::Group;
use crate::sim::error::{ApiError, ApiResult};
use crate::sim::render::{group_json, item_json};
use crate::sim::search::GroupDoc;
use crate::sim::state::{contains_user, decode_blob, encode_blob, new_id, SimGroup, State};
use serde_json::{json, Value};

/// Most usernames one `addUsers` call takes.
const MAX_USERS_PER_CALL: usize = 25;

fn visible_group<'s>(ctx: &Ctx, state: &'s State, id: &str) -> ApiResult<&'s Group> {
    state
        .groups
        .get(id)
        .map(|g| &g.group)
        .filter(|g| can_see_group(ctx, g))
        .ok_or_else(ApiError::group_not_found)
}

fn managed_group<'s>(ctx: &Ctx, state: &'s mut State, id: &str) -> ApiResult<&'s mut SimGroup> {
    ctx.require_user()?;
    let group = state
        .groups
        .get_mut(id)
        .ok_or_else(ApiError::group_not_found)?;
    if can_manage_group(ctx, &group.group) {
        Ok(group)
    } else {
        Err(ApiError::no_permission())
    }
}

fn duplicate_title(state: &State, title: &str, except: Option<&str>) -> bool {
    state
        .groups
        .values()
        .any(|g| g.group.title.eq_ignore_ascii_case(title) && Some(g.group.id.as_str()) != except)
}

fn duplicate_title_error(title: &str) -> ApiError {
    ApiError::new(
        400,
        Some("COM_0044"),
        format!("You already have a group named '{title}'. Try a different name."),
    )
}

pub fn search(ctx: &Ctx, state: &State) -> ApiResult<Reply> {
    let q = ctx.req.get("q");
    let query = parse_query(q)?;
    let org_id = state.portal.id.as_str();
    let mut found: Vec<&Group> = state
        .groups
        .values()
        .filter(|g| g.searchable_at <= ctx.now)
        .map(|g| &g.group)
        .filter(|g| can_see_group(ctx, g))
        .filter(|g| query.matches(&GroupDoc { group: g, org_id }))
        .collect();
    sort_by_request(ctx.req, &mut found, |g, field| match field {
        "title" => text_key(&g.title),
        "owner" => text_key(&g.owner),
        "created" => SortKey::Number(g.created),
        "modified" => SortKey::Number(g.modified),
        _ => SortKey::None,
    });
    let total = found.len();
    let (start, num) = ctx.req.paging();
    let (page, next) = page(found, start, num);
    let caller = ctx.caller.as_deref();
    let results: Vec<Value> = page.iter().map(|g| group_json(state, g, caller)).collect();
    Ok(Reply::Json(json!({
        "query": q.unwrap_or(""),
        "total": total, "start": start, "num": num, "nextStart": next,
        "results": results,
    })))
}

pub fn get(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let group = visible_group(ctx, state, id)?;
    Ok(Reply::Json(group_json(state, group, ctx.caller.as_deref())))
}

pub fn thumbnail(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let group = visible_group(ctx, state, id)?;
    let thumbnail = group
        .thumbnail
        .as_ref()
        .ok_or_else(|| ApiError::new(400, None, "Thumbnail not found."))?;
    Ok(Reply::Bytes {
        content_type: super::content::content_type_for(&thumbnail.name).to_owned(),
        filename: None,
        body: decode_blob(thumbnail),
    })
}

/// `access` values as stored: the legacy `account` means `org`.
fn normalize_access(access: &str) -> ApiResult<String> {
    match access.to_ascii_lowercase().as_str() {
        "private" => Ok("private".into()),
        "org" | "account" => Ok("org".into()),
        "public" => Ok("public".into()),
        other => Err(ApiError::bad_request(format!("Invalid access '{other}'."))),
    }
}

/// Applies the group properties present in the request.
fn apply_properties(ctx: &Ctx, group: &mut Group) -> ApiResult<()> {
    let req = ctx.req;
    let clear = req.bool("clearemptyfields") == Some(true);
    let set_opt = |key: &str, target: &mut Option<String>| match req.get(key) {
        Some(value) => *target = Some(value.to_owned()),
        None if clear && req.has(key) => *target = None,
        None => {}
    };
    if let Some(title) = req.get("title") {
        group.title = title.to_owned();
    }
    set_opt("description", &mut group.description);
    set_opt("snippet", &mut group.snippet);
    set_opt("phone", &mut group.phone);
    set_opt("sortfield", &mut group.sort_field);
    set_opt("sortorder", &mut group.sort_order);
    set_opt("membershipaccess", &mut group.membership_access);
    if req.has("tags") {
        group.tags = req.list("tags");
    }
    if let Some(access) = req.get("access") {
        group.access = normalize_access(access)?;
    }
    if let Some(flag) = req.bool("isinvitationonly") {
        group.is_invitation_only = flag;
    }
    if let Some(flag) = req.bool("isviewonly") {
        group.is_view_only = flag;
    }
    if let Some(capabilities) = req.get("capabilities") {
        group.capabilities = crate::sim::request::split_list(capabilities);
    }
    if let Some(upload) = req.file("thumbnail") {
        let name = upload.filename.as_deref().unwrap_or("thumbnail.png");
        group.thumbnail = Some(encode_blob(name, &upload.bytes));
    }
    Ok(())
}

pub fn create(ctx: &Ctx, state: &mut State) -> ApiResult<Reply> {
    let caller = ctx.require_user()?.to_owned();
    let title = ctx.req.require("title")?.to_owned();
    if duplicate_title(state, &title, None) {
        return Err(duplicate_title_error(&title));
    }
    let mut group = Group {
        id: new_id(),
        title,
        owner: caller.clone(),
        description: None,
        snippet: None,
        tags: vec![],
        phone: None,
        access: "private".into(),
        is_invitation_only: false,
        sort_field: Some("title".into()),
        sort_order: Some("asc".into()),
        is_view_only: false,
        capabilities: vec![],
        membership_access: None,
        thumbnail: None,
        created: ctx.now,
        modified: ctx.now,
        admins: vec![caller.clone()],
        users: vec![caller],
    };
    apply_properties(ctx, &mut group)?;
    let body = json!({
        "success": true,
        "group": group_json(state, &group, ctx.caller.as_deref()),
    });
    state.groups.insert(
        group.id.clone(),
        SimGroup {
            group,
            searchable_at: ctx.searchable_at(),
        },
    );
    Ok(Reply::Json(body))
}

pub fn update(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    if let Some(title) = ctx.req.get("title") {
        if state.groups.contains_key(id) && duplicate_title(state, title, Some(id)) {
            return Err(duplicate_title_error(title));
        }
    }
    let searchable_at = ctx.searchable_at();
    let sim = managed_group(ctx, state, id)?;
    let mut group = sim.group.clone();
    apply_properties(ctx, &mut group)?;
    group.modified = ctx.now;
    sim.group = group;
    sim.searchable_at = searchable_at;
    Ok(Reply::Json(json!({"success": true, "groupId": id})))
}

pub fn delete(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    let caller = ctx.require_user()?;
    let group = state.groups.get(id).ok_or_else(ApiError::group_not_found)?;
    if !(ctx.is_admin || group.group.owner.eq_ignore_ascii_case(caller)) {
        return Err(ApiError::no_permission());
    }
    state.groups.shift_remove(id);
    for item in state.items.values_mut() {
        let before = item.item.groups.len();
        item.item.groups.retain(|g| g != id);
        if item.item.groups.len() != before
            && item.item.groups.is_empty()
            && item.item.access == "shared"
        {
            item.item.access = "private".into();
        }
    }
    Ok(Reply::Json(json!({"success": true, "groupId": id})))
}

pub fn add_users(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    let users = ctx.req.list("users");
    let admins = ctx.req.list("admins");
    if users.len() + admins.len() > MAX_USERS_PER_CALL {
        return Err(ApiError::bad_request(format!(
            "A maximum of {MAX_USERS_PER_CALL} users can be added to a group at a time."
        )));
    }
    managed_group(ctx, state, id)?;
    // Resolve usernames to their stored spelling before borrowing the group mutably.
    let resolve = |name: &String| state.user(name).map(|u| u.username.clone());
    let users: Vec<(String, Option<String>)> =
        users.iter().map(|u| (u.clone(), resolve(u))).collect();
    let admins: Vec<(String, Option<String>)> =
        admins.iter().map(|u| (u.clone(), resolve(u))).collect();
    let now = ctx.now;
    let group = &mut managed_group(ctx, state, id)?.group;
    let mut not_added = Vec::new();
    for (asked, found) in users.into_iter().chain(admins.iter().cloned()) {
        match found {
            Some(username) => {
                if !contains_user(&group.users, &username) {
                    group.users.push(username);
                }
            }
            None => not_added.push(asked),
        }
    }
    for (_, found) in admins {
        if let Some(username) = found {
            if !contains_user(&group.admins, &username) {
                group.admins.push(username);
            }
        }
    }
    group.modified = now;
    Ok(Reply::Json(json!({ "notAdded": not_added })))
}

pub fn remove_users(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    let mut names = ctx.req.list("users");
    names.extend(ctx.req.list("admins"));
    let group = &mut managed_group(ctx, state, id)?.group;
    let mut not_removed = Vec::new();
    for name in names {
        if group.owner.eq_ignore_ascii_case(&name) || !contains_user(&group.users, &name) {
            not_removed.push(name);
            continue;
        }
        group.users.retain(|u| !u.eq_ignore_ascii_case(&name));
        group.admins.retain(|u| !u.eq_ignore_ascii_case(&name));
    }
    Ok(Reply::Json(json!({ "notRemoved": not_removed })))
}

/// `updateUsers`: `admins=` become managers, `users=` become plain members.
pub fn update_users(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    let to_admin = ctx.req.list("admins");
    let to_member = ctx.req.list("users");
    let group = &mut managed_group(ctx, state, id)?.group;
    let mut results = Vec::new();
    for name in to_admin {
        let ok = contains_user(&group.users, &name);
        if ok && !contains_user(&group.admins, &name) {
            group.admins.push(name.clone());
        }
        results.push(json!({"username": name, "success": ok}));
    }
    for name in to_member {
        let ok = contains_user(&group.users, &name) && !group.owner.eq_ignore_ascii_case(&name);
        if ok {
            group.admins.retain(|u| !u.eq_ignore_ascii_case(&name));
        }
        results.push(json!({"username": name, "success": ok}));
    }
    Ok(Reply::Json(json!({ "results": results })))
}

/// The new owner joins as owner/admin; the previous owner stays a manager (then may leave).
pub fn reassign(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    ctx.require_admin()?;
    let target = ctx
        .req
        .get("targetusername")
        .ok_or_else(|| ApiError::missing("targetUsername"))?;
    let target = state
        .user(target)
        .map(|u| u.username.clone())
        .ok_or_else(|| ApiError::user_not_found(target))?;
    let now = ctx.now;
    let group = &mut state
        .groups
        .get_mut(id)
        .ok_or_else(ApiError::group_not_found)?
        .group;
    group.owner = target.clone();
    if !contains_user(&group.admins, &target) {
        group.admins.insert(0, target.clone());
    }
    if !contains_user(&group.users, &target) {
        group.users.push(target);
    }
    group.modified = now;
    Ok(Reply::Json(json!({"success": true, "groupId": id})))
}

/// `users`: owner and managers in `admins`, plain members in `users`.
pub fn users(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let group = visible_group(ctx, state, id)?;
    let mut admins = vec![group.owner.clone()];
    admins.extend(
        group
            .admins
            .iter()
            .filter(|a| !a.eq_ignore_ascii_case(&group.owner))
            .cloned(),
    );
    let users: Vec<&String> = group
        .users
        .iter()
        .filter(|u| !contains_user(&admins, u))
        .collect();
    Ok(Reply::Json(json!({
        "owner": group.owner, "admins": admins, "users": users,
    })))
}

pub fn user_list(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let group = visible_group(ctx, state, id)?;
    let full_name = |name: &str| state.user(name).map(|u| u.full_name.clone());
    let thumbnail = |name: &str| {
        state
            .user(name)
            .and_then(|u| u.thumbnail.as_ref().map(|t| t.name.clone()))
    };
    let members: Vec<Value> = group
        .users
        .iter()
        .map(|name| {
            json!({
                "username": name,
                "fullName": full_name(name),
                "memberType": crate::sim::render::member_type(group, name),
                "thumbnail": thumbnail(name),
                "joined": group.created,
                "orgId": state.portal.id,
            })
        })
        .collect();
    let total = members.len();
    let (start, num) = ctx.req.paging();
    let (page, next) = page(members, start, num);
    Ok(Reply::Json(json!({
        "total": total, "start": start, "num": num, "nextStart": next,
        "owner": {"username": group.owner, "fullName": full_name(&group.owner)},
        "users": page,
    })))
}

pub fn content(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    visible_group(ctx, state, id)?;
    let items: Vec<_> = state
        .items
        .values()
        .filter(|i| i.item.groups.iter().any(|g| g == id))
        .filter(|i| can_see_item(ctx, state, i))
        .collect();
    let total = items.len();
    let (start, num) = ctx.req.paging();
    let (page, next) = page(items, start, num);
    let items: Vec<Value> = page
        .iter()
        .map(|i| {
            let mut json = item_json(state, i);
            if let Some(object) = json.as_object_mut() {
                object.insert("groupCategories".into(), json!([]));
            }
            json
        })
        .collect();
    Ok(Reply::Json(json!({
        "total": total, "start": start, "num": num, "nextStart": next, "items": items,
    })))
}
