//! The portal's live state. Loaded once from a fixture, dumped back into one on demand;
//! in between, item data is held decoded so that serving it costs no base64 work.

use super::files::{FileBody, SpooledPart};
use crate::fixture::{self, Blob, Fixture, FixturePortal, ItemData, Relationship};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Why a fixture cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("duplicate {kind} id {id}")]
    DuplicateId { kind: &'static str, id: String },
    #[error("duplicate username {0}")]
    DuplicateUsername(String),
    #[error("{what}: invalid base64: {source}")]
    Base64 {
        what: String,
        source: base64::DecodeError,
    },
    #[error("item {item}: owner {owner} is not a user of the portal")]
    UnknownOwner { item: String, owner: String },
    #[error("item {item}: owner {owner} has no folder titled {folder:?}")]
    UnknownFolder {
        item: String,
        owner: String,
        folder: String,
    },
}

pub struct SimUser {
    /// The fixture record; its `thumbnail` stays base64 (served rarely).
    pub user: fixture::User,
    /// When search endpoints start seeing this user (epoch ms).
    pub searchable_at: i64,
}

pub struct SimGroup {
    pub group: fixture::Group,
    pub searchable_at: i64,
}

/// Item data, decoded.
#[derive(Clone, Debug)]
pub enum Data {
    Json(Value),
    Text(String),
    File { name: String, body: FileBody },
}

impl Data {
    pub fn size(&self) -> i64 {
        match self {
            Data::Json(value) => value.to_string().len() as i64,
            Data::Text(text) => text.len() as i64,
            Data::File { body, .. } => i64::try_from(body.len()).unwrap_or(i64::MAX),
        }
    }

    /// What `addItem`/`update` store for a `text` parameter.
    pub fn from_text(text: &str) -> Data {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => Data::Json(value),
            Err(_) => Data::Text(text.to_owned()),
        }
    }
}

/// A multipart upload in progress (`addItem multipart=true` → `addPart`… → `commit`).
#[derive(Default)]
pub struct PendingUpload {
    pub filename: Option<String>,
    /// Kept on disk: a large upload must not live in the simulator's memory.
    pub parts: BTreeMap<u32, SpooledPart>,
}

pub struct SimItem {
    /// The fixture record; `data` is always `None` here (see [`SimItem::data`]).
    pub item: fixture::Item,
    pub data: Option<Data>,
    pub upload: Option<PendingUpload>,
    pub searchable_at: i64,
}

impl SimItem {
    pub fn status(&self) -> &'static str {
        if self.upload.is_some() {
            "partial"
        } else {
            "completed"
        }
    }
}

/// Item relationships in the order they were made, indexed by origin and by destination:
/// `relatedItems` is asked once per item during discovery, and a scan of every relationship
/// per request made discovery of a 100,000-item org quadratic.
#[derive(Default)]
pub struct Relationships {
    all: Vec<Relationship>,
    by_origin: HashMap<String, Vec<usize>>,
    by_destination: HashMap<String, Vec<usize>>,
}

impl Relationships {
    pub fn new(all: Vec<Relationship>) -> Relationships {
        let mut relationships = Relationships {
            all,
            ..Relationships::default()
        };
        relationships.reindex();
        relationships
    }

    fn reindex(&mut self) {
        self.by_origin.clear();
        self.by_destination.clear();
        for (index, r) in self.all.iter().enumerate() {
            self.by_origin
                .entry(r.origin.clone())
                .or_default()
                .push(index);
            self.by_destination
                .entry(r.destination.clone())
                .or_default()
                .push(index);
        }
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn to_vec(&self) -> Vec<Relationship> {
        self.all.clone()
    }

    pub fn contains(&self, wanted: &Relationship) -> bool {
        self.with_origin(&wanted.origin).any(|r| r == wanted)
    }

    pub fn push(&mut self, relationship: Relationship) {
        let index = self.all.len();
        self.by_origin
            .entry(relationship.origin.clone())
            .or_default()
            .push(index);
        self.by_destination
            .entry(relationship.destination.clone())
            .or_default()
            .push(index);
        self.all.push(relationship);
    }

    /// Removals are rare (deleting an item or a relationship): rebuilding the index is fine.
    pub fn retain(&mut self, keep: impl FnMut(&Relationship) -> bool) {
        self.all.retain(keep);
        self.reindex();
    }

    /// Relationships from `origin`, in the order they were made.
    pub fn with_origin<'a>(&'a self, origin: &str) -> impl Iterator<Item = &'a Relationship> {
        self.indexed(self.by_origin.get(origin))
    }

    /// Relationships to `destination`, in the order they were made.
    pub fn with_destination<'a>(
        &'a self,
        destination: &str,
    ) -> impl Iterator<Item = &'a Relationship> {
        self.indexed(self.by_destination.get(destination))
    }

    fn indexed<'a>(
        &'a self,
        indices: Option<&'a Vec<usize>>,
    ) -> impl Iterator<Item = &'a Relationship> {
        indices
            .into_iter()
            .flatten()
            .filter_map(|index| self.all.get(*index))
    }
}

pub struct Token {
    pub username: String,
    pub issued_ms: i64,
    pub expires_ms: i64,
}

pub struct State {
    pub portal: FixturePortal,
    /// Keyed by user id, in fixture order.
    pub users: IndexMap<String, SimUser>,
    /// Lowercased username → user id.
    pub usernames: HashMap<String, String>,
    pub groups: IndexMap<String, SimGroup>,
    pub items: IndexMap<String, SimItem>,
    pub relationships: Relationships,
    pub tokens: HashMap<String, Token>,
}

impl State {
    pub fn load(fixture: Fixture) -> Result<State, FixtureError> {
        let mut state = State {
            portal: fixture.portal,
            users: IndexMap::with_capacity(fixture.users.len()),
            usernames: HashMap::with_capacity(fixture.users.len()),
            groups: IndexMap::with_capacity(fixture.groups.len()),
            items: IndexMap::with_capacity(fixture.items.len()),
            relationships: Relationships::new(fixture.relationships),
            tokens: HashMap::new(),
        };
        for user in fixture.users {
            if state.usernames.contains_key(&user.username.to_lowercase()) {
                return Err(FixtureError::DuplicateUsername(user.username));
            }
            if state.users.contains_key(&user.id) {
                return Err(FixtureError::DuplicateId {
                    kind: "user",
                    id: user.id,
                });
            }
            if let Some(thumbnail) = &user.thumbnail {
                check_base64(thumbnail, || format!("user {} thumbnail", user.username))?;
            }
            state
                .usernames
                .insert(user.username.to_lowercase(), user.id.clone());
            state.users.insert(
                user.id.clone(),
                SimUser {
                    user,
                    searchable_at: 0,
                },
            );
        }
        for group in fixture.groups {
            if let Some(thumbnail) = &group.thumbnail {
                check_base64(thumbnail, || format!("group {} thumbnail", group.id))?;
            }
            let id = group.id.clone();
            let previous = state.groups.insert(
                id.clone(),
                SimGroup {
                    group,
                    searchable_at: 0,
                },
            );
            if previous.is_some() {
                return Err(FixtureError::DuplicateId { kind: "group", id });
            }
        }
        for mut item in fixture.items {
            let Some(owner) = state.user(&item.owner) else {
                return Err(FixtureError::UnknownOwner {
                    item: item.id,
                    owner: item.owner,
                });
            };
            if let Some(folder) = &item.folder {
                if !owner.folders.iter().any(|f| &f.title == folder) {
                    return Err(FixtureError::UnknownFolder {
                        item: item.id.clone(),
                        owner: item.owner.clone(),
                        folder: folder.clone(),
                    });
                }
            }
            if let Some(thumbnail) = &item.thumbnail {
                check_base64(thumbnail, || format!("item {} thumbnail", item.id))?;
            }
            let data = match item.data.take() {
                None => None,
                Some(ItemData::Json(value)) => Some(Data::Json(value)),
                Some(ItemData::Text(text)) => Some(Data::Text(text)),
                Some(ItemData::File(blob)) => {
                    let bytes =
                        STANDARD
                            .decode(&blob.base64)
                            .map_err(|source| FixtureError::Base64 {
                                what: format!("item {} data", item.id),
                                source,
                            })?;
                    Some(Data::File {
                        name: blob.name,
                        body: FileBody::Bytes(Bytes::from(bytes)),
                    })
                }
            };
            let id = item.id.clone();
            let previous = state.items.insert(
                id.clone(),
                SimItem {
                    item,
                    data,
                    upload: None,
                    searchable_at: 0,
                },
            );
            if previous.is_some() {
                return Err(FixtureError::DuplicateId { kind: "item", id });
            }
        }
        Ok(state)
    }

    /// Adds a file item of `len` bytes of [`super::files::pattern`] to `owner`'s root folder,
    /// made as it is served: a file of any size without the memory (or the base64 fixture)
    /// it would take. Returns the new item's id.
    pub fn add_generated_file(
        &mut self,
        owner: &str,
        title: &str,
        item_type: &str,
        file_name: &str,
        len: u64,
        seed: u64,
    ) -> Result<String, FixtureError> {
        let owner = self
            .user(owner)
            .map(|u| u.username.clone())
            .ok_or_else(|| FixtureError::UnknownOwner {
                item: title.to_owned(),
                owner: owner.to_owned(),
            })?;
        let id = new_id();
        let now = now_ms();
        let item = fixture::Item {
            id: id.clone(),
            owner,
            folder: None,
            title: title.to_owned(),
            item_type: item_type.to_owned(),
            type_keywords: vec!["Data".into()],
            description: None,
            tags: vec!["generated".into()],
            snippet: None,
            extent: Value::Array(vec![]),
            spatial_reference: None,
            name: Some(file_name.to_owned()),
            access_information: None,
            license_info: None,
            culture: None,
            url: None,
            properties: None,
            categories: vec![],
            access: "private".into(),
            groups: vec![],
            data: None,
            thumbnail: None,
            metadata: None,
            created: now,
            modified: now,
        };
        self.items.insert(
            id.clone(),
            SimItem {
                item,
                data: Some(Data::File {
                    name: file_name.to_owned(),
                    body: FileBody::Pattern { len, seed },
                }),
                upload: None,
                searchable_at: 0,
            },
        );
        Ok(id)
    }

    /// The whole state in the fixture format.
    pub fn snapshot(&self) -> Fixture {
        Fixture {
            portal: self.portal.clone(),
            users: self.users.values().map(|u| u.user.clone()).collect(),
            groups: self.groups.values().map(|g| g.group.clone()).collect(),
            items: self
                .items
                .values()
                .map(|sim| {
                    let mut item = sim.item.clone();
                    item.data = sim.data.as_ref().map(|data| match data {
                        Data::Json(value) => ItemData::Json(value.clone()),
                        Data::Text(text) => ItemData::Text(text.clone()),
                        Data::File { name, body } => ItemData::File(Blob {
                            name: name.clone(),
                            base64: STANDARD.encode(body.to_bytes()),
                        }),
                    });
                    item
                })
                .collect(),
            relationships: self.relationships.to_vec(),
        }
    }

    /// A user by username, case-insensitively.
    pub fn user(&self, username: &str) -> Option<&fixture::User> {
        let id = self.usernames.get(&username.to_lowercase())?;
        self.users.get(id).map(|u| &u.user)
    }

    pub fn user_mut(&mut self, username: &str) -> Option<&mut SimUser> {
        let id = self.usernames.get(&username.to_lowercase())?;
        self.users.get_mut(id)
    }

    /// A user by username or by id.
    pub fn user_by_name_or_id(&self, key: &str) -> Option<&fixture::User> {
        self.user(key)
            .or_else(|| self.users.get(key).map(|u| &u.user))
    }

    pub fn is_admin(&self, username: &str) -> bool {
        self.user(username)
            .map(|u| u.role == "org_admin" && u.role_id.is_none())
            .unwrap_or(false)
    }

    pub fn folder_id(&self, owner: &str, title: &str) -> Option<String> {
        self.user(owner)?
            .folders
            .iter()
            .find(|f| f.title == title)
            .map(|f| f.id.clone())
    }
}

fn check_base64(blob: &Blob, what: impl FnOnce() -> String) -> Result<(), FixtureError> {
    STANDARD
        .decode(&blob.base64)
        .map(|_| ())
        .map_err(|source| FixtureError::Base64 {
            what: what(),
            source,
        })
}

pub fn decode_blob(blob: &Blob) -> Bytes {
    // Validated at load and at every write, so a failure here cannot happen; an empty body
    // is the harmless answer if it ever did.
    Bytes::from(STANDARD.decode(&blob.base64).unwrap_or_default())
}

pub fn encode_blob(name: &str, bytes: &[u8]) -> Blob {
    Blob {
        name: name.to_owned(),
        base64: STANDARD.encode(bytes),
    }
}

/// Whether a username belongs to a list of usernames (usernames are case-insensitive).
pub fn contains_user(list: &[String], username: &str) -> bool {
    list.iter().any(|u| u.eq_ignore_ascii_case(username))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh 32-lowercase-hex id, like the portal's.
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
