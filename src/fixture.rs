//! The portal fixture format (`tests/fixtures/sample-org/*.json`): the whole state of one
//! portal as one JSON document. The simulator loads it at start and dumps its live state in
//! the same shape at `GET /__sim/state`, so tests compare a migrated target with an expected
//! fixture using the same types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One portal: the organisation, every account, group, item and relationship.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fixture {
    pub portal: FixturePortal,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub items: Vec<Item>,
    pub relationships: Vec<Relationship>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FixturePortal {
    /// Organisation id. Every ArcGIS Enterprise portal reports `0123456789ABCDEF`, so the
    /// id alone never tells two portals apart.
    pub id: String,
    pub name: String,
    /// `singletenant` (Enterprise) or `multitenant` (ArcGIS Online).
    pub portal_mode: String,
    pub is_portal: bool,
    pub current_version: String,
    pub url_key: Option<String>,
    /// The initial administrator; a migration signs in with it and never copies it.
    pub default_admin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    /// What the simulator accepts at sign-in. A real portal never reveals it.
    pub password: String,
    pub full_name: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: String,
    pub role_id: Option<String>,
    pub user_license_type_id: String,
    pub provider: String,
    pub idp_username: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub access: String,
    pub preferred_view: Option<String>,
    pub culture: Option<String>,
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<String>,
    pub thumbnail: Option<Blob>,
    pub created: i64,
    pub modified: i64,
    pub folders: Vec<Folder>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Folder {
    pub id: String,
    pub title: String,
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub title: String,
    pub owner: String,
    pub description: Option<String>,
    pub snippet: Option<String>,
    pub tags: Vec<String>,
    pub phone: Option<String>,
    pub access: String,
    pub is_invitation_only: bool,
    pub sort_field: Option<String>,
    pub sort_order: Option<String>,
    pub is_view_only: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership_access: Option<String>,
    pub thumbnail: Option<Blob>,
    pub created: i64,
    pub modified: i64,
    /// Owner and managers; the owner is always listed.
    pub admins: Vec<String>,
    /// Every member, owner and admins included.
    pub users: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: String,
    pub owner: String,
    /// Title of one of the owner's folders; `None` is the root folder.
    pub folder: Option<String>,
    pub title: String,
    #[serde(rename = "type")]
    pub item_type: String,
    pub type_keywords: Vec<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub snippet: Option<String>,
    /// `[[xmin,ymin],[xmax,ymax]]` or `[]`.
    pub extent: Value,
    pub spatial_reference: Option<String>,
    pub name: Option<String>,
    pub access_information: Option<String>,
    pub license_info: Option<String>,
    pub culture: Option<String>,
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// `private`, `shared` (groups only), `org` or `public`.
    pub access: String,
    /// Ids of the groups the item is shared with.
    pub groups: Vec<String>,
    pub data: Option<ItemData>,
    pub thumbnail: Option<Blob>,
    pub metadata: Option<Metadata>,
    pub created: i64,
    pub modified: i64,
}

/// What `content/items/<id>/data` returns.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum ItemData {
    Json(Value),
    Text(String),
    File(Blob),
}

/// A file carried inline as base64.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Blob {
    pub name: String,
    pub base64: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metadata {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Relationship {
    #[serde(rename = "type")]
    pub relationship_type: String,
    pub origin: String,
    pub destination: String,
}

/// The sample organisation of the notebook this project replaces, built into the binary so
/// that `portal-migrate demo` needs no files.
pub mod sample_org {
    pub const SOURCE_JSON: &str = include_str!("../tests/fixtures/sample-org/source.json");
    pub const TARGET_JSON: &str = include_str!("../tests/fixtures/sample-org/target.json");

    pub fn source() -> super::Fixture {
        serde_json::from_str(SOURCE_JSON).expect("the built-in sample source fixture is valid")
    }

    pub fn target() -> super::Fixture {
        serde_json::from_str(TARGET_JSON).expect("the built-in sample target fixture is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_org_round_trips_through_the_types() {
        for text in [sample_org::SOURCE_JSON, sample_org::TARGET_JSON] {
            let parsed: Fixture = serde_json::from_str(text).unwrap();
            let again: Value = serde_json::to_value(&parsed).unwrap();
            let original: Value = serde_json::from_str(text).unwrap();
            assert_eq!(again, original, "dumping a loaded fixture must give the same JSON");
        }
        let source = sample_org::source();
        assert_eq!(source.items.len(), 49);
        assert_eq!(source.relationships.len(), 10);
    }
}
