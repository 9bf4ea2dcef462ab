//! The portal's error bodies: `{"error":{"code","messageCode","message","details"}}` with
//! HTTP 200, exactly as real portals send them.

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub message_code: Option<&'static str>,
    pub message: String,
    pub details: Vec<String>,
}

impl ApiError {
    pub fn new(code: u16, message_code: Option<&'static str>, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message_code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: impl IntoIterator<Item = String>) -> Self {
        self.details = details.into_iter().collect();
        self
    }

    pub fn item_not_found() -> Self {
        ApiError::new(
            400,
            Some("CONT_0001"),
            "Item does not exist or is inaccessible.",
        )
    }

    pub fn user_not_found(username: &str) -> Self {
        ApiError::new(400, Some("COM_0004"), "User not found.").with_details([format!(
            "User '{username}' does not exist or is inaccessible."
        )])
    }

    pub fn group_not_found() -> Self {
        ApiError::new(
            400,
            Some("COM_0003"),
            "Group does not exist or is inaccessible.",
        )
    }

    pub fn folder_not_found() -> Self {
        ApiError::new(
            400,
            Some("CONT_0011"),
            "Folder does not exist or is inaccessible.",
        )
    }

    pub fn no_permission() -> Self {
        ApiError::new(
            403,
            Some("GWM_0003"),
            "You do not have permissions to access this resource or perform this operation.",
        )
    }

    pub fn token_required() -> Self {
        ApiError::new(499, Some("GWM_0003"), "Token Required")
            .with_details(["Token Required".to_owned()])
    }

    pub fn invalid_token() -> Self {
        ApiError::new(498, None, "Invalid token.")
    }

    pub fn invalid_url() -> Self {
        ApiError::new(400, Some("GWM_0002"), "Invalid URL").with_details(["Invalid URL".to_owned()])
    }

    pub fn method_not_supported() -> Self {
        ApiError::new(405, None, "Method not supported.")
            .with_details(["This operation is supported via POST only.".to_owned()])
    }

    pub fn missing(param: &str) -> Self {
        ApiError::new(400, None, format!("'{param}' must be specified."))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, None, message)
    }

    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code));
        if let Some(message_code) = self.message_code {
            error.insert("messageCode".into(), json!(message_code));
        }
        error.insert("message".into(), json!(self.message));
        error.insert("details".into(), json!(self.details));
        json!({ "error": error })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
