//! Users: search, read, update, delete, roles and license types, and creation through
//! `portaladmin/.../createUser` (Enterprise) or `portals/self/invite` (Online).

use super::{can_see_user, page, sort_by_request, success, text_key, Ctx, Reply, SortKey};
use crate::fixture::User;
use crate::sim::error::{ApiError, ApiResult};
use crate::sim::query;
use crate::sim::render::{user_json, UserView};
use crate::sim::search::UserDoc;
use crate::sim::state::{decode_blob, encode_blob, new_id, SimUser, State};
use serde_json::{json, Value};

fn view_for(ctx: &Ctx, user: &User) -> UserView {
    if ctx.is_admin || ctx.is(&user.username) {
        UserView::Full
    } else if ctx.caller.is_some() {
        UserView::Search
    } else {
        UserView::Public
    }
}

pub fn parse_query(q: Option<&str>) -> ApiResult<query::Query> {
    query::parse(q.unwrap_or("")).map_err(|e| {
        ApiError::new(400, None, "Unable to perform query.").with_details([e.to_string()])
    })
}

fn visible_user<'s>(ctx: &Ctx, state: &'s State, key: &str) -> ApiResult<&'s User> {
    state
        .user_by_name_or_id(key)
        .filter(|u| can_see_user(ctx, u))
        .ok_or_else(|| ApiError::user_not_found(key))
}

pub fn search(ctx: &Ctx, state: &State) -> ApiResult<Reply> {
    let q = ctx.req.get("q");
    let query = parse_query(q)?;
    let org_id = state.portal.id.as_str();
    let mut found: Vec<&User> = state
        .users
        .values()
        .filter(|u| u.searchable_at <= ctx.now)
        .map(|u| &u.user)
        .filter(|u| can_see_user(ctx, u))
        .filter(|u| query.matches(&UserDoc { user: u, org_id }))
        .collect();
    sort_by_request(ctx.req, &mut found, |u, field| match field {
        "username" => text_key(&u.username),
        "fullname" => text_key(&u.full_name),
        "firstname" => text_key(&u.first_name),
        "lastname" => text_key(&u.last_name),
        "email" => text_key(&u.email),
        "role" => text_key(&u.role),
        "created" | "lastlogin" => SortKey::Number(u.created),
        "modified" => SortKey::Number(u.modified),
        _ => SortKey::None,
    });
    let total = found.len();
    let (start, num) = ctx.req.paging();
    let (page, next) = page(found, start, num);
    let view = if ctx.caller.is_some() {
        UserView::Search
    } else {
        UserView::Public
    };
    let results: Vec<Value> = page.iter().map(|u| user_json(state, u, view)).collect();
    Ok(Reply::Json(json!({
        "query": q.unwrap_or(""),
        "total": total, "start": start, "num": num, "nextStart": next,
        "results": results,
    })))
}

pub fn portal_users(ctx: &Ctx, state: &State) -> ApiResult<Reply> {
    ctx.require_user()?;
    let users: Vec<&User> = state
        .users
        .values()
        .map(|u| &u.user)
        .filter(|u| can_see_user(ctx, u))
        .collect();
    let total = users.len();
    let (start, num) = ctx.req.paging();
    let (page, next) = page(users, start, num);
    let users: Vec<Value> = page
        .iter()
        .map(|u| user_json(state, u, UserView::Search))
        .collect();
    Ok(Reply::Json(json!({
        "total": total, "start": start, "num": num, "nextStart": next, "users": users,
    })))
}

pub fn community_self(ctx: &Ctx, state: &State) -> ApiResult<Reply> {
    let caller = ctx.require_user()?;
    let user = state
        .user(caller)
        .ok_or_else(|| ApiError::user_not_found(caller))?;
    Ok(Reply::Json(user_json(state, user, UserView::Full)))
}

pub fn get(ctx: &Ctx, state: &State, key: &str) -> ApiResult<Reply> {
    let user = visible_user(ctx, state, key)?;
    Ok(Reply::Json(user_json(state, user, view_for(ctx, user))))
}

pub fn thumbnail(ctx: &Ctx, state: &State, key: &str) -> ApiResult<Reply> {
    let user = visible_user(ctx, state, key)?;
    let thumbnail = user
        .thumbnail
        .as_ref()
        .ok_or_else(|| ApiError::new(400, None, "Thumbnail not found."))?;
    Ok(Reply::Bytes {
        content_type: super::content::content_type_for(&thumbnail.name).to_owned(),
        filename: None,
        body: decode_blob(thumbnail),
    })
}

/// Sets `target` from a string parameter: a value replaces it; an empty value clears it
/// only with `clearEmptyFields=true`.
fn set_opt(ctx: &Ctx, key: &str, target: &mut Option<String>) {
    match ctx.req.get(key) {
        Some(value) => *target = Some(value.to_owned()),
        None if ctx.req.has(key) && ctx.req.bool("clearemptyfields") == Some(true) => {
            *target = None
        }
        None => {}
    }
}

fn set_str(ctx: &Ctx, key: &str, target: &mut String) {
    if let Some(value) = ctx.req.get(key) {
        *target = value.to_owned();
    }
}

pub fn update(ctx: &Ctx, state: &mut State, key: &str) -> ApiResult<Reply> {
    let username = state
        .user_by_name_or_id(key)
        .map(|u| u.username.clone())
        .ok_or_else(|| ApiError::user_not_found(key))?;
    ctx.require_self_or_admin(&username)?;
    let searchable_at = ctx.searchable_at();
    let sim = state
        .user_mut(&username)
        .ok_or_else(|| ApiError::user_not_found(key))?;
    let user = &mut sim.user;
    set_str(ctx, "access", &mut user.access);
    set_opt(ctx, "preferredview", &mut user.preferred_view);
    set_opt(ctx, "description", &mut user.description);
    set_opt(ctx, "culture", &mut user.culture);
    set_opt(ctx, "region", &mut user.region);
    set_opt(ctx, "units", &mut user.units);
    set_str(ctx, "fullname", &mut user.full_name);
    set_str(ctx, "firstname", &mut user.first_name);
    set_str(ctx, "lastname", &mut user.last_name);
    set_str(ctx, "email", &mut user.email);
    if let Some(password) = ctx.req.raw("password").filter(|p| !p.is_empty()) {
        user.password = password.to_owned();
    }
    if ctx.req.has("tags") {
        user.tags = ctx.req.list("tags");
    }
    if let Some(upload) = ctx.req.file("thumbnail") {
        let name = upload.filename.as_deref().unwrap_or("thumbnail.png");
        user.thumbnail = Some(encode_blob(name, &upload.bytes));
    }
    user.modified = ctx.now;
    sim.searchable_at = searchable_at;
    Ok(Reply::Json(json!({"success": true, "username": username})))
}

pub fn delete(ctx: &Ctx, state: &mut State, key: &str) -> ApiResult<Reply> {
    let (id, username) = state
        .user_by_name_or_id(key)
        .map(|u| (u.id.clone(), u.username.clone()))
        .ok_or_else(|| ApiError::user_not_found(key))?;
    ctx.require_self_or_admin(&username)?;
    let owns_items = state
        .items
        .values()
        .any(|i| i.item.owner.eq_ignore_ascii_case(&username));
    let owns_groups = state
        .groups
        .values()
        .any(|g| g.group.owner.eq_ignore_ascii_case(&username));
    if owns_items || owns_groups {
        return Err(
            ApiError::new(400, Some("COM_0040"), "Unable to delete user.").with_details([format!(
                "User '{username}' owns items or groups. Reassign or delete them first."
            )]),
        );
    }
    for group in state.groups.values_mut() {
        group
            .group
            .users
            .retain(|u| !u.eq_ignore_ascii_case(&username));
        group
            .group
            .admins
            .retain(|u| !u.eq_ignore_ascii_case(&username));
    }
    state.users.shift_remove(&id);
    state.usernames.remove(&username.to_lowercase());
    state
        .tokens
        .retain(|_, t| !t.username.eq_ignore_ascii_case(&username));
    Ok(Reply::Json(json!({"success": true, "username": username})))
}

/// `(role, roleId)`: built-in roles keep no id; anything else is a role id on top of
/// `org_user` (the Viewer and Data Editor ids included).
fn normalize_role(role: &str) -> (String, Option<String>) {
    match role.to_ascii_lowercase().as_str() {
        "org_admin" | "account_admin" | "admin" => ("org_admin".into(), None),
        "org_publisher" | "account_publisher" | "publisher" => ("org_publisher".into(), None),
        "org_user" | "account_user" | "user" => ("org_user".into(), None),
        _ => ("org_user".into(), Some(role.to_owned())),
    }
}

pub fn update_role(ctx: &Ctx, state: &mut State) -> ApiResult<Reply> {
    ctx.require_admin()?;
    let username = ctx.req.require("user")?.to_owned();
    let role = ctx.req.require("role")?;
    let (role, role_id) = normalize_role(role);
    let now = ctx.now;
    let searchable_at = ctx.searchable_at();
    let sim = state
        .user_mut(&username)
        .ok_or_else(|| ApiError::user_not_found(&username))?;
    sim.user.role = role;
    sim.user.role_id = role_id;
    sim.user.modified = now;
    sim.searchable_at = searchable_at;
    Ok(Reply::Json(success()))
}

pub fn update_license_type(ctx: &Ctx, state: &mut State) -> ApiResult<Reply> {
    ctx.require_admin()?;
    let license = ctx.req.require("userlicensetype")?.to_owned();
    let usernames = ctx.req.list("users");
    if usernames.is_empty() {
        return Err(ApiError::missing("users"));
    }
    let now = ctx.now;
    let results: Vec<Value> = usernames
        .iter()
        .map(|username| match state.user_mut(username) {
            Some(sim) => {
                sim.user.user_license_type_id = license.clone();
                sim.user.modified = now;
                json!({"username": sim.user.username, "status": true, "success": true})
            }
            None => json!({"username": username, "status": false, "success": false}),
        })
        .collect();
    Ok(Reply::Json(json!({ "results": results })))
}

/// A user about to be created.
struct NewUser {
    username: String,
    password: String,
    first_name: String,
    last_name: String,
    full_name: Option<String>,
    email: String,
    role: String,
    license: Option<String>,
    provider: String,
    idp_username: Option<String>,
    description: Option<String>,
}

fn insert_user(ctx: &Ctx, state: &mut State, new: NewUser) -> Result<String, String> {
    if new.username.is_empty() {
        return Err("'username' must be specified.".into());
    }
    if state.user(&new.username).is_some() {
        return Err(format!("User '{}' already exists.", new.username));
    }
    if new.provider == "arcgis" && new.password.is_empty() {
        return Err("'password' must be specified for built-in accounts.".into());
    }
    let (role, role_id) = normalize_role(&new.role);
    let license = new.license.unwrap_or_else(|| {
        if role_id.as_deref() == Some("iAAAAAAAAAAAAAAA") {
            "viewerUT".into()
        } else {
            "creatorUT".into()
        }
    });
    let full_name = new.full_name.unwrap_or_else(|| {
        format!("{} {}", new.first_name, new.last_name)
            .trim()
            .to_owned()
    });
    let user = User {
        id: new_id(),
        username: new.username.clone(),
        password: new.password,
        full_name,
        first_name: new.first_name,
        last_name: new.last_name,
        email: new.email,
        role,
        role_id,
        user_license_type_id: license,
        provider: new.provider,
        idp_username: new.idp_username,
        description: new.description,
        tags: vec![],
        access: "org".into(),
        preferred_view: None,
        culture: None,
        region: None,
        units: None,
        thumbnail: None,
        created: ctx.now,
        modified: ctx.now,
        folders: vec![],
    };
    state
        .usernames
        .insert(user.username.to_lowercase(), user.id.clone());
    state.users.insert(
        user.id.clone(),
        SimUser {
            user,
            searchable_at: ctx.searchable_at(),
        },
    );
    Ok(new.username)
}

fn admin_error(code: u16, message: impl Into<String>) -> Reply {
    Reply::AdminJson(json!({
        "status": "error", "messages": [message.into()], "code": code,
    }))
}

/// Enterprise: `portaladmin/security/users/createUser`, answered in the admin API's shapes.
pub fn create_user(ctx: &Ctx, state: &mut State) -> ApiResult<Reply> {
    if ctx.caller.is_none() {
        return Ok(admin_error(499, "Token Required"));
    }
    if !ctx.is_admin {
        return Ok(admin_error(
            403,
            "You do not have permissions to create users.",
        ));
    }
    if state.portal.portal_mode != "singletenant" {
        return Ok(admin_error(
            404,
            "The portal admin API is not available on this portal.",
        ));
    }
    let req = ctx.req;
    let text = |key: &str| req.get(key).unwrap_or("").to_owned();
    let new = NewUser {
        username: text("username"),
        password: req.raw("password").unwrap_or("").to_owned(),
        first_name: text("firstname"),
        last_name: text("lastname"),
        full_name: req.get("fullname").map(str::to_owned),
        email: text("email"),
        role: req.get("role").unwrap_or("org_user").to_owned(),
        license: req.get("userlicensetypeid").map(str::to_owned),
        provider: req.get("provider").unwrap_or("arcgis").to_ascii_lowercase(),
        idp_username: req.get("idpusername").map(str::to_owned),
        description: req.get("description").map(str::to_owned),
    };
    match insert_user(ctx, state, new) {
        Ok(_) => Ok(Reply::AdminJson(json!({"status": "success"}))),
        Err(message) => Ok(admin_error(400, message)),
    }
}

/// Online: `portals/self/invite`. Invitations with a password create the account at once;
/// without one the invitation is pending (no account), as when nobody accepts the e-mail.
pub fn invite(ctx: &Ctx, state: &mut State) -> ApiResult<Reply> {
    ctx.require_admin()?;
    if state.portal.portal_mode != "multitenant" {
        return Err(ApiError::bad_request(
            "Inviting users is not supported on this portal; use portaladmin createUser.",
        ));
    }
    let list: Value = serde_json::from_str(ctx.req.require("invitationlist")?)
        .map_err(|_| ApiError::bad_request("'invitationList' is not valid JSON."))?;
    let invitations = list
        .get("invitations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut not_invited = Vec::new();
    for invitation in invitations {
        let field = |key: &str| {
            invitation
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let username = field("username");
        let password = field("password");
        if username.is_empty() || state.user(&username).is_some() {
            not_invited.push(username);
            continue;
        }
        if password.is_empty() {
            continue;
        }
        let new = NewUser {
            username: username.clone(),
            password,
            first_name: field("firstname"),
            last_name: field("lastname"),
            full_name: Some(field("fullname")).filter(|f| !f.is_empty()),
            email: field("email"),
            role: Some(field("role"))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "org_user".into()),
            license: Some(field("userLicenseType")).filter(|l| !l.is_empty()),
            provider: Some(field("targetUserProvider"))
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "arcgis".into()),
            idp_username: Some(field("idpUsername")).filter(|i| !i.is_empty()),
            description: None,
        };
        if insert_user(ctx, state, new).is_err() {
            not_invited.push(username.clone());
            continue;
        }
        for group_id in crate::sim::request::split_list(&field("groups")) {
            if let Some(group) = state.groups.get_mut(&group_id) {
                group.group.users.push(username.clone());
            }
        }
    }
    Ok(Reply::Json(
        json!({"success": true, "notInvited": not_invited}),
    ))
}
