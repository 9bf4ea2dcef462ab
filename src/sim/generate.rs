//! PLACEHOLDER, to be replaced by the generator helper's module at merge time.
//!
//! Synthetic orgs from a spec string such as
//! `seed=7,users=120,groups=5,items-per-folder=3,big-folder-items=150`: an `admin`, N users
//! with one folder each holding `items-per-folder` CSV items, groups owned by the admin with
//! every user as a member, and optionally one folder of `big-folder-items` items.

use crate::fixture::{Blob, Fixture, FixturePortal, Folder, Group, Item, ItemData, User};
use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSpec {
    pub seed: u64,
    pub users: usize,
    pub groups: usize,
    pub items_per_folder: usize,
    pub big_folder_items: usize,
    pub file_bytes: usize,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        GenerateSpec {
            seed: 1,
            users: 10,
            groups: 2,
            items_per_folder: 2,
            big_folder_items: 0,
            file_bytes: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid generate spec {0:?}: expected key=number pairs (seed, users, groups, items-per-folder, big-folder-items, file-bytes)")]
pub struct GenerateSpecError(pub String);

impl FromStr for GenerateSpec {
    type Err = GenerateSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = GenerateSpec::default();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| GenerateSpecError(s.to_owned()))?;
            let number: u64 = value
                .trim()
                .parse()
                .map_err(|_| GenerateSpecError(s.to_owned()))?;
            match key.trim() {
                "seed" => spec.seed = number,
                "users" => spec.users = number as usize,
                "groups" => spec.groups = number as usize,
                "items-per-folder" => spec.items_per_folder = number as usize,
                "big-folder-items" => spec.big_folder_items = number as usize,
                "file-bytes" => spec.file_bytes = number as usize,
                _ => return Err(GenerateSpecError(s.to_owned())),
            }
        }
        Ok(spec)
    }
}

fn id(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.random();
    hex::encode(bytes)
}

fn user(rng: &mut StdRng, username: &str, role: &str, password: &str) -> User {
    User {
        id: id(rng),
        username: username.to_owned(),
        password: password.to_owned(),
        full_name: format!("User {username}"),
        first_name: "User".into(),
        last_name: username.to_owned(),
        email: format!("{username}@example.com"),
        role: role.to_owned(),
        role_id: None,
        user_license_type_id: "creatorUT".into(),
        provider: "arcgis".into(),
        idp_username: None,
        description: None,
        tags: vec![],
        access: "org".into(),
        preferred_view: None,
        culture: Some("en".into()),
        region: Some("US".into()),
        units: None,
        thumbnail: None,
        created: 1_600_000_000_000,
        modified: 1_600_000_000_000,
        folders: vec![],
    }
}

fn csv_item(rng: &mut StdRng, owner: &str, folder: &str, n: usize, bytes: usize) -> Item {
    let mut content = String::from("id,value\n");
    while content.len() < bytes {
        content.push_str(&format!("{},{}\n", content.len(), rng.random::<u32>()));
    }
    content.truncate(bytes.max(9));
    let name = format!("{folder}_{n}.csv");
    Item {
        id: id(rng),
        owner: owner.to_owned(),
        folder: Some(folder.to_owned()),
        title: format!("{folder} item {n}"),
        item_type: "CSV".into(),
        type_keywords: vec!["CSV".into()],
        description: None,
        tags: vec!["generated".into()],
        snippet: None,
        extent: serde_json::json!([]),
        spatial_reference: None,
        name: Some(name.clone()),
        access_information: None,
        license_info: None,
        culture: Some("en-us".into()),
        url: None,
        properties: None,
        categories: vec![],
        access: "private".into(),
        groups: vec![],
        data: Some(ItemData::File(Blob {
            name,
            base64: base64::engine::general_purpose::STANDARD.encode(content.as_bytes()),
        })),
        thumbnail: None,
        metadata: None,
        created: 1_600_000_000_000,
        modified: 1_600_000_000_000,
    }
}

pub fn generate(spec: &GenerateSpec) -> Fixture {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut users = vec![user(&mut rng, "admin", "org_admin", "admin-sample-pw")];
    let mut items = Vec::new();
    for index in 0..spec.users {
        let username = format!("user{index:05}");
        let mut u = user(&mut rng, &username, "org_user", "user-sample-pw");
        let folder = format!("folder_{index}");
        u.folders.push(Folder {
            id: id(&mut rng),
            title: folder.clone(),
            created: 1_600_000_000_000,
        });
        for n in 0..spec.items_per_folder {
            items.push(csv_item(&mut rng, &username, &folder, n, spec.file_bytes));
        }
        users.push(u);
    }
    if spec.big_folder_items > 0 {
        let folder = "big_folder".to_owned();
        users[0].folders.push(Folder {
            id: id(&mut rng),
            title: folder.clone(),
            created: 1_600_000_000_000,
        });
        for n in 0..spec.big_folder_items {
            items.push(csv_item(&mut rng, "admin", &folder, n, spec.file_bytes));
        }
    }
    let members: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
    let groups = (0..spec.groups)
        .map(|index| Group {
            id: id(&mut rng),
            title: format!("Group {index}"),
            owner: "admin".into(),
            description: None,
            snippet: None,
            tags: vec!["generated".into()],
            phone: None,
            access: "org".into(),
            is_invitation_only: false,
            sort_field: Some("title".into()),
            sort_order: Some("asc".into()),
            is_view_only: false,
            capabilities: vec![],
            membership_access: None,
            thumbnail: None,
            created: 1_600_000_000_000,
            modified: 1_600_000_000_000,
            admins: vec!["admin".into()],
            users: members.clone(),
        })
        .collect();
    Fixture {
        portal: FixturePortal {
            id: "0123456789ABCDEF".into(),
            name: format!("Generated Portal {}", spec.seed),
            portal_mode: "singletenant".into(),
            is_portal: true,
            current_version: "11.3".into(),
            url_key: None,
            default_admin: "admin".into(),
        },
        users,
        groups,
        items,
        relationships: vec![],
    }
}
