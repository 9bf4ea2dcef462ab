//! URL path → [`Route`], plus the route template counted in stats. Fixed segments match
//! case-insensitively (clients write `updateuserrole` and `updateUserRole`), `portals/<any id>`
//! is `portals/self`, and the folder segment of owner item routes is optional.

#[derive(Debug, Clone, PartialEq)]
pub enum ItemOp {
    Get,
    Update,
    Delete,
    Reassign,
    Move,
    Share,
    Unshare,
    AddPart,
    Commit,
    Status,
    Parts,
    Cancel,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Info,
    RestRoot,
    GenerateToken,
    PortalSelf,
    PortalUsers,
    UpdateUserRole,
    UpdateUserLicenseType,
    UserLicenseTypes,
    Roles,
    Invite,
    CreateUser,
    CommunitySelf,
    UserSearch,
    User(String),
    UserUpdate(String),
    UserDelete(String),
    UserInfo(String),
    GroupSearch,
    CreateGroup,
    Group(String),
    GroupUpdate(String),
    GroupDelete(String),
    GroupAddUsers(String),
    GroupRemoveUsers(String),
    GroupUpdateUsers(String),
    GroupReassign(String),
    GroupUsers(String),
    GroupUserList(String),
    GroupInfo(String),
    GroupContent(String),
    /// `content/groups/<id>/search`: item search limited to one group's items.
    GroupContentSearch(String),
    UserContent {
        user: String,
        folder: Option<String>,
    },
    CreateFolder(String),
    DeleteFolder {
        user: String,
        folder: String,
    },
    AddItem {
        user: String,
        folder: Option<String>,
    },
    ShareItems(String),
    UnshareItems(String),
    AddRelationship(String),
    DeleteRelationship(String),
    OwnerItem {
        user: String,
        id: String,
        op: ItemOp,
    },
    Item(String),
    ItemData(String),
    /// The path below `info/`, e.g. `thumbnail/a.png` or `metadata/metadata.xml`.
    ItemInfo(String, String),
    ItemGroups(String),
    RelatedItems(String),
    ItemShare(String),
    ItemUnshare(String),
    Search,
}

impl Route {
    /// Operations that change state: POST only, and subject to "write, then fail" faults.
    pub fn is_write(&self) -> bool {
        use Route::*;
        match self {
            GenerateToken
            | UpdateUserRole
            | UpdateUserLicenseType
            | Invite
            | CreateUser
            | UserUpdate(_)
            | UserDelete(_)
            | CreateGroup
            | GroupUpdate(_)
            | GroupDelete(_)
            | GroupAddUsers(_)
            | GroupRemoveUsers(_)
            | GroupUpdateUsers(_)
            | GroupReassign(_)
            | CreateFolder(_)
            | DeleteFolder { .. }
            | AddItem { .. }
            | ShareItems(_)
            | UnshareItems(_)
            | AddRelationship(_)
            | DeleteRelationship(_)
            | ItemShare(_)
            | ItemUnshare(_) => true,
            OwnerItem { op, .. } => !matches!(op, ItemOp::Get | ItemOp::Status | ItemOp::Parts),
            _ => false,
        }
    }
}

pub struct Resolved {
    pub route: Route,
    pub template: &'static str,
}

fn eq(segment: &str, word: &str) -> bool {
    segment.eq_ignore_ascii_case(word)
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Resolves a full request path (`/portal/...`). `None` means "Invalid URL".
pub fn resolve(path: &str) -> Option<Resolved> {
    let rest = path.strip_prefix("/portal")?;
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let r = |route, template| Some(Resolved { route, template });
    match s.as_slice() {
        [info] if eq(info, "info") => r(Route::Info, "info"),
        [a, sec, users, create]
            if eq(a, "portaladmin")
                && eq(sec, "security")
                && eq(users, "users")
                && eq(create, "createuser") =>
        {
            r(Route::CreateUser, "portaladmin/security/users/createUser")
        }
        [a, orgs, _, sec, users, create]
            if eq(a, "admin")
                && eq(orgs, "orgs")
                && eq(sec, "security")
                && eq(users, "users")
                && eq(create, "createuser") =>
        {
            r(
                Route::CreateUser,
                "admin/orgs/{id}/security/users/createUser",
            )
        }
        [sharing, rest, tail @ ..] if eq(sharing, "sharing") && eq(rest, "rest") => {
            resolve_rest(tail)
        }
        _ => None,
    }
}

fn resolve_rest(s: &[&str]) -> Option<Resolved> {
    use Route::*;
    let r = |route, template| Some(Resolved { route, template });
    match s {
        [] => r(RestRoot, ""),
        [a] if eq(a, "info") => r(Info, "info"),
        [a] if eq(a, "generatetoken") => r(GenerateToken, "generateToken"),
        [a] if eq(a, "search") => r(Search, "search"),
        [p, _] if eq(p, "portals") => r(PortalSelf, "portals/self"),
        [p, _, op] if eq(p, "portals") => {
            let op = op.to_ascii_lowercase();
            match op.as_str() {
                "users" => r(PortalUsers, "portals/self/users"),
                "updateuserrole" => r(UpdateUserRole, "portals/self/updateuserrole"),
                "updateuserlicensetype" => {
                    r(UpdateUserLicenseType, "portals/self/updateUserLicenseType")
                }
                "userlicensetypes" => r(UserLicenseTypes, "portals/self/userLicenseTypes"),
                "roles" => r(Roles, "portals/self/roles"),
                "invite" => r(Invite, "portals/self/invite"),
                _ => None,
            }
        }
        [p, _, users, search] if eq(p, "portals") && eq(users, "users") && eq(search, "search") => {
            r(UserSearch, "portals/self/users/search")
        }
        [c, rest @ ..] if eq(c, "community") => resolve_community(rest),
        [c, rest @ ..] if eq(c, "content") => resolve_content(rest),
        _ => None,
    }
}

fn resolve_community(s: &[&str]) -> Option<Resolved> {
    use Route::*;
    let r = |route, template| Some(Resolved { route, template });
    match s {
        [a] if eq(a, "self") => r(CommunitySelf, "community/self"),
        [a] if eq(a, "users") => r(UserSearch, "community/users"),
        [a] if eq(a, "groups") => r(GroupSearch, "community/groups"),
        [a] if eq(a, "creategroup") => r(CreateGroup, "community/createGroup"),
        [a, u] if eq(a, "users") => r(User(u.to_string()), "community/users/{username}"),
        [a, u, op] if eq(a, "users") => {
            let u = u.to_string();
            match op.to_ascii_lowercase().as_str() {
                "update" => r(UserUpdate(u), "community/users/{username}/update"),
                "delete" => r(UserDelete(u), "community/users/{username}/delete"),
                _ => None,
            }
        }
        [a, u, info, _, ..] if eq(a, "users") && eq(info, "info") => r(
            UserInfo(u.to_string()),
            "community/users/{username}/info/{file}",
        ),
        [a, g] if eq(a, "groups") => r(Group(g.to_string()), "community/groups/{id}"),
        [a, g, op] if eq(a, "groups") => {
            let g = g.to_string();
            match op.to_ascii_lowercase().as_str() {
                "update" => r(GroupUpdate(g), "community/groups/{id}/update"),
                "delete" => r(GroupDelete(g), "community/groups/{id}/delete"),
                "addusers" => r(GroupAddUsers(g), "community/groups/{id}/addUsers"),
                "removeusers" => r(GroupRemoveUsers(g), "community/groups/{id}/removeUsers"),
                "updateusers" => r(GroupUpdateUsers(g), "community/groups/{id}/updateUsers"),
                "reassign" => r(GroupReassign(g), "community/groups/{id}/reassign"),
                "users" => r(GroupUsers(g), "community/groups/{id}/users"),
                "userlist" => r(GroupUserList(g), "community/groups/{id}/userlist"),
                _ => None,
            }
        }
        [a, g, info, _, ..] if eq(a, "groups") && eq(info, "info") => r(
            GroupInfo(g.to_string()),
            "community/groups/{id}/info/{file}",
        ),
        _ => None,
    }
}

/// Words that cannot be folder ids in `content/users/<u>/<word>` (folder ids are hex).
fn user_op(word: &str, user: &str) -> Option<Resolved> {
    use Route::*;
    let r = |route, template| Some(Resolved { route, template });
    let user = user.to_owned();
    match word.to_ascii_lowercase().as_str() {
        "createfolder" => r(CreateFolder(user), "content/users/{username}/createFolder"),
        "additem" => r(
            AddItem { user, folder: None },
            "content/users/{username}/addItem",
        ),
        "shareitems" => r(ShareItems(user), "content/users/{username}/shareItems"),
        "unshareitems" => r(UnshareItems(user), "content/users/{username}/unshareItems"),
        "addrelationship" => r(
            AddRelationship(user),
            "content/users/{username}/addRelationship",
        ),
        "deleterelationship" => r(
            DeleteRelationship(user),
            "content/users/{username}/deleteRelationship",
        ),
        _ => None,
    }
}

fn item_op(user: &str, id: &str, op: Option<&str>) -> Option<Resolved> {
    let (op, template) = match op.map(str::to_ascii_lowercase).as_deref() {
        None => (ItemOp::Get, "content/users/{username}/items/{id}"),
        Some("update") => (ItemOp::Update, "content/users/{username}/items/{id}/update"),
        Some("delete") => (ItemOp::Delete, "content/users/{username}/items/{id}/delete"),
        Some("reassign") => (
            ItemOp::Reassign,
            "content/users/{username}/items/{id}/reassign",
        ),
        Some("move") => (ItemOp::Move, "content/users/{username}/items/{id}/move"),
        Some("share") => (ItemOp::Share, "content/users/{username}/items/{id}/share"),
        Some("unshare") => (
            ItemOp::Unshare,
            "content/users/{username}/items/{id}/unshare",
        ),
        Some("addpart") => (
            ItemOp::AddPart,
            "content/users/{username}/items/{id}/addPart",
        ),
        Some("commit") => (ItemOp::Commit, "content/users/{username}/items/{id}/commit"),
        Some("status") => (ItemOp::Status, "content/users/{username}/items/{id}/status"),
        Some("parts") => (ItemOp::Parts, "content/users/{username}/items/{id}/parts"),
        Some("cancel") => (ItemOp::Cancel, "content/users/{username}/items/{id}/cancel"),
        Some(_) => return None,
    };
    Some(Resolved {
        route: Route::OwnerItem {
            user: user.to_owned(),
            id: id.to_owned(),
            op,
        },
        template,
    })
}

fn resolve_content(s: &[&str]) -> Option<Resolved> {
    use Route::*;
    let r = |route, template| Some(Resolved { route, template });
    match s {
        [g, id] if eq(g, "groups") => r(GroupContent(id.to_string()), "content/groups/{id}"),
        [g, id, search] if eq(g, "groups") && eq(search, "search") => r(
            GroupContentSearch(id.to_string()),
            "content/groups/{id}/search",
        ),
        [a, u] if eq(a, "users") => r(
            UserContent {
                user: u.to_string(),
                folder: None,
            },
            "content/users/{username}",
        ),
        [a, u, word] if eq(a, "users") => user_op(word, u).or_else(|| {
            r(
                UserContent {
                    user: u.to_string(),
                    folder: Some(word.to_string()),
                },
                "content/users/{username}/{folderId}",
            )
        }),
        [a, u, items, id] if eq(a, "users") && eq(items, "items") => item_op(u, id, None),
        [a, u, items, id, op] if eq(a, "users") && eq(items, "items") => item_op(u, id, Some(op)),
        [a, u, f, word] if eq(a, "users") => match word.to_ascii_lowercase().as_str() {
            "delete" => r(
                DeleteFolder {
                    user: u.to_string(),
                    folder: f.to_string(),
                },
                "content/users/{username}/{folderId}/delete",
            ),
            "additem" => r(
                AddItem {
                    user: u.to_string(),
                    folder: Some(f.to_string()),
                },
                "content/users/{username}/{folderId}/addItem",
            ),
            _ => user_op(word, u),
        },
        [a, u, _f, items, id] if eq(a, "users") && eq(items, "items") => item_op(u, id, None),
        [a, u, _f, items, id, op] if eq(a, "users") && eq(items, "items") => {
            item_op(u, id, Some(op))
        }
        [i, id] if eq(i, "items") => r(Item(id.to_string()), "content/items/{id}"),
        [i, id, op] if eq(i, "items") => {
            let id = id.to_string();
            match op.to_ascii_lowercase().as_str() {
                "data" => r(ItemData(id), "content/items/{id}/data"),
                "groups" => r(ItemGroups(id), "content/items/{id}/groups"),
                "relateditems" => r(RelatedItems(id), "content/items/{id}/relatedItems"),
                "share" => r(ItemShare(id), "content/items/{id}/share"),
                "unshare" => r(ItemUnshare(id), "content/items/{id}/unshare"),
                _ => None,
            }
        }
        [i, id, info, rest @ ..] if eq(i, "items") && eq(info, "info") && !rest.is_empty() => r(
            ItemInfo(id.to_string(), rest.join("/")),
            "content/items/{id}/info/{file}",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Option<Route> {
        resolve(path).map(|r| r.route)
    }

    #[test]
    fn portals_any_id_is_self_and_ops_are_case_insensitive() {
        assert_eq!(
            route("/portal/sharing/rest/portals/0123456789ABCDEF/updateUserRole"),
            Some(Route::UpdateUserRole)
        );
        assert_eq!(
            route("/portal/sharing/rest/portals/self/updateuserrole"),
            Some(Route::UpdateUserRole)
        );
    }

    #[test]
    fn the_folder_segment_of_owner_item_routes_is_optional() {
        let expected = Some(Route::OwnerItem {
            user: "u".into(),
            id: "abc".into(),
            op: ItemOp::Update,
        });
        assert_eq!(
            route("/portal/sharing/rest/content/users/u/items/abc/update"),
            expected
        );
        assert_eq!(
            route("/portal/sharing/rest/content/users/u/f00d/items/abc/update"),
            expected
        );
    }

    #[test]
    fn folder_words_are_operations_not_folders() {
        assert_eq!(
            route("/portal/sharing/rest/content/users/u/createFolder"),
            Some(Route::CreateFolder("u".into()))
        );
        assert_eq!(
            route("/portal/sharing/rest/content/users/u/f00d"),
            Some(Route::UserContent {
                user: "u".into(),
                folder: Some("f00d".into())
            })
        );
        assert_eq!(
            route("/portal/sharing/rest/content/users/u/f00d/addItem"),
            Some(Route::AddItem {
                user: "u".into(),
                folder: Some("f00d".into())
            })
        );
    }

    #[test]
    fn item_info_keeps_the_whole_file_path() {
        assert_eq!(
            route("/portal/sharing/rest/content/items/abc/info/thumbnail/a.png"),
            Some(Route::ItemInfo("abc".into(), "thumbnail/a.png".into()))
        );
    }

    #[test]
    fn unknown_paths_resolve_to_nothing() {
        assert!(route("/portal/sharing/rest/nothing/here").is_none());
        assert!(route("/elsewhere").is_none());
    }
}
