//! Users, groups and folders: the target object against what the source says it should be.

use std::collections::BTreeSet;

use serde_json::Value;

use super::diff::{digest_stream, string_set, Diffs, FileDigest};
use super::{configured_username, Compared, Verifier};
use crate::clone::folder::FolderTask;
use crate::clone::text;
use crate::portal::{GroupMembers, PortalError};

pub(super) fn read_error(error: PortalError) -> String {
    error.to_string()
}

pub(super) fn gone_from_source(what: &str) -> String {
    format!("{what} no longer exists in the source (deleted since it was migrated?)")
}

pub(super) async fn user(
    v: &Verifier,
    source_username: &str,
    target_username: &str,
) -> Result<Compared, String> {
    let (source, target) = tokio::try_join!(
        v.source.user(source_username),
        v.target.user(target_username)
    )
    .map_err(read_error)?;
    let source = source.ok_or_else(|| gone_from_source(&format!("user {source_username}")))?;
    let Some(target) = target else {
        return Ok(Compared::Missing(format!(
            "the target has no user {target_username}"
        )));
    };
    let mut diffs = Diffs::default();
    // The id map is what the migration did; the rename rule is what the configuration says
    // now. A difference means the rule changed after the user was copied.
    let configured = configured_username(&v.settings, source_username);
    if !configured.eq_ignore_ascii_case(target_username) {
        diffs.push("username", configured, target_username);
    }
    for name in [
        "fullName",
        "firstName",
        "lastName",
        "email",
        "description",
        "access",
        "preferredView",
        "culture",
        "region",
        "idpUsername",
    ] {
        diffs.value(name, source.get(name), target.get(name));
    }
    diffs.set(
        "tags",
        &string_set(source.get("tags")),
        &string_set(target.get("tags")),
    );
    // A portal reports "english" for a user who never chose units; the copy states it.
    diffs.with_default("units", source.get("units"), target.get("units"), "english");
    diffs.with_default(
        "provider",
        source.get("provider"),
        target.get("provider"),
        "arcgis",
    );

    // The same rule the migration applies (custom roles mapped by name).
    let expected_role =
        crate::clone::user::expected_role(&v.settings.users.role_map, &source, Some(&v.roles))
            .unwrap_or_else(|problem| format!("(none: {problem})"));
    let found_role = match text(&target, "roleId").filter(|id| !id.is_empty()) {
        Some(role_id) => role_id,
        None => text(&target, "role").unwrap_or_else(|| "(none)".into()),
    };
    if found_role != expected_role {
        diffs.push("role", expected_role, found_role);
    }
    // Without a source license type the target assigns its default: nothing to compare.
    if let Some(license) = text(&source, "userLicenseTypeId") {
        let expected = v
            .settings
            .users
            .license_map
            .get(&license)
            .cloned()
            .unwrap_or(license);
        let found = text(&target, "userLicenseTypeId");
        if found.as_deref() != Some(expected.as_str()) {
            diffs.push(
                "userLicenseTypeId",
                expected,
                found.unwrap_or_else(|| "(none)".into()),
            );
        }
    }

    let (source_thumbnail, target_thumbnail) = tokio::try_join!(
        user_thumbnail(v, true, source_username, &source),
        user_thumbnail(v, false, target_username, &target),
    )
    .map_err(read_error)?;
    diffs.digest("thumbnail", &source_thumbnail, &target_thumbnail);
    Ok(Compared::Diffs(diffs.into_vec()))
}

async fn user_thumbnail(
    v: &Verifier,
    source: bool,
    username: &str,
    user: &Value,
) -> Result<Option<FileDigest>, PortalError> {
    let Some(name) = text(user, "thumbnail") else {
        return Ok(None);
    };
    let portal = if source { &v.source } else { &v.target };
    digest_stream(portal.user_thumbnail(username, &name).await?).await
}

pub(super) async fn group(
    v: &Verifier,
    source_id: &str,
    target_id: &str,
) -> Result<Compared, String> {
    let (source, target) = tokio::try_join!(v.source.group(source_id), v.target.group(target_id))
        .map_err(read_error)?;
    let source = source.ok_or_else(|| gone_from_source(&format!("group {source_id}")))?;
    let Some(target) = target else {
        return Ok(Compared::Missing(format!(
            "the target has no group {target_id}"
        )));
    };
    let mut diffs = Diffs::default();
    for name in [
        "title",
        "description",
        "snippet",
        "phone",
        "sortField",
        "sortOrder",
    ] {
        diffs.value(name, source.get(name), target.get(name));
    }
    diffs.set(
        "tags",
        &string_set(source.get("tags")),
        &string_set(target.get("tags")),
    );
    let access = text(&source, "access").unwrap_or_else(|| "private".into());
    let expected_access = translate_access(v, &access);
    let found_access = text(&target, "access").unwrap_or_else(|| "private".into());
    if expected_access != found_access {
        diffs.push("access", expected_access, found_access);
    }
    for flag in ["isInvitationOnly", "isViewOnly"] {
        diffs.flag(flag, source.get(flag), target.get(flag));
    }
    diffs.set(
        "capabilities",
        &string_set(source.get("capabilities")),
        &string_set(target.get("capabilities")),
    );
    if let Some(membership) = text(&source, "membershipAccess") {
        // Enterprise accepts only "org", so the migration copies other values only to Online.
        if v.target.info().is_online() || membership == "org" {
            diffs.value(
                "membershipAccess",
                source.get("membershipAccess"),
                target.get("membershipAccess"),
            );
        }
    }

    let (source_members, target_members, source_thumbnail, target_thumbnail) = tokio::try_join!(
        v.source.group_members(source_id),
        v.target.group_members(target_id),
        group_thumbnail(v, true, source_id, &source),
        group_thumbnail(v, false, target_id, &target),
    )
    .map_err(read_error)?;
    diffs.digest("thumbnail", &source_thumbnail, &target_thumbnail);

    let source_owner = text(&source, "owner").unwrap_or_else(|| source_members.owner.clone());
    let wanted_owner = v.target_username(&source_owner);
    // As the migration does: the signed-in administrator keeps a group whose owner has no
    // account in the target.
    let expected_owner = if v.target_has_user(&wanted_owner).await.map_err(read_error)? {
        wanted_owner
    } else {
        v.target.info().username.clone()
    };
    let found_owner = text(&target, "owner").unwrap_or_else(|| target_members.owner.clone());
    if !expected_owner.eq_ignore_ascii_case(&found_owner) {
        diffs.push("owner", expected_owner.clone(), found_owner);
    }

    let (expected_admins, expected_members) =
        expected_membership(v, &source_members, &expected_owner)
            .await
            .map_err(read_error)?;
    let (found_admins, found_members) = membership_sets(&target_members, None);
    diffs.set("admins", &expected_admins, &found_admins);
    diffs.set("members", &expected_members, &found_members);
    Ok(Compared::Diffs(diffs.into_vec()))
}

async fn group_thumbnail(
    v: &Verifier,
    source: bool,
    id: &str,
    group: &Value,
) -> Result<Option<FileDigest>, PortalError> {
    let Some(name) = text(group, "thumbnail") else {
        return Ok(None);
    };
    let portal = if source { &v.source } else { &v.target };
    digest_stream(portal.group_thumbnail(id, &name).await?).await
}

/// Lower-cased (admins, members) of a member list, the owner counted in both; `rename` maps
/// source usernames to target ones.
fn membership_sets(
    members: &GroupMembers,
    rename: Option<&dyn Fn(&str) -> String>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let name = |u: &str| match rename {
        Some(rename) => rename(u).to_ascii_lowercase(),
        None => u.to_ascii_lowercase(),
    };
    let admins: BTreeSet<String> = members
        .admins
        .iter()
        .map(|u| name(u))
        .chain(std::iter::once(name(&members.owner)))
        .collect();
    // Some portals list every member in `users`, others only plain members: take the union.
    let everyone = members
        .users
        .iter()
        .map(|u| name(u))
        .chain(admins.iter().cloned())
        .collect();
    (admins, everyone)
}

/// The source's managers and members as the target should have them: renamed, and without
/// the members the migration could not add (not migrated and without a target account).
async fn expected_membership(
    v: &Verifier,
    source: &GroupMembers,
    expected_owner: &str,
) -> Result<(BTreeSet<String>, BTreeSet<String>), PortalError> {
    let rename = |u: &str| v.target_username(u);
    let (admins, members) = membership_sets(source, Some(&rename));
    let source_owner = v.target_username(&source.owner).to_ascii_lowercase();
    let admins = reachable(v, admins, &source_owner, expected_owner).await?;
    let members = reachable(v, members, &source_owner, expected_owner).await?;
    Ok((admins, members))
}

/// `usernames` without `source_owner` (the owner is decided on its own, with its fallback)
/// and without anyone who is neither migrated nor has a target account; plus the expected owner.
async fn reachable(
    v: &Verifier,
    usernames: BTreeSet<String>,
    source_owner: &str,
    expected_owner: &str,
) -> Result<BTreeSet<String>, PortalError> {
    let mut kept = BTreeSet::new();
    for username in usernames {
        if username == source_owner {
            continue;
        }
        let migrated = v
            .maps
            .users
            .values()
            .any(|t| t.eq_ignore_ascii_case(&username));
        if migrated || v.target_has_user(&username).await? {
            kept.insert(username);
        }
    }
    kept.insert(expected_owner.to_ascii_lowercase());
    Ok(kept)
}

fn translate_access(v: &Verifier, access: &str) -> String {
    crate::clone::group::expected_access(
        v.settings.groups.access_translation,
        access,
        v.source.info().is_online(),
        v.target.info().is_online(),
    )
}

pub(super) async fn folder(
    v: &Verifier,
    job: &FolderTask,
    target_id: &str,
) -> Result<Compared, String> {
    let owner = v.target_username(&job.owner);
    let (source_folders, target_folders) =
        tokio::try_join!(v.source_folders(&job.owner), v.target_folders(&owner))
            .map_err(read_error)?;
    let title = source_folders
        .iter()
        .find(|(id, _)| id == &job.folder_id)
        .map(|(_, title)| title.clone())
        .ok_or_else(|| gone_from_source(&format!("folder '{}' of {}", job.title, job.owner)))?;
    let mut diffs = Diffs::default();
    if let Some((_, found)) = target_folders.iter().find(|(id, _)| id == target_id) {
        if found != &title {
            diffs.push("title", title, found.clone());
        }
    } else if let Some((id, _)) = target_folders
        .iter()
        .find(|(_, t)| t.eq_ignore_ascii_case(&title))
    {
        // Present by title, but not the folder the id map names: it was recreated.
        diffs.push("id", target_id, id.clone());
    } else {
        return Ok(Compared::Missing(format!(
            "{owner} has no folder '{title}' in the target"
        )));
    }
    Ok(Compared::Diffs(diffs.into_vec()))
}
