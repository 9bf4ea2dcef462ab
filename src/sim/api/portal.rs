//! Discovery (`info`, REST root, `portals/self`), sign-in (`generateToken`) and the
//! portal-wide lists (`roles`, `userLicenseTypes`).

use super::{Ctx, Reply};
use crate::sim::error::{ApiError, ApiResult};
use crate::sim::faults::Faults;
use crate::sim::render::{user_json, UserView};
use crate::sim::state::{State, Token};
use serde_json::{json, Value};

/// Tokens default to 60 minutes and are capped at two weeks, as on ArcGIS Online.
const DEFAULT_TOKEN_MINUTES: i64 = 60;
const MAX_TOKEN_MINUTES: i64 = 20_160;

pub fn info(ctx: &Ctx, state: &State) -> ApiResult<Reply> {
    Ok(Reply::Json(json!({
        "owningSystemUrl": ctx.base_url,
        "authInfo": {
            "tokenServicesUrl": format!("{}/sharing/rest/generateToken", ctx.base_url),
            "isTokenBasedSecurity": true,
        },
        "fullVersion": state.portal.current_version,
        "currentVersion": state.portal.current_version,
    })))
}

pub fn rest_root(state: &State) -> ApiResult<Reply> {
    Ok(Reply::Json(json!({
        "currentVersion": state.portal.current_version,
    })))
}

/// Who a token belongs to: `Ok(None)` without a token, 498 for an unknown or expired one.
pub fn authenticate(
    state: &State,
    faults: &Faults,
    token: Option<&str>,
    now: i64,
) -> ApiResult<Option<(String, bool)>> {
    let Some(token) = token else {
        return Ok(None);
    };
    let record = state
        .tokens
        .get(token)
        .ok_or_else(ApiError::invalid_token)?;
    let ttl_end = faults
        .token_ttl_secs
        .map(|ttl| record.issued_ms + (ttl as i64) * 1000)
        .unwrap_or(i64::MAX);
    if now >= record.expires_ms || now >= ttl_end {
        return Err(ApiError::invalid_token());
    }
    let user = state
        .user(&record.username)
        .ok_or_else(ApiError::invalid_token)?;
    let is_admin = state.is_admin(&user.username);
    Ok(Some((user.username.clone(), is_admin)))
}

pub fn generate_token(ctx: &Ctx, state: &mut State) -> ApiResult<Reply> {
    let invalid = || {
        ApiError::new(400, None, "Unable to generate token.")
            .with_details(["Invalid username or password.".to_owned()])
    };
    let username = ctx.req.get("username").ok_or_else(invalid)?;
    let password = ctx.req.raw("password").ok_or_else(invalid)?;
    let user = state.user(username).ok_or_else(invalid)?;
    if user.password != password || user.provider != "arcgis" {
        return Err(invalid());
    }
    let username = user.username.clone();
    let minutes = ctx
        .req
        .get("expiration")
        .and_then(|m| m.parse::<i64>().ok())
        .filter(|m| *m > 0)
        .unwrap_or(DEFAULT_TOKEN_MINUTES)
        .min(MAX_TOKEN_MINUTES);
    let mut expires = ctx.now + minutes * 60_000;
    if let Some(ttl) = ctx.faults.token_ttl_secs {
        expires = expires.min(ctx.now + ttl as i64 * 1000);
    }
    let token = format!(
        "{}{}",
        crate::sim::state::new_id(),
        crate::sim::state::new_id()
    );
    state.tokens.insert(
        token.clone(),
        Token {
            username,
            issued_ms: ctx.now,
            expires_ms: expires,
        },
    );
    Ok(Reply::Json(json!({
        "token": token,
        "expires": expires,
        "ssl": ctx.base_url.starts_with("https"),
    })))
}

pub fn portal_self(ctx: &Ctx, state: &State) -> ApiResult<Reply> {
    let portal = &state.portal;
    let online = portal.portal_mode == "multitenant";
    let host = ctx
        .base_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1");
    let user = match ctx.caller.as_deref().and_then(|c| state.user(c)) {
        Some(user) => user_json(state, user, UserView::Full),
        None => Value::Null,
    };
    let mut out = json!({
        "access": "private",
        "allSSL": ctx.base_url.starts_with("https"),
        "canSearchPublic": true,
        "canSharePublic": true,
        "commentsEnabled": true,
        "created": 1_490_000_000_000i64,
        "culture": "en",
        "customBaseUrl": if online { json!("maps.arcgis.com") } else { Value::Null },
        "defaultBasemap": {},
        "defaultExtent": {
            "type": "extent",
            "xmin": -20037508.342789244, "ymin": -20037508.342789244,
            "xmax": 20037508.342789244, "ymax": 20037508.342789244,
            "spatialReference": {"wkid": 102100}
        },
        "defaultUserCreditAssignment": -1,
        "description": null,
        "helperServices": {},
        "id": portal.id,
        "isPortal": portal.is_portal,
        "maxTokenExpirationMinutes": MAX_TOKEN_MINUTES,
        "metadataEditable": true,
        "metadataFormats": ["iso19139"],
        "modified": 1_490_000_000_000i64,
        "name": portal.name,
        "portalHostname": format!("{host}/portal"),
        "portalMode": portal.portal_mode,
        "portalName": if online { "ArcGIS Online" } else { "ArcGIS Enterprise" },
        "region": "US",
        "subscriptionInfo": {},
        "supportsHostedServices": true,
        "supportsOAuth": true,
        "currentVersion": portal.current_version,
        "units": "english",
        "urlKey": portal.url_key,
        "useStandardizedQuery": true,
        "httpPort": 80,
        "httpsPort": 443,
        "contacts": [portal.default_admin],
        "user": user,
        "appInfo": {},
    });
    if ctx.caller.is_none() {
        if let Some(object) = out.as_object_mut() {
            object.remove("user");
        }
    }
    Ok(Reply::Json(out))
}

pub fn roles(ctx: &Ctx) -> ApiResult<Reply> {
    ctx.require_user()?;
    // Fixtures carry no custom roles, so the list is always empty.
    Ok(Reply::Json(json!({
        "total": 0, "start": 1, "num": 0, "nextStart": -1, "roles": [],
    })))
}

pub fn user_license_types(ctx: &Ctx) -> ApiResult<Reply> {
    ctx.require_user()?;
    let types: Vec<Value> = [
        ("creatorUT", "Creator"),
        ("editorUT", "Editor"),
        ("viewerUT", "Viewer"),
        ("fieldWorkerUT", "Mobile Worker"),
        ("GISProfessionalBasicUT", "GIS Professional Basic"),
        ("GISProfessionalStdUT", "GIS Professional Standard"),
        ("GISProfessionalAdvUT", "GIS Professional Advanced"),
    ]
    .iter()
    .map(|(id, name)| json!({"id": id, "name": name}))
    .collect();
    Ok(Reply::Json(json!({
        "total": types.len(), "start": 1, "num": types.len(), "nextStart": -1,
        "userLicenseTypes": types,
    })))
}
