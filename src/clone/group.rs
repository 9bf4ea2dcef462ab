//! Groups. Identity in the target is the title (unique per organisation). The group is
//! created by the signed-in administrator and handed to its owner afterwards, as the
//! portal's own cloner does; access stays as in the source unless the notebook's widening
//! translation is asked for explicitly.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{existing_outcome, mapped, target_username, text, TaskError, TaskKind};
use crate::engine::Context;
use crate::settings::AccessTranslation;
use crate::store::Completion;

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupTask {
    pub group: Value,
    /// Set on the update tasks a sync enqueues for a group modified in the source.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_update: bool,
}

pub async fn run(ctx: &Context, job: GroupTask) -> Result<Completion, TaskError> {
    let source_id = text(&job.group, "id")
        .ok_or_else(|| TaskError::Permanent("source group has no id".into()))?;
    let source = ctx.source.group(&source_id).await?.unwrap_or(job.group);
    let title = text(&source, "title").unwrap_or_default();
    let intent = super::intent_key(TaskKind::Group, &source_id);

    if job.force_update {
        let mapped_copy = {
            let id = source_id.clone();
            ctx.store
                .call(move |s| s.target_id(TaskKind::Group.as_str(), &id))
                .await?
        };
        // By the id map, not the title: a renamed group is still the same group.
        if let Some(target_id) = mapped_copy {
            let (params, thumbnail) = properties(ctx, &source, &source_id).await?;
            ctx.target
                .update_group(&target_id, &params, thumbnail)
                .await?;
            return Ok(mapped(TaskKind::Group, &source_id, &target_id, "updated"));
        }
    }

    if let Some(existing) = find_by_title(ctx, &title).await? {
        let target_id = text(&existing, "id").unwrap_or_default();
        if !super::has_intent(ctx, &intent).await? {
            let what = format!("group '{title}'");
            if let Some(done) = existing_outcome(
                ctx.settings.existing.groups,
                &what,
                TaskKind::Group,
                &source_id,
                &target_id,
            )? {
                return Ok(done);
            }
            let (params, thumbnail) = properties(ctx, &source, &source_id).await?;
            ctx.target
                .update_group(&target_id, &params, thumbnail)
                .await?;
            return Ok(mapped(TaskKind::Group, &source_id, &target_id, "updated"));
        }
        settle_owner(ctx, &source, &existing, &target_id).await?;
        leave_unless_member(ctx, &source_id, &target_id).await?;
        return Ok(mapped(TaskKind::Group, &source_id, &target_id, "created"));
    }

    let (params, thumbnail) = properties(ctx, &source, &source_id).await?;
    super::set_intent(ctx, &intent).await?;
    let created = ctx.target.create_group(&params, thumbnail).await?;
    let target_id = text(&created, "id").ok_or_else(|| {
        TaskError::Transient(format!(
            "createGroup for '{title}' answered without a group id"
        ))
    })?;
    settle_owner(ctx, &source, &created, &target_id).await?;
    leave_unless_member(ctx, &source_id, &target_id).await?;
    Ok(mapped(TaskKind::Group, &source_id, &target_id, "created"))
}

/// The group with this exact title, if the target has one. Search lags writes, but a group
/// made by an interrupted attempt is also caught by createGroup's title check, which then
/// fails transiently until search sees it.
async fn find_by_title(ctx: &Context, title: &str) -> Result<Option<Value>, TaskError> {
    let org = ctx.target.info().id.clone();
    let query = format!("title:\"{}\" orgid:{org}", title.replace('"', " "));
    let found = ctx.target.search_groups(&query).await?;
    Ok(found
        .into_iter()
        .find(|group| text(group, "title").is_some_and(|t| t.eq_ignore_ascii_case(title))))
}

async fn properties(
    ctx: &Context,
    source: &Value,
    source_id: &str,
) -> Result<(Vec<(&'static str, String)>, Option<(String, bytes::Bytes)>), TaskError> {
    let mut params: Vec<(&'static str, String)> = Vec::new();
    for field in [
        "title",
        "description",
        "snippet",
        "phone",
        "sortField",
        "sortOrder",
    ] {
        if let Some(value) = text(source, field) {
            params.push((field, value));
        }
    }
    params.push(("tags", super::joined(source, "tags")));
    let access = text(source, "access").unwrap_or_else(|| "private".into());
    params.push(("access", translate_access(ctx, &access)));
    for flag in [
        "isInvitationOnly",
        "isViewOnly",
        "autoJoin",
        "leavingDisallowed",
        "hiddenMembers",
    ] {
        if let Some(value) = source.get(flag).and_then(Value::as_bool) {
            params.push((flag, value.to_string()));
        }
    }
    let capabilities = super::joined(source, "capabilities");
    if !capabilities.is_empty() {
        params.push(("capabilities", capabilities));
    }
    if let Some(membership) = text(source, "membershipAccess") {
        // Enterprise accepts only "org"; anything else would make createGroup fail.
        if ctx.target.info().is_online() || membership == "org" {
            params.push(("membershipAccess", membership));
        }
    }
    let thumbnail = match text(source, "thumbnail") {
        Some(name) => match ctx.source.group_thumbnail(source_id, &name).await? {
            Some(download) => Some((super::user::file_name(&name), download.bytes().await?)),
            None => None,
        },
        None => None,
    };
    Ok((params, thumbnail))
}

fn translate_access(ctx: &Context, access: &str) -> String {
    expected_access(
        ctx.settings.groups.access_translation,
        access,
        ctx.source.info().is_online(),
        ctx.target.info().is_online(),
    )
}

/// The access a copied group gets: the source's, unless the notebook's translation was asked
/// for explicitly (org → public on Enterprise, public → org from Enterprise to Online).
pub(crate) fn expected_access(
    translation: AccessTranslation,
    access: &str,
    source_online: bool,
    target_online: bool,
) -> String {
    match translation {
        AccessTranslation::Keep => access.to_string(),
        AccessTranslation::Notebook if access == "org" && !target_online => "public".into(),
        AccessTranslation::Notebook if access == "public" && target_online && !source_online => {
            "org".into()
        }
        AccessTranslation::Notebook => access.to_string(),
    }
}

/// Hands the group to its owner: the source owner's target account when it is migrated or
/// exists in the target, else the signed-in administrator keeps it.
async fn settle_owner(
    ctx: &Context,
    source: &Value,
    target_group: &Value,
    target_id: &str,
) -> Result<(), TaskError> {
    let Some(source_owner) = text(source, "owner") else {
        return Ok(());
    };
    let wanted = target_username(ctx, &source_owner);
    let current = text(target_group, "owner").unwrap_or_default();
    let me = ctx.target.info().username.clone();
    if !wanted.eq_ignore_ascii_case(&current) {
        if ctx.target.user(&wanted).await?.is_none() {
            tracing::warn!(group = target_id, owner = %wanted, "the group's owner does not exist in the target; the signed-in administrator keeps it");
            return Ok(());
        }
        ctx.target.reassign_group(target_id, &wanted).await?;
    }
    if wanted.eq_ignore_ascii_case(&me) {
        return Ok(());
    }
    // The administrator who created the group stays a manager after the hand-over; it leaves
    // unless it is a member in the source too, so the membership is the source's. Checked
    // even when the owner is already right: a crash may have come between the two steps.
    let source_members = ctx
        .source
        .group_members(&text(source, "id").unwrap_or_default())
        .await?;
    let stays = source_members
        .admins
        .iter()
        .chain(source_members.users.iter())
        .any(|u| target_username(ctx, u).eq_ignore_ascii_case(&me));
    let target_members = ctx.target.group_members(target_id).await?;
    let still_in = target_members
        .admins
        .iter()
        .chain(target_members.users.iter())
        .any(|u| u.eq_ignore_ascii_case(&me));
    if !stays && still_in {
        ctx.target
            .post(
                &format!("community/groups/{target_id}/removeUsers"),
                &[("users", me)],
            )
            .await?;
    }
    Ok(())
}

/// The signed-in administrator created the group, so the portal made it a member; once the
/// group is handed to its owner, the administrator leaves it (as the portal's own cloner
/// does) unless the source group has it as a member too. Checked against the target's
/// member list rather than remembered, so an attempt interrupted between the hand-over and
/// the leave finishes the job.
async fn leave_unless_member(
    ctx: &Context,
    source_id: &str,
    target_id: &str,
) -> Result<(), TaskError> {
    let signed_in = ctx.target.info().username.clone();
    let members = ctx.target.group_members(target_id).await?;
    let listed = |list: &[String]| list.iter().any(|u| u.eq_ignore_ascii_case(&signed_in));
    if members.owner.eq_ignore_ascii_case(&signed_in)
        || !(listed(&members.users) || listed(&members.admins))
    {
        return Ok(());
    }
    let source_members = ctx.source.group_members(source_id).await?;
    let wanted = std::iter::once(&source_members.owner)
        .chain(&source_members.admins)
        .chain(&source_members.users)
        .any(|u| target_username(ctx, u).eq_ignore_ascii_case(&signed_in));
    if wanted {
        return Ok(());
    }
    ctx.target
        .post(
            &format!("community/groups/{target_id}/removeUsers"),
            &[("users", signed_in)],
        )
        .await?;
    Ok(())
}
