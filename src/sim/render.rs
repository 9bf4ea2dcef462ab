//! Users, groups, items and folders in the JSON shapes real portals answer with (see
//! `shared/portal-api/examples`): every field a client may read is present, `null` when empty.

use super::state::{SimItem, State};
use crate::fixture::{Folder, Group, User};
use serde_json::{json, Map, Value};

/// How much of a user profile the caller may see.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum UserView {
    /// Strangers: the public subset.
    Public,
    /// Search results for org members/admins: everything but privileges and groups.
    Search,
    /// The user themself or an org admin: everything, with privileges and groups.
    Full,
}

const USER_PRIVILEGES: &[&str] = &[
    "portal:user:createGroup",
    "portal:user:createItem",
    "portal:user:joinGroup",
    "portal:user:joinNonOrgGroup",
    "portal:user:shareGroupToOrg",
    "portal:user:shareToGroup",
    "portal:user:shareToOrg",
    "portal:user:viewOrgGroups",
    "portal:user:viewOrgItems",
    "portal:user:viewOrgUsers",
];

const PUBLISHER_PRIVILEGES: &[&str] = &[
    "portal:publisher:publishFeatures",
    "portal:publisher:publishScenes",
    "portal:publisher:publishTiles",
    "portal:user:shareGroupToPublic",
    "portal:user:shareToPublic",
];

const ADMIN_PRIVILEGES: &[&str] = &[
    "portal:admin:assignToGroups",
    "portal:admin:changeUserRoles",
    "portal:admin:createUpdateCapableGroup",
    "portal:admin:deleteGroups",
    "portal:admin:deleteItems",
    "portal:admin:deleteUsers",
    "portal:admin:inviteUsers",
    "portal:admin:manageLicenses",
    "portal:admin:reassignGroups",
    "portal:admin:reassignItems",
    "portal:admin:reassignUsers",
    "portal:admin:shareToGroup",
    "portal:admin:shareToOrg",
    "portal:admin:shareToPublic",
    "portal:admin:updateGroups",
    "portal:admin:updateItems",
    "portal:admin:updateUsers",
    "portal:admin:viewGroups",
    "portal:admin:viewItems",
    "portal:admin:viewUsers",
];

pub fn privileges(role: &str) -> Vec<&'static str> {
    let mut privileges: Vec<&'static str> = USER_PRIVILEGES.to_vec();
    if role == "org_publisher" || role == "org_admin" {
        privileges.extend_from_slice(PUBLISHER_PRIVILEGES);
    }
    if role == "org_admin" {
        privileges.extend_from_slice(ADMIN_PRIVILEGES);
    }
    privileges.sort_unstable();
    privileges
}

pub fn user_json(state: &State, user: &User, view: UserView) -> Value {
    let thumbnail = user.thumbnail.as_ref().map(|t| t.name.clone());
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_owned(), value);
    };
    put("username", json!(user.username));
    put("udn", Value::Null);
    put("id", json!(user.id));
    put("fullName", json!(user.full_name));
    if view != UserView::Public {
        put("availableCredits", json!(-1));
        put("assignedCredits", json!(-1));
    }
    put("firstName", json!(user.first_name));
    put("lastName", json!(user.last_name));
    put("preferredView", json!(user.preferred_view));
    put("description", json!(user.description));
    if view != UserView::Public {
        put("email", json!(user.email));
        put("userType", json!("arcgisonly"));
        put("idpUsername", json!(user.idp_username));
        put("favGroupId", Value::Null);
        put("lastLogin", json!(-1));
        put("mfaEnabled", json!(false));
        put("storageUsage", json!(0));
        put("storageQuota", json!(-1));
        put("orgId", json!(state.portal.id));
        put("role", json!(user.role));
        if let Some(role_id) = &user.role_id {
            put("roleId", json!(role_id));
        }
        if view == UserView::Full {
            put("privileges", json!(privileges(&user.role)));
        }
        put(
            "level",
            json!(if user.role == "org_user" { "1" } else { "2" }),
        );
        put("userLicenseTypeId", json!(user.user_license_type_id));
        put("disabled", json!(false));
    }
    put("tags", json!(user.tags));
    put("culture", json!(user.culture));
    put("cultureFormat", Value::Null);
    put("region", json!(user.region));
    put("units", json!(user.units.as_deref().unwrap_or("english")));
    put("thumbnail", json!(thumbnail));
    put("access", json!(user.access));
    put("created", json!(user.created));
    put("modified", json!(user.modified));
    put("provider", json!(user.provider));
    if view == UserView::Full {
        let groups: Vec<Value> = state
            .groups
            .values()
            .filter(|g| super::state::contains_user(&g.group.users, &user.username))
            .map(|g| group_json(state, &g.group, Some(&user.username)))
            .collect();
        put("groups", json!(groups));
    } else {
        put("groups", json!([]));
    }
    Value::Object(out)
}

pub fn member_type(group: &Group, username: &str) -> &'static str {
    if group.owner.eq_ignore_ascii_case(username) {
        "owner"
    } else if super::state::contains_user(&group.admins, username) {
        "admin"
    } else if super::state::contains_user(&group.users, username) {
        "member"
    } else {
        "none"
    }
}

/// A group; `caller` adds the `userMembership` a signed-in caller sees.
pub fn group_json(state: &State, group: &Group, caller: Option<&str>) -> Value {
    let mut out = json!({
        "id": group.id,
        "title": group.title,
        "isInvitationOnly": group.is_invitation_only,
        "owner": group.owner,
        "description": group.description,
        "snippet": group.snippet,
        "tags": group.tags,
        "typeKeywords": [],
        "phone": group.phone,
        "sortField": group.sort_field,
        "sortOrder": group.sort_order,
        "isViewOnly": group.is_view_only,
        "isOpenData": false,
        "featuredItemsId": null,
        "thumbnail": group.thumbnail.as_ref().map(|t| t.name.clone()),
        "created": group.created,
        "modified": group.modified,
        "access": group.access,
        "capabilities": group.capabilities,
        "isFav": false,
        "isReadOnly": false,
        "protected": false,
        "autoJoin": false,
        "notificationsEnabled": false,
        "provider": null,
        "providerGroupName": null,
        "leavingDisallowed": false,
        "hiddenMembers": false,
        "displaySettings": {"itemTypes": ""},
        "orgId": state.portal.id,
        "properties": null,
    });
    if let Some(object) = out.as_object_mut() {
        if let Some(membership_access) = &group.membership_access {
            object.insert("membershipAccess".into(), json!(membership_access));
        }
        if let Some(caller) = caller {
            object.insert(
                "userMembership".into(),
                json!({
                    "username": caller,
                    "memberType": member_type(group, caller),
                    "applications": 0,
                }),
            );
        }
    }
    out
}

pub fn folder_json(username: &str, folder: &Folder) -> Value {
    json!({
        "username": username,
        "id": folder.id,
        "title": folder.title,
        "created": folder.created,
    })
}

/// `size` as portals report it: bytes of the data, -1 for a service with no data.
fn item_size(sim: &SimItem) -> i64 {
    match &sim.data {
        Some(data) => data.size(),
        None if sim.item.item_type.ends_with("Service") => -1,
        None => 0,
    }
}

pub fn item_json(state: &State, sim: &SimItem) -> Value {
    let item = &sim.item;
    let owner_folder = item
        .folder
        .as_ref()
        .and_then(|title| state.folder_id(&item.owner, title));
    let mut out = json!({
        "id": item.id,
        "owner": item.owner,
        "orgId": state.portal.id,
        "created": item.created,
        "isOrgItem": true,
        "modified": item.modified,
        "guid": null,
        "name": item.name,
        "title": item.title,
        "type": item.item_type,
        "typeKeywords": item.type_keywords,
        "description": item.description,
        "tags": item.tags,
        "snippet": item.snippet,
        "thumbnail": item.thumbnail.as_ref().map(|t| format!("thumbnail/{}", t.name)),
        "documentation": null,
        "extent": item.extent,
        "categories": item.categories,
        "spatialReference": item.spatial_reference,
        "accessInformation": item.access_information,
        "licenseInfo": item.license_info,
        "culture": item.culture,
        "properties": item.properties,
    });
    let rest = json!({
        "advancedSettings": null,
        "url": item.url,
        "proxyFilter": null,
        "access": item.access,
        "size": item_size(sim),
        "subInfo": 0,
        "appCategories": [],
        "industries": [],
        "languages": [],
        "largeThumbnail": null,
        "banner": null,
        "screenshots": [],
        "listed": false,
        "ownerFolder": owner_folder,
        "protected": false,
        "commentsEnabled": true,
        "numComments": 0,
        "numRatings": 0,
        "avgRating": 0,
        "numViews": 0,
        "scoreCompleteness": 0,
        "groupDesignations": null,
        "contentOrigin": "self",
    });
    if let (Some(out), Value::Object(rest)) = (out.as_object_mut(), rest) {
        out.extend(rest);
    }
    out
}
