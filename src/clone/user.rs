//! Users. The target username is the source one unless `users.rename` says otherwise. A
//! built-in account needs a password the source cannot give; by default each user gets a
//! strong random one, written to the credentials file (mode 0600) *before* the account is
//! created, so a crash can never leave an account whose password nobody knows.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{existing_outcome, mapped, target_username, text, TaskError, TaskKind};
use crate::engine::Context;
use crate::portal::{NewUser, Portal, PortalError};
use crate::secret::Secret;
use crate::settings::PasswordPolicy;
use crate::store::Completion;

#[derive(Debug, Serialize, Deserialize)]
pub struct UserTask {
    pub user: Value,
    /// Set on the update tasks a sync enqueues for a user modified in the source.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_update: bool,
}

pub async fn run(ctx: &Context, job: UserTask) -> Result<Completion, TaskError> {
    let source_username = text(&job.user, "username")
        .ok_or_else(|| TaskError::Permanent("source user has no username".into()))?;
    let username = target_username(ctx, &source_username);
    // Listings carry fewer fields than the user resource itself.
    let source = ctx.source.user(&source_username).await?.unwrap_or(job.user);
    let intent = super::intent_key(TaskKind::User, &source_username);

    if ctx.target.user(&username).await?.is_some() {
        if job.force_update {
            apply_properties(ctx, &source, &source_username, &username).await?;
            return Ok(mapped(
                TaskKind::User,
                &source_username,
                &username,
                "updated",
            ));
        }
        if !super::has_intent(ctx, &intent).await? {
            let what = format!("user {username}");
            if let Some(done) = existing_outcome(
                ctx.settings.existing.users,
                &what,
                TaskKind::User,
                &source_username,
                &username,
            )? {
                return Ok(done);
            }
            apply_properties(ctx, &source, &source_username, &username).await?;
            return Ok(mapped(
                TaskKind::User,
                &source_username,
                &username,
                "updated",
            ));
        }
        // An earlier attempt of this task created it and stopped before recording: finish.
        apply_properties(ctx, &source, &source_username, &username).await?;
        return Ok(mapped(
            TaskKind::User,
            &source_username,
            &username,
            "created",
        ));
    }

    let provider = text(&source, "provider").unwrap_or_else(|| "arcgis".into());
    let password = if provider == "arcgis" {
        match &ctx.settings.users.password_policy {
            PasswordPolicy::Generate => {
                let password = generate_password();
                append_credentials(ctx, &username, &password)?;
                Some(password)
            }
            PasswordPolicy::FromEnv(secret) => Some(secret.clone()),
            PasswordPolicy::Invite if ctx.target.info().is_online() => None,
            PasswordPolicy::Invite => {
                return Err(TaskError::Permanent(
                    "users.password_policy = \"invite\" needs an ArcGIS Online target; ArcGIS Enterprise creates built-in accounts with a password (use \"generate\" or \"env\")".into(),
                ))
            }
        }
    } else {
        None
    };
    super::set_intent(ctx, &intent).await?;
    let new_user = NewUser {
        username: username.clone(),
        password,
        first_name: text(&source, "firstName").unwrap_or_default(),
        last_name: text(&source, "lastName").unwrap_or_default(),
        full_name: text(&source, "fullName").unwrap_or_default(),
        email: text(&source, "email").unwrap_or_default(),
        role: target_role(ctx, &source).await?,
        user_license_type: text(&source, "userLicenseTypeId").map(|license| {
            ctx.settings
                .users
                .license_map
                .get(&license)
                .cloned()
                .unwrap_or(license)
        }),
        provider,
        idp_username: text(&source, "idpUsername"),
        description: text(&source, "description"),
    };
    ctx.target.create_user(&new_user).await?;
    if new_user.password.is_none()
        && new_user.provider == "arcgis"
        && ctx.target.user(&username).await?.is_none()
    {
        // An invitation without a password: the account exists once the user accepts it.
        let mut completion = mapped(TaskKind::User, &source_username, &username, "invited");
        completion.note = Some(format!(
            "{username} was invited; their profile and content can be migrated once they accept (then run `portal-migrate retry`)"
        ));
        return Ok(completion);
    }
    apply_properties(ctx, &source, &source_username, &username).await?;
    Ok(mapped(
        TaskKind::User,
        &source_username,
        &username,
        "created",
    ))
}

/// Custom roles of both portals: the source's by id, the target's by lowercase name.
#[derive(Debug, Default)]
pub struct RoleDirectory {
    source_names: HashMap<String, String>,
    target_ids: HashMap<String, String>,
}

impl RoleDirectory {
    pub(crate) async fn load(
        source: &Portal,
        target: &Portal,
    ) -> Result<RoleDirectory, PortalError> {
        let (source, target) = tokio::try_join!(
            source.paged("portals/self/roles", &[], "roles"),
            target.paged("portals/self/roles", &[], "roles"),
        )?;
        let pairs = |roles: &[Value]| -> Vec<(String, String)> {
            roles
                .iter()
                .filter_map(|r| Some((text(r, "id")?, text(r, "name")?)))
                .collect()
        };
        Ok(RoleDirectory {
            source_names: pairs(&source).into_iter().collect(),
            target_ids: pairs(&target)
                .into_iter()
                .map(|(id, name)| (name.to_lowercase(), id))
                .collect(),
        })
    }
}

const BUILT_IN_ROLE_IDS: [&str; 2] = ["iAAAAAAAAAAAAAAA", "iBBBBBBBBBBBBBBB"];

/// The role id of a user with a custom role, or `None` for built-in roles (which are the
/// same in every portal and need no directory).
pub(crate) fn custom_role_id(user: &Value) -> Option<String> {
    text(user, "roleId").filter(|id| !id.is_empty() && !BUILT_IN_ROLE_IDS.contains(&id.as_str()))
}

/// The role to give the copy. Built-in roles and the built-in Viewer / Data Editor ids are
/// the same everywhere; a custom role's id is not, so it is mapped by its name (or by
/// `users.role_map`, keyed by source role id or name). A custom role the target lacks is an
/// error for this user, never a silent promotion or demotion. `roles` is needed only when
/// [`custom_role_id`] is `Some`.
pub(crate) fn expected_role(
    map: &BTreeMap<String, String>,
    source: &Value,
    roles: Option<&RoleDirectory>,
) -> Result<String, String> {
    let base = text(source, "role").unwrap_or_else(|| "org_user".into());
    let Some(role_id) = text(source, "roleId").filter(|id| !id.is_empty()) else {
        return Ok(map.get(&base).cloned().unwrap_or(base));
    };
    if let Some(mapped) = map.get(&role_id) {
        return Ok(mapped.clone());
    }
    if BUILT_IN_ROLE_IDS.contains(&role_id.as_str()) {
        return Ok(role_id);
    }
    let name = roles
        .and_then(|roles| roles.source_names.get(&role_id))
        .ok_or_else(|| {
            format!("the user's custom role id {role_id} is not among the source portal's roles; map it with users.role_map")
        })?;
    if let Some(mapped) = map.get(name) {
        return Ok(mapped.clone());
    }
    roles
        .and_then(|roles| roles.target_ids.get(&name.to_lowercase()))
        .cloned()
        .ok_or_else(|| {
            format!("custom role '{name}' does not exist in the target portal; create a role of that name there or map it with users.role_map, then run `portal-migrate retry`")
        })
}

async fn target_role(ctx: &Context, source: &Value) -> Result<String, TaskError> {
    let roles = match custom_role_id(source) {
        Some(_) => Some(
            ctx.roles
                .get_or_try_init(|| RoleDirectory::load(&ctx.source, &ctx.target))
                .await?,
        ),
        None => None,
    };
    expected_role(&ctx.settings.users.role_map, source, roles).map_err(TaskError::Permanent)
}

/// Profile fields createUser/invite does not take. Idempotent: safe to repeat after a crash.
async fn apply_properties(
    ctx: &Context,
    source: &Value,
    source_username: &str,
    username: &str,
) -> Result<(), TaskError> {
    let mut params: Vec<(&str, String)> = Vec::new();
    // Names and email are only writable for built-in accounts; an identity provider owns
    // them for enterprise accounts.
    if text(source, "provider").as_deref().unwrap_or("arcgis") == "arcgis" {
        for (field, param) in [
            ("fullName", "fullname"),
            ("firstName", "firstname"),
            ("lastName", "lastname"),
            ("email", "email"),
        ] {
            if let Some(value) = text(source, field) {
                params.push((param, value));
            }
        }
    }
    for (field, param) in [
        ("description", "description"),
        ("access", "access"),
        ("preferredView", "preferredView"),
        ("culture", "culture"),
        ("region", "region"),
        ("units", "units"),
    ] {
        if let Some(value) = text(source, field) {
            params.push((param, value));
        }
    }
    params.push(("tags", super::joined(source, "tags")));
    let thumbnail = match text(source, "thumbnail") {
        Some(name) => match ctx.source.user_thumbnail(source_username, &name).await? {
            Some(download) => Some((file_name(&name), download.bytes().await?)),
            None => None,
        },
        None => None,
    };
    ctx.target.update_user(username, &params, thumbnail).await?;
    Ok(())
}

pub(crate) fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// 24 characters from letters and digits, with at least one of each class, which satisfies
/// the default password policies of ArcGIS Online and Enterprise.
fn generate_password() -> Secret {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    let mut rng = rand::rng();
    let mut pick = |set: &[u8]| set[rng.random_range(0..set.len())] as char;
    let mut password: String = (0..21)
        .map(|i| match i % 3 {
            0 => pick(LOWER),
            1 => pick(UPPER),
            _ => pick(DIGITS),
        })
        .collect();
    password.push(pick(LOWER));
    password.push(pick(UPPER));
    password.push(pick(DIGITS));
    Secret::new(password)
}

/// Appends `username,password` to the credentials file, creating it with mode 0600. The last
/// line for a username is the password in force.
fn append_credentials(ctx: &Context, username: &str, password: &Secret) -> Result<(), TaskError> {
    let path = ctx.settings.credentials_path();
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let fail = |e: std::io::Error| {
        TaskError::Permanent(format!(
            "cannot write the credentials file {}: {e}; check that its directory is writable",
            path.display()
        ))
    };
    let mut file = options.open(path).map_err(fail)?;
    let is_new = file.metadata().map(|m| m.len() == 0).unwrap_or(false);
    if is_new {
        file.write_all(b"username,password\n").map_err(fail)?;
    }
    file.write_all(format!("{username},{}\n", password.expose()).as_bytes())
        .map_err(fail)?;
    file.sync_all().map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_strong_and_different() {
        let a = generate_password();
        let b = generate_password();
        assert_ne!(a.expose(), b.expose());
        let p = a.expose();
        assert_eq!(p.len(), 24);
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
    }
}
