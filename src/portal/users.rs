//! Users: search, read, create (invite on Online, createUser on Enterprise), update.

use serde_json::{json, Value};

use super::{expect_success, file_path, segment, Download, NewUser, Portal, PortalError};

impl Portal {
    /// `community/users`, every page.
    pub async fn search_users(&self, q: &str) -> Result<Vec<Value>, PortalError> {
        self.paged("community/users", &[("q", q.to_string())], "results")
            .await
    }

    /// `community/users/<username>`; `None` when the portal says the user does not exist.
    pub async fn user(&self, username: &str) -> Result<Option<Value>, PortalError> {
        self.get_existing(
            &format!("community/users/{}", segment(username)),
            "username",
        )
        .await
    }

    /// Creates the account: Enterprise through `portaladmin/security/users/createUser`,
    /// Online through `portals/self/invite` (with a password, the account exists at once).
    pub async fn create_user(&self, new: &NewUser) -> Result<(), PortalError> {
        if self.info().is_online() {
            self.invite_user(new).await
        } else {
            let mut params: Vec<(&str, String)> = vec![
                ("username", new.username.clone()),
                ("firstname", new.first_name.clone()),
                ("lastname", new.last_name.clone()),
                ("fullname", new.full_name.clone()),
                ("email", new.email.clone()),
                ("role", new.role.clone()),
                ("provider", new.provider.clone()),
            ];
            if let Some(password) = &new.password {
                params.push(("password", password.expose().to_string()));
            }
            if let Some(license) = &new.user_license_type {
                params.push(("userLicenseTypeId", license.clone()));
            }
            if let Some(idp_username) = &new.idp_username {
                params.push(("idpUsername", idp_username.clone()));
            }
            if let Some(description) = &new.description {
                params.push(("description", description.clone()));
            }
            let path = "security/users/createUser";
            let answer = self.admin_post(path, &params).await?;
            expect_success(self, &format!("portaladmin/{path}"), &answer)
        }
    }

    async fn invite_user(&self, new: &NewUser) -> Result<(), PortalError> {
        let mut invitation = json!({
            "username": new.username,
            "firstname": new.first_name,
            "lastname": new.last_name,
            "fullname": new.full_name,
            "email": new.email,
            "role": new.role,
            "userCreditAssignment": -1,
            "targetUserProvider": new.provider,
            "applyActUserDefaults": false,
        });
        if let Some(password) = &new.password {
            invitation["password"] = json!(password.expose());
        }
        if let Some(license) = &new.user_license_type {
            invitation["userLicenseType"] = json!(license);
        }
        if let Some(idp_username) = &new.idp_username {
            invitation["idpUsername"] = json!(idp_username);
        }
        let list = json!({"invitations": [invitation], "apps": [], "appBundles": []});
        let path = "portals/self/invite";
        let answer = self
            .post(path, &[("invitationList", list.to_string())])
            .await?;
        let refused = string_list(answer.get("notInvited"))
            .iter()
            .any(|u| u.eq_ignore_ascii_case(&new.username));
        if refused {
            // The portal gives no reason; the usual ones are a taken username or no licence.
            return Err(PortalError::Api {
                portal: self.core.portal.clone(),
                code: 0,
                message_code: None,
                message: format!("the portal did not invite '{}' (listed in notInvited)", new.username),
                details: vec!["the username may be taken elsewhere on ArcGIS Online, or no licence is available".into()],
                endpoint: path.into(),
            });
        }
        Ok(())
    }

    /// `community/users/<u>/update`, with the thumbnail as a file part when given.
    pub async fn update_user(
        &self,
        username: &str,
        params: &[(&str, String)],
        thumbnail: Option<(String, bytes::Bytes)>,
    ) -> Result<(), PortalError> {
        let path = format!("community/users/{}/update", segment(username));
        self.post_with_thumbnail(&path, params, thumbnail).await
    }

    pub async fn update_user_role(&self, username: &str, role: &str) -> Result<(), PortalError> {
        let path = "portals/self/updateuserrole";
        let answer = self
            .post(
                path,
                &[("user", username.to_string()), ("role", role.to_string())],
            )
            .await?;
        expect_success(self, path, &answer)
    }

    pub async fn update_user_license_type(
        &self,
        username: &str,
        license: &str,
    ) -> Result<(), PortalError> {
        let path = "portals/self/updateUserLicenseType";
        let answer = self
            .post(
                path,
                &[
                    ("users", username.to_string()),
                    ("userLicenseType", license.to_string()),
                ],
            )
            .await?;
        // Result fields are not documented reliably: `status` or `success` per user.
        let refused = answer
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|result| {
                let flag = result.get("status").or_else(|| result.get("success"));
                flag.and_then(Value::as_bool) == Some(false)
            });
        if refused {
            return Err(PortalError::Api {
                portal: self.core.portal.clone(),
                code: 0,
                message_code: None,
                message: format!("licence type '{license}' was not assigned to '{username}'"),
                details: answer
                    .get("results")
                    .map(|r| vec![r.to_string()])
                    .unwrap_or_default(),
                endpoint: path.into(),
            });
        }
        Ok(())
    }

    /// `community/users/<u>/info/<thumbnail>`; `None` when there is no such file.
    pub async fn user_thumbnail(
        &self,
        username: &str,
        thumbnail: &str,
    ) -> Result<Option<Download>, PortalError> {
        let path = format!(
            "community/users/{}/info/{}",
            segment(username),
            file_path(thumbnail)
        );
        missing_is_none(self.download(&path).await)
    }
}

/// A list of strings from a JSON array (anything else: empty).
pub(super) fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Thumbnails and info files that are not there are `None`, not failures.
pub(super) fn missing_is_none(
    result: Result<Option<Download>, PortalError>,
) -> Result<Option<Download>, PortalError> {
    match result {
        Err(error) if error.is_not_found() => Ok(None),
        other => other,
    }
}
