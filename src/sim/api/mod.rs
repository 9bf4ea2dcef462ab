//! Endpoint handlers. Each takes the request context and the locked state and returns a
//! [`Reply`] or the portal error it would answer with. They never block and never await:
//! the state lock is held for one handler call only.

mod content;
mod groups;
mod portal;
pub use portal::authenticate;
mod sharing;
mod users;

use super::error::{ApiError, ApiResult};
use super::faults::Faults;
use super::request::Req;
use super::routes::{ItemOp, Route};
use super::state::{contains_user, SimItem, State};
use crate::fixture::{Group, User};
use bytes::Bytes;
use serde_json::{json, Value};
use std::cmp::Ordering;

/// What a handler answers.
#[derive(Debug)]
pub enum Reply {
    Json(Value),
    /// A portaladmin answer: JSON, but its errors have a different shape.
    AdminJson(Value),
    Bytes {
        content_type: String,
        filename: Option<String>,
        body: Bytes,
    },
    /// A file served as a stream with its length (generated or kept on disk).
    File {
        content_type: String,
        filename: Option<String>,
        body: crate::sim::files::FileBody,
    },
    /// `/data` of an item without data: HTTP 200 with an empty body.
    Empty,
}

/// Everything a handler needs besides the state.
pub struct Ctx<'a> {
    pub req: &'a Req,
    /// The signed-in user's username as stored, or `None` for anonymous calls.
    pub caller: Option<String>,
    pub is_admin: bool,
    pub base_url: &'a str,
    pub faults: &'a Faults,
    pub now: i64,
}

impl Ctx<'_> {
    pub fn require_user(&self) -> ApiResult<&str> {
        self.caller.as_deref().ok_or_else(ApiError::token_required)
    }

    pub fn require_admin(&self) -> ApiResult<&str> {
        let caller = self.require_user()?;
        if self.is_admin {
            Ok(caller)
        } else {
            Err(ApiError::no_permission())
        }
    }

    /// The caller acting on `username`'s account or content: themself or an org admin.
    pub fn require_self_or_admin(&self, username: &str) -> ApiResult<&str> {
        let caller = self.require_user()?;
        if self.is_admin || caller.eq_ignore_ascii_case(username) {
            Ok(caller)
        } else {
            Err(ApiError::no_permission())
        }
    }

    pub fn is(&self, username: &str) -> bool {
        self.caller
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case(username))
    }

    /// When search endpoints may see an object written now.
    pub fn searchable_at(&self) -> i64 {
        self.now + self.faults.search_lag_ms as i64
    }
}

pub fn can_see_group(ctx: &Ctx, group: &Group) -> bool {
    match ctx.caller.as_deref() {
        None => group.access == "public",
        Some(caller) => {
            ctx.is_admin || group.access != "private" || contains_user(&group.users, caller)
        }
    }
}

pub fn can_manage_group(ctx: &Ctx, group: &Group) -> bool {
    match ctx.caller.as_deref() {
        None => false,
        Some(caller) => {
            ctx.is_admin
                || group.owner.eq_ignore_ascii_case(caller)
                || contains_user(&group.admins, caller)
        }
    }
}

pub fn can_see_item(ctx: &Ctx, state: &State, item: &SimItem) -> bool {
    let item = &item.item;
    match ctx.caller.as_deref() {
        None => item.access == "public",
        Some(caller) => {
            ctx.is_admin
                || item.owner.eq_ignore_ascii_case(caller)
                || item.access == "public"
                || item.access == "org"
                || item.groups.iter().any(|g| {
                    state
                        .groups
                        .get(g)
                        .is_some_and(|g| contains_user(&g.group.users, caller))
                })
        }
    }
}

pub fn can_see_user(ctx: &Ctx, user: &User) -> bool {
    match ctx.caller.as_deref() {
        None => user.access == "public",
        Some(caller) => {
            ctx.is_admin || user.access != "private" || user.username.eq_ignore_ascii_case(caller)
        }
    }
}

/// An item the caller may read: CONT_0001 when missing, 403 when not theirs to see.
pub fn visible_item<'s>(ctx: &Ctx, state: &'s State, id: &str) -> ApiResult<&'s SimItem> {
    let item = state.items.get(id).ok_or_else(ApiError::item_not_found)?;
    if can_see_item(ctx, state, item) {
        Ok(item)
    } else {
        Err(ApiError::no_permission())
    }
}

/// An item the caller may change: its owner or an org admin.
pub fn editable_item<'s>(ctx: &Ctx, state: &'s mut State, id: &str) -> ApiResult<&'s mut SimItem> {
    let caller = ctx.require_user()?.to_owned();
    let item = state
        .items
        .get_mut(id)
        .ok_or_else(ApiError::item_not_found)?;
    if ctx.is_admin || item.item.owner.eq_ignore_ascii_case(&caller) {
        Ok(item)
    } else {
        Err(ApiError::no_permission())
    }
}

/// One page of `all`: `(page, nextStart)`, `nextStart` being -1 on the last page.
pub fn page<T>(all: Vec<T>, start: usize, num: usize) -> (Vec<T>, i64) {
    let total = all.len();
    let from = (start - 1).min(total);
    let to = (from + num).min(total);
    let next = if num > 0 && to < total {
        (to + 1) as i64
    } else {
        -1
    };
    let page = all.into_iter().skip(from).take(to - from).collect();
    (page, next)
}

/// A sort key: text compares case-insensitively, numbers numerically.
#[derive(PartialEq, PartialOrd)]
pub enum SortKey {
    Text(String),
    Number(i64),
    None,
}

/// Sorts by the request's `sortField`/`sortOrder` when given; otherwise keeps the order.
pub fn sort_by_request<T>(req: &Req, results: &mut [T], key: impl Fn(&T, &str) -> SortKey) {
    let Some(field) = req.get("sortfield") else {
        return;
    };
    let field = field
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let descending = req
        .get("sortorder")
        .is_some_and(|o| o.eq_ignore_ascii_case("desc"));
    results.sort_by(|a, b| {
        let ordering = key(a, &field)
            .partial_cmp(&key(b, &field))
            .unwrap_or(Ordering::Equal);
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
}

pub fn text_key(value: &str) -> SortKey {
    SortKey::Text(value.to_lowercase())
}

pub fn success() -> Value {
    json!({ "success": true })
}

/// Runs the handler of `route`.
pub fn handle(ctx: &Ctx, state: &mut State, route: &Route) -> ApiResult<Reply> {
    use Route::*;
    let req = ctx.req;
    if route.is_write() && req.method != hyper::Method::POST {
        return Err(ApiError::method_not_supported());
    }
    match route {
        Info => portal::info(ctx, state),
        RestRoot => portal::rest_root(state),
        GenerateToken => portal::generate_token(ctx, state),
        PortalSelf => portal::portal_self(ctx, state),
        PortalUsers => users::portal_users(ctx, state),
        UpdateUserRole => users::update_role(ctx, state),
        UpdateUserLicenseType => users::update_license_type(ctx, state),
        UserLicenseTypes => portal::user_license_types(ctx),
        Roles => portal::roles(ctx, state),
        Invite => users::invite(ctx, state),
        CreateUser => users::create_user(ctx, state),
        CommunitySelf => users::community_self(ctx, state),
        UserSearch => users::search(ctx, state),
        User(u) => users::get(ctx, state, u),
        UserUpdate(u) => users::update(ctx, state, u),
        UserDelete(u) => users::delete(ctx, state, u),
        UserInfo(u) => users::thumbnail(ctx, state, u),
        GroupSearch => groups::search(ctx, state),
        CreateGroup => groups::create(ctx, state),
        Group(id) => groups::get(ctx, state, id),
        GroupUpdate(id) => groups::update(ctx, state, id),
        GroupDelete(id) => groups::delete(ctx, state, id),
        GroupAddUsers(id) => groups::add_users(ctx, state, id),
        GroupRemoveUsers(id) => groups::remove_users(ctx, state, id),
        GroupUpdateUsers(id) => groups::update_users(ctx, state, id),
        GroupReassign(id) => groups::reassign(ctx, state, id),
        GroupUsers(id) => groups::users(ctx, state, id),
        GroupUserList(id) => groups::user_list(ctx, state, id),
        GroupInfo(id) => groups::thumbnail(ctx, state, id),
        GroupContent(id) => groups::content(ctx, state, id),
        GroupContentSearch(id) => content::search_in_group(ctx, state, id),
        UserContent { user, folder } => content::listing(ctx, state, user, folder.as_deref()),
        CreateFolder(u) => content::create_folder(ctx, state, u),
        DeleteFolder { user, folder } => content::delete_folder(ctx, state, user, folder),
        AddItem { user, folder } => content::add_item(ctx, state, user, folder.as_deref()),
        ShareItems(u) => sharing::share_items(ctx, state, u, true),
        UnshareItems(u) => sharing::share_items(ctx, state, u, false),
        AddRelationship(u) => sharing::add_relationship(ctx, state, u),
        DeleteRelationship(u) => sharing::delete_relationship(ctx, state, u),
        OwnerItem { user, id, op } => owner_item(ctx, state, user, id, op),
        Item(id) => content::get_item(ctx, state, id),
        ItemData(id) => content::data(ctx, state, id),
        ItemInfo(id, file) => content::info_file(ctx, state, id, file),
        ItemGroups(id) => sharing::item_groups(ctx, state, id),
        RelatedItems(id) => sharing::related_items(ctx, state, id),
        ItemShare(id) => sharing::share_item(ctx, state, None, id),
        ItemUnshare(id) => sharing::unshare_item(ctx, state, None, id),
        Search => content::search(ctx, state, None),
    }
}

fn owner_item(ctx: &Ctx, state: &mut State, user: &str, id: &str, op: &ItemOp) -> ApiResult<Reply> {
    // The owner in the path must be the item's owner, as on a real portal.
    match state.items.get(id) {
        Some(item) if item.item.owner.eq_ignore_ascii_case(user) => {}
        _ => return Err(ApiError::item_not_found()),
    }
    match op {
        ItemOp::Get => content::owner_view(ctx, state, id),
        ItemOp::Update => content::update(ctx, state, id),
        ItemOp::Delete => content::delete(ctx, state, id),
        ItemOp::Reassign => content::reassign(ctx, state, id),
        ItemOp::Move => content::move_item(ctx, state, id),
        ItemOp::Share => sharing::share_item(ctx, state, Some(user), id),
        ItemOp::Unshare => sharing::unshare_item(ctx, state, Some(user), id),
        ItemOp::AddPart => content::add_part(ctx, state, id),
        ItemOp::Commit => content::commit(ctx, state, id),
        ItemOp::Status => content::status(ctx, state, id),
        ItemOp::Parts => content::parts(ctx, state, id),
        ItemOp::Cancel => content::cancel(ctx, state, id),
    }
}
