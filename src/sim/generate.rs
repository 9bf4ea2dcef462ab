//! Deterministic synthetic organisations for scale tests and benchmarks: the same
//! [`GenerateSpec`] always gives the byte-identical [`Fixture`], so a benchmark or a failing
//! test can be rerun exactly from the spec string alone.
//!
//! The generated org has the sample org's shape: a default admin `admin`, four `esri_*` system
//! accounts, esri-owned system groups and a `Basemaps` group (which a migration filters out
//! with `!esri_ & !admin` and `!owner:esri_* & !Basemaps`), then ordinary users with folders
//! and a mix of content whose cross references exercise everything a cloner must remap: Web
//! Maps pointing at other users' Feature Services (nested group layers, tables, a vector-tile
//! basemap whose `styleUrl` embeds an item id), apps whose `url` embeds their own id,
//! dashboards, relationships and group sharing.
//!
//! Randomness comes from a small SplitMix64 of our own rather than `rand`, whose `StdRng`
//! algorithm may change between releases and would silently change every generated org.
//! Each concern (ids, timestamps, layout, each item's file content) draws from its own
//! stream, so, for instance, changing `file_bytes` changes file contents and nothing else.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use serde_json::{json, Value};

use crate::fixture::{
    Blob, Fixture, FixturePortal, Folder, Group, Item, ItemData, Metadata, Relationship, Role, User,
};

/// What to generate. Build it with [`Default`] and struct update syntax, or parse it from a
/// `key=value,key=value` string (see [`SPEC_KEYS`]).
#[derive(Clone, PartialEq)]
pub struct GenerateSpec {
    pub seed: u64,
    /// Ordinary users, besides `admin` and the four `esri_*` system accounts.
    pub users: usize,
    /// Ordinary groups, besides the system groups and `Basemaps`.
    pub groups: usize,
    pub folders_per_user: usize,
    /// Items in each folder of each ordinary user; the root counts as a folder.
    pub items_per_folder: usize,
    /// Approximate size of each CSV, GeoJSON and PDF file (never empty, even at 0).
    pub file_bytes: usize,
    /// The first ordinary user gets one more folder, `bulk_import`, holding this many extra
    /// items (0 = no such folder). Exercises paging past 100 inside one folder.
    pub big_folder_items: usize,
    /// Ordinary users in each ordinary group, besides the owner (capped at `users`).
    pub members_per_group: usize,
    /// `singletenant` (Enterprise) or `multitenant` (Online); anything else is treated as
    /// `singletenant` by [`generate`] (the string parser refuses it).
    pub portal_mode: String,
    /// Password of `admin`.
    pub admin_password: String,
    /// Password of every other built-in (`arcgis` provider) account.
    pub user_password: String,
    /// Give some `org_user` accounts a custom role (`roleId` of 16 characters).
    pub custom_roles: bool,
    /// How many ordinary users (the last ones) sign in through an identity provider:
    /// provider `enterprise`, an `idpUsername` and no password.
    pub enterprise_users: usize,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        GenerateSpec {
            seed: 1,
            users: 5,
            groups: 2,
            folders_per_user: 1,
            items_per_folder: 2,
            file_bytes: 1024,
            big_folder_items: 0,
            members_per_group: 3,
            portal_mode: "singletenant".into(),
            // The sample org's passwords, so tests sign in to either with the same values.
            admin_password: "admin-sample-pw".into(),
            user_password: "user-sample-pw".into(),
            custom_roles: false,
            enterprise_users: 0,
        }
    }
}

/// Hand-written so that passwords never reach a log line through `{:?}`.
impl fmt::Debug for GenerateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateSpec")
            .field("seed", &self.seed)
            .field("users", &self.users)
            .field("groups", &self.groups)
            .field("folders_per_user", &self.folders_per_user)
            .field("items_per_folder", &self.items_per_folder)
            .field("file_bytes", &self.file_bytes)
            .field("big_folder_items", &self.big_folder_items)
            .field("members_per_group", &self.members_per_group)
            .field("portal_mode", &self.portal_mode)
            .field("admin_password", &"***")
            .field("user_password", &"***")
            .field("custom_roles", &self.custom_roles)
            .field("enterprise_users", &self.enterprise_users)
            .finish()
    }
}

/// Keys accepted by `GenerateSpec::from_str` (underscores may replace hyphens).
pub const SPEC_KEYS: &[&str] = &[
    "seed",
    "users",
    "groups",
    "folders-per-user",
    "items-per-folder",
    "file-bytes",
    "big-folder-items",
    "members-per-group",
    "mode",
    "admin-password",
    "user-password",
    "custom-roles",
    "enterprise-users",
];

/// Why a spec string was refused. Messages never repeat a password.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum SpecError {
    #[error("unknown generator key '{key}'; valid keys are: {valid}")]
    UnknownKey { key: String, valid: String },
    #[error("element {position} of the generator spec is not key=value")]
    NotKeyValue { position: usize },
    #[error("generator key '{key}' has value '{value}', which is not {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("generator key '{key}' must not be empty")]
    Empty { key: String },
}

impl FromStr for GenerateSpec {
    type Err = SpecError;

    /// `seed=7,users=120,groups=5,folders-per-user=2,items-per-folder=3,file-bytes=4096,
    /// big-folder-items=150,members-per-group=10,mode=multitenant`; keys left out keep their
    /// [`Default`]. Passwords cannot contain commas.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut spec = GenerateSpec::default();
        for (index, part) in text.split(',').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(SpecError::NotKeyValue {
                    position: index + 1,
                });
            };
            let key = key.trim().to_lowercase().replace('_', "-");
            let value = value.trim();
            match key.as_str() {
                "seed" => spec.seed = number(&key, value)?,
                "users" => spec.users = number(&key, value)?,
                "groups" => spec.groups = number(&key, value)?,
                "folders-per-user" => spec.folders_per_user = number(&key, value)?,
                "items-per-folder" => spec.items_per_folder = number(&key, value)?,
                "file-bytes" => spec.file_bytes = number(&key, value)?,
                "big-folder-items" => spec.big_folder_items = number(&key, value)?,
                "members-per-group" => spec.members_per_group = number(&key, value)?,
                "enterprise-users" => spec.enterprise_users = number(&key, value)?,
                "mode" => match value {
                    "singletenant" | "multitenant" => spec.portal_mode = value.into(),
                    _ => {
                        return Err(SpecError::BadValue {
                            key,
                            value: value.into(),
                            expected: "singletenant or multitenant",
                        })
                    }
                },
                "admin-password" | "user-password" => {
                    if value.is_empty() {
                        return Err(SpecError::Empty { key });
                    }
                    if key == "admin-password" {
                        spec.admin_password = value.into();
                    } else {
                        spec.user_password = value.into();
                    }
                }
                "custom-roles" => {
                    spec.custom_roles = match value {
                        "true" | "yes" | "1" => true,
                        "false" | "no" | "0" => false,
                        _ => {
                            return Err(SpecError::BadValue {
                                key,
                                value: value.into(),
                                expected: "true or false",
                            })
                        }
                    }
                }
                _ => {
                    return Err(SpecError::UnknownKey {
                        key,
                        valid: SPEC_KEYS.join(", "),
                    })
                }
            }
        }
        Ok(spec)
    }
}

fn number<T: FromStr>(key: &str, value: &str) -> Result<T, SpecError> {
    value.parse().map_err(|_| SpecError::BadValue {
        key: key.into(),
        value: value.into(),
        expected: "a non-negative whole number",
    })
}

/// The whole source organisation the spec describes.
pub fn generate(spec: &GenerateSpec) -> Fixture {
    Generator::new(spec).build()
}

/// An empty organisation to migrate into: the same portal mode, and only its default admin
/// (`admin`, with the spec's admin password). Ids come from their own stream, so they do not
/// collide with the source's.
pub fn generate_target(spec: &GenerateSpec) -> Fixture {
    let mut generator = Generator::new(spec);
    generator.ids = IdSource::new(spec.seed, Stream::TargetIds);
    let mut portal = generator.portal(Stream::TargetIds);
    portal.name = format!("Generated Target {}", spec.seed);
    let admin = generator.admin();
    Fixture {
        portal,
        users: vec![admin],
        groups: vec![],
        items: vec![],
        relationships: vec![],
    }
}

/// How many objects a migration of this org handles: users, groups, folders, items, group
/// memberships, item shares to groups and relationships. Exact, not an estimate: it
/// generates the org with tiny files (file sizes change nothing else) and counts.
pub fn estimated_objects(spec: &GenerateSpec) -> usize {
    let small = GenerateSpec {
        file_bytes: 0,
        ..spec.clone()
    };
    count_objects(&generate(&small))
}

fn count_objects(fixture: &Fixture) -> usize {
    let folders: usize = fixture.users.iter().map(|u| u.folders.len()).sum();
    let memberships: usize = fixture.groups.iter().map(|g| g.users.len()).sum();
    let shares: usize = fixture.items.iter().map(|i| i.groups.len()).sum();
    fixture.users.len()
        + fixture.groups.len()
        + folders
        + fixture.items.len()
        + memberships
        + shares
        + fixture.relationships.len()
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever.
struct Rng(u64);

/// Independent random streams, so one concern's draws never shift another's.
#[derive(Clone, Copy)]
enum Stream {
    Ids = 1,
    Clock = 2,
    Layout = 3,
    Content = 4,
    TargetIds = 5,
}

impl Rng {
    fn new(seed: u64, stream: Stream, index: u64) -> Rng {
        let mut rng =
            Rng(seed ^ ((stream as u64) << 56) ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
        // Discard one output so nearby seeds do not start from nearby states.
        rng.next_u64();
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    fn percent(&mut self) -> usize {
        self.below(100)
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> Option<T> {
        if choices.is_empty() {
            None
        } else {
            Some(choices[self.below(choices.len())])
        }
    }

    /// Up to `n` distinct elements, in a random order.
    fn sample<T: Copy>(&mut self, choices: &[T], n: usize) -> Vec<T> {
        if n * 8 < choices.len() {
            // Few from many (two layers out of thousands of services): drawing positions and
            // redrawing repeats avoids copying the whole pool for every web map.
            let mut taken: Vec<usize> = Vec::with_capacity(n);
            while taken.len() < n {
                let at = self.below(choices.len());
                if !taken.contains(&at) {
                    taken.push(at);
                }
            }
            return taken.into_iter().map(|at| choices[at]).collect();
        }
        let mut pool = choices.to_vec();
        let n = n.min(pool.len());
        for i in 0..n {
            let j = i + self.below(pool.len() - i);
            pool.swap(i, j);
        }
        pool.truncate(n);
        pool
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        low + (high - low) * unit
    }

    fn alphanumeric(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| CHARS[self.below(CHARS.len())] as char)
            .collect()
    }
}

/// 32-hex ids, unique across users, groups, folders and items as the format requires.
struct IdSource {
    rng: Rng,
    issued: HashSet<String>,
}

impl IdSource {
    fn new(seed: u64, stream: Stream) -> IdSource {
        IdSource {
            rng: Rng::new(seed, stream, 0),
            issued: HashSet::new(),
        }
    }

    fn fresh(&mut self) -> String {
        loop {
            let id = format!("{:016x}{:016x}", self.rng.next_u64(), self.rng.next_u64());
            if self.issued.insert(id.clone()) {
                return id;
            }
        }
    }
}

/// Creation times that move forward from a seed-dependent start in 2017–2022. Steps average
/// five minutes, so even a million objects stay well before 2100 (the format's limit).
struct Clock {
    rng: Rng,
    now: i64,
}

impl Clock {
    const DAY_MS: i64 = 86_400_000;

    fn new(seed: u64) -> Clock {
        let start_of_2017 = 1_483_228_800_000;
        Clock {
            rng: Rng::new(seed, Stream::Clock, 0),
            now: start_of_2017 + (seed % 2000) as i64 * Clock::DAY_MS,
        }
    }

    fn tick(&mut self) -> i64 {
        self.now += 1_000 + self.rng.below(600_000) as i64;
        self.now
    }

    /// A creation time and a modification time at or after it.
    fn created_modified(&mut self) -> (i64, i64) {
        let created = self.tick();
        (
            created,
            created + self.rng.below(30 * Clock::DAY_MS as usize) as i64,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary. Nothing an ordinary user or group says may start a word with "admin", "esri"
// or "basemaps": the seed's filters must keep every ordinary account and group.

const FIRST_PARTS: &[&str] = &[
    "brown",
    "davis",
    "johnson",
    "jones",
    "miller",
    "moore",
    "smith",
    "taylor",
    "williams",
    "wilson",
    "anderson",
    "thomas",
    "jackson",
    "white",
    "harris",
    "martin",
    "thompson",
    "garcia",
    "martinez",
    "robinson",
    "clark",
    "rodriguez",
    "lewis",
    "lee",
    "walker",
    "hall",
    "allen",
    "young",
    "hernandez",
    "king",
    "wright",
    "lopez",
    "hill",
    "scott",
    "green",
    "baker",
    "gonzalez",
    "nelson",
    "carter",
    "mitchell",
];
const SECOND_PARTS: &[&str] = &[
    "rogers",
    "reed",
    "stewart",
    "morris",
    "cook",
    "bell",
    "collins",
    "murphy",
    "sanchez",
    "morgan",
    "cooper",
    "peterson",
    "bailey",
    "rivera",
    "richardson",
    "cox",
    "howard",
    "ward",
    "torres",
    "gray",
    "ramirez",
    "james",
    "watson",
    "brooks",
    "kelly",
    "sanders",
    "price",
    "bennett",
    "wood",
    "barnes",
    "ross",
    "henderson",
    "coleman",
    "jenkins",
    "perry",
    "powell",
    "long",
    "patterson",
    "hughes",
    "flores",
];
/// Coprime with FIRST_PARTS.len() * SECOND_PARTS.len() (1600), so consecutive users walk
/// through every name pair before any repeats; being 40 + 1, it changes both name parts from
/// one user to the next.
const NAME_STRIDE: usize = 41;
/// Roles by user position: 10% admins, 30% publishers, the rest users, mixed even in a
/// five-user org.
const ROLE_CYCLE: &[&str] = &[
    "org_user",
    "org_publisher",
    "org_user",
    "org_admin",
    "org_publisher",
    "org_user",
    "org_user",
    "org_publisher",
    "org_user",
    "org_user",
];

const DEPARTMENTS: &[&str] = &[
    "field operations",
    "planning",
    "billing",
    "compliance",
    "engineering",
    "public works",
    "customer service",
    "demographics",
    "water",
    "transportation",
];
const GROUP_TITLES: &[&str] = &[
    "Central Services",
    "Compliance",
    "Field Operations",
    "Public Works",
    "Planning",
    "Emergency Management",
    "Water Utilities",
    "Transportation",
    "Parks and Recreation",
    "Finance and Billing",
    "Community Outreach",
    "GIS Team",
    "Open Data",
    "Engineering",
    "Environmental Services",
];
const FOLDER_THEMES: &[&str] = &[
    "webmaps",
    "data",
    "apps",
    "documents",
    "dashboards",
    "archive",
    "projects",
    "shared",
];
const BIG_FOLDER: &str = "bulk_import";
const TOPICS: &[&str] = &[
    "Hydrants",
    "Parcels",
    "Road closures",
    "Service calls",
    "Bus stops",
    "Street lights",
    "Storm drains",
    "Building permits",
    "Trail heads",
    "Parks",
    "Schools",
    "Zoning",
    "Traffic counts",
    "Tree inventory",
    "Water mains",
];
const STATUSES: &[&str] = &["open", "closed", "pending", "inspected"];

struct State {
    code: &'static str,
    name: &'static str,
    /// xmin, ymin, xmax, ymax in WGS84.
    bbox: [f64; 4],
}

const STATES: &[State] = &[
    State {
        code: "AR",
        name: "Arkansas",
        bbox: [-94.62, 33.0, -89.64, 36.5],
    },
    State {
        code: "AZ",
        name: "Arizona",
        bbox: [-114.82, 31.33, -109.05, 37.0],
    },
    State {
        code: "CO",
        name: "Colorado",
        bbox: [-109.06, 36.99, -102.04, 41.0],
    },
    State {
        code: "FL",
        name: "Florida",
        bbox: [-87.63, 24.52, -80.03, 31.0],
    },
    State {
        code: "ID",
        name: "Idaho",
        bbox: [-117.24, 41.99, -111.04, 49.0],
    },
    State {
        code: "IN",
        name: "Indiana",
        bbox: [-88.1, 37.77, -84.78, 41.76],
    },
    State {
        code: "KS",
        name: "Kansas",
        bbox: [-102.05, 36.99, -94.59, 40.0],
    },
    State {
        code: "LA",
        name: "Louisiana",
        bbox: [-94.04, 28.93, -88.82, 33.02],
    },
    State {
        code: "MN",
        name: "Minnesota",
        bbox: [-97.24, 43.5, -89.49, 49.38],
    },
    State {
        code: "NC",
        name: "North Carolina",
        bbox: [-84.32, 33.84, -75.46, 36.59],
    },
    State {
        code: "NH",
        name: "New Hampshire",
        bbox: [-72.56, 42.7, -70.61, 45.31],
    },
    State {
        code: "NV",
        name: "Nevada",
        bbox: [-120.01, 35.0, -114.04, 42.0],
    },
    State {
        code: "OR",
        name: "Oregon",
        bbox: [-124.57, 41.99, -116.46, 46.29],
    },
    State {
        code: "TN",
        name: "Tennessee",
        bbox: [-90.31, 34.98, -81.65, 36.68],
    },
    State {
        code: "UT",
        name: "Utah",
        bbox: [-114.05, 37.0, -109.04, 42.0],
    },
    State {
        code: "WI",
        name: "Wisconsin",
        bbox: [-92.89, 42.49, -86.25, 47.08],
    },
];

/// A valid 1×1 PNG, for thumbnails.
const THUMBNAIL_PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// Where service items point; services are not copied by a migration, so the host is fixed.
const SERVICES_ROOT: &str = "https://services.example.com/arcgis/rest/services";
/// The source portal's address as app JSON embeds it (the simulator's real address is only
/// known at run time; a cloner rewrites ids, not this host).
const PORTAL_URL: &str = "https://portal.example.com/portal";

// ---------------------------------------------------------------------------------------------
// Plan: what exists and who references what, decided before any content is written.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    FeatureService,
    Csv,
    WebMap,
    GeoJson,
    WebApp,
    Pdf,
    VectorTiles,
    Dashboard,
}

/// Item kinds after each user's first three (Feature Service, CSV, Web Map), rotated per
/// user so that even the small default org holds every kind.
const KIND_MIX: &[Kind] = &[
    Kind::GeoJson,
    Kind::WebApp,
    Kind::Pdf,
    Kind::VectorTiles,
    Kind::Dashboard,
    Kind::FeatureService,
    Kind::Csv,
    Kind::WebMap,
];
const BIG_FOLDER_MIX: &[Kind] = &[
    Kind::Csv,
    Kind::GeoJson,
    Kind::Pdf,
    Kind::FeatureService,
    Kind::WebMap,
    Kind::Csv,
    Kind::FeatureService,
];

fn kind_for(user: usize, position: usize) -> Kind {
    match position {
        0 => Kind::FeatureService,
        1 => Kind::Csv,
        2 => Kind::WebMap,
        _ => KIND_MIX[(position - 3 + user) % KIND_MIX.len()],
    }
}

/// References out of an item's data, as indices into the planned items.
#[derive(Default)]
struct Refs {
    /// Web Map: the first operational layer (the owner's own service when there is one).
    main_layer: Option<usize>,
    /// Web Map: layers inside a `GroupLayer`, usually other users' services.
    grouped_layers: Vec<usize>,
    /// Web Map: a `tables[]` entry.
    table: Option<usize>,
    /// Web Map: the vector-tile basemap's item; Dashboard: its map widget's service.
    vector_tiles: Option<usize>,
    /// Web Mapping Application and Dashboard: the web map they show.
    webmap: Option<usize>,
    /// Dashboard: the service behind its indicator.
    service: Option<usize>,
}

struct PlannedItem {
    id: String,
    /// Unique per item: file names and service names derive from it.
    slug: String,
    /// Index into the ordinary users.
    owner: usize,
    folder: Option<String>,
    kind: Kind,
    topic: &'static str,
    state: &'static State,
    access: &'static str,
    /// Indices into the ordinary groups.
    groups: Vec<usize>,
    created: i64,
    modified: i64,
    thumbnail: bool,
    metadata: bool,
    refs: Refs,
}

struct PlannedGroup {
    group: Group,
    /// Ordinary users in the group (owner included when it is an ordinary user).
    member_users: Vec<usize>,
}

struct Generator<'a> {
    spec: &'a GenerateSpec,
    multitenant: bool,
    ids: IdSource,
    clock: Clock,
    layout: Rng,
}

impl<'a> Generator<'a> {
    fn new(spec: &'a GenerateSpec) -> Generator<'a> {
        Generator {
            spec,
            multitenant: spec.portal_mode == "multitenant",
            ids: IdSource::new(spec.seed, Stream::Ids),
            clock: Clock::new(spec.seed),
            layout: Rng::new(spec.seed, Stream::Layout, 0),
        }
    }

    fn url_key(&self) -> Option<String> {
        self.multitenant.then(|| format!("gen{}", self.spec.seed))
    }

    fn portal(&self, stream: Stream) -> FixturePortal {
        let (id, current_version) = if self.multitenant {
            let mut rng = Rng::new(self.spec.seed, stream, 1);
            (rng.alphanumeric(16), "2024.2")
        } else {
            // Every ArcGIS Enterprise portal reports this id.
            ("0123456789ABCDEF".to_string(), "11.3")
        };
        FixturePortal {
            id,
            name: format!("Generated Portal {}", self.spec.seed),
            portal_mode: if self.multitenant {
                "multitenant"
            } else {
                "singletenant"
            }
            .into(),
            is_portal: !self.multitenant,
            current_version: current_version.into(),
            url_key: self.url_key(),
            default_admin: "admin".into(),
            roles: self.custom_roles(stream),
        }
    }

    /// The two custom roles some users hold. Same names in source and target, different ids
    /// (each portal mints its own), which is what a migration must map.
    fn custom_roles(&self, stream: Stream) -> Vec<Role> {
        if !self.spec.custom_roles {
            return Vec::new();
        }
        let mut rng = Rng::new(self.spec.seed, stream, 2);
        ["Analyst", "Field Editor"]
            .into_iter()
            .map(|name| Role {
                id: rng.alphanumeric(16),
                name: name.into(),
                description: Some(format!("Custom role: {name}")),
            })
            .collect()
    }

    fn build(mut self) -> Fixture {
        let portal = self.portal(Stream::Ids);
        let mut users = vec![self.admin()];
        users.extend(self.system_users());
        let mut ordinary = self.ordinary_users();
        self.add_folders(&mut ordinary);

        let mut groups = self.system_groups();
        let planned_groups = self.ordinary_groups(&ordinary);
        let mut user_groups: Vec<Vec<usize>> = vec![Vec::new(); ordinary.len()];
        for (g, planned) in planned_groups.iter().enumerate() {
            for &u in &planned.member_users {
                user_groups[u].push(g);
            }
        }

        let mut planned = self.plan_items(&ordinary, &user_groups);
        self.plan_references(&mut planned);
        let relationships = relationships(&planned);
        let group_ids: Vec<String> = planned_groups.iter().map(|p| p.group.id.clone()).collect();
        let items = planned
            .iter()
            .enumerate()
            .map(|(index, item)| self.item(index, item, &planned, &ordinary, &group_ids))
            .collect();

        users.extend(ordinary);
        groups.extend(planned_groups.into_iter().map(|p| p.group));
        Fixture {
            portal,
            users,
            groups,
            items,
            relationships,
        }
    }

    /// A user with the fields every account shares; callers adjust the rest.
    fn user(&mut self, username: String, first: &str, last: &str, password: &str) -> User {
        let (created, modified) = self.clock.created_modified();
        User {
            id: self.ids.fresh(),
            email: format!("{}.{}@example.com", first, last)
                .to_lowercase()
                .replace(' ', ""),
            username,
            password: password.into(),
            full_name: format!("{first} {last}"),
            first_name: first.into(),
            last_name: last.into(),
            role: "org_admin".into(),
            role_id: None,
            user_license_type_id: "creatorUT".into(),
            provider: "arcgis".into(),
            idp_username: None,
            description: None,
            tags: vec![],
            access: "public".into(),
            preferred_view: None,
            culture: Some("en".into()),
            region: Some("US".into()),
            units: None,
            thumbnail: None,
            created,
            modified,
            folders: vec![],
        }
    }

    fn admin(&mut self) -> User {
        let password = self.spec.admin_password.clone();
        let mut admin = self.user("admin".into(), "Portal", "Administrator", &password);
        admin.description = Some("Initial administrator account.".into());
        admin.access = "private".into();
        admin
    }

    fn system_users(&mut self) -> Vec<User> {
        let password = self.spec.user_password.clone();
        [
            ("esri_boundaries", "Boundaries"),
            ("esri_demographics", "Demographics"),
            ("esri_livingatlas", "Living Atlas"),
            ("esri_nav", "Navigator"),
        ]
        .into_iter()
        .map(|(username, last)| self.user(username.into(), "Esri", last, &password))
        .collect()
    }

    fn ordinary_users(&mut self) -> Vec<User> {
        let pairs = FIRST_PARTS.len() * SECOND_PARTS.len();
        let offset = self.layout.below(pairs);
        let roles = self.custom_roles(Stream::Ids);
        let custom_role_ids: Vec<String> = roles.into_iter().map(|role| role.id).collect();
        let first_enterprise = self.spec.users.saturating_sub(self.spec.enterprise_users);
        let suffix = self.url_key().map(|k| format!("_{k}")).unwrap_or_default();
        let password = self.spec.user_password.clone();
        (0..self.spec.users)
            .map(|index| {
                let pair = (index * NAME_STRIDE + offset) % pairs;
                let first = FIRST_PARTS[pair % FIRST_PARTS.len()];
                let second = SECOND_PARTS[pair / FIRST_PARTS.len()];
                let round = index / pairs;
                let base = if round == 0 {
                    format!("{first}.{second}")
                } else {
                    format!("{first}.{second}{round}")
                };
                let mut user = self.user(
                    format!("{base}{suffix}"),
                    &capitalise(first),
                    &capitalise(second),
                    &password,
                );
                user.email = format!("{base}@example.com");
                let roll = self.layout.percent();
                user.role = ROLE_CYCLE[index % ROLE_CYCLE.len()].into();
                user.user_license_type_id = match (user.role.as_str(), roll % 4) {
                    ("org_admin", 0) => "GISProfessionalAdvUT",
                    ("org_publisher", 0) => "GISProfessionalStdUT",
                    _ => "creatorUT",
                }
                .into();
                if !custom_role_ids.is_empty() && user.role == "org_user" && index % 2 == 0 {
                    user.role_id = Some(custom_role_ids[(index / 2) % 2].clone());
                }
                if index >= first_enterprise {
                    user.provider = "enterprise".into();
                    user.idp_username = Some(format!("{base}@idp.example.com"));
                    // Identity-provider accounts have no portal password to sign in with.
                    user.password = String::new();
                }
                let state = &STATES[self.layout.below(STATES.len())];
                let department = self.layout.pick(DEPARTMENTS).unwrap_or("planning");
                user.tags = vec![state.name.into(), department.into()];
                user.description =
                    (index % 4 != 0).then(|| format!("Works on {department} in {}.", state.name));
                user.access = ["org", "org", "private", "public"][self.layout.below(4)].into();
                user.preferred_view =
                    [None, Some("Web"), Some("GIS")][self.layout.below(3)].map(str::to_owned);
                let (culture, region) =
                    [("en", "US"), ("en", "GB"), ("fr", "FR"), ("de", "DE")][self.layout.below(4)];
                user.culture = Some(culture.into());
                user.region = Some(region.into());
                user.thumbnail = (index % 3 == 0).then(thumbnail);
                user
            })
            .collect()
    }

    fn add_folders(&mut self, users: &mut [User]) {
        for (index, user) in users.iter_mut().enumerate() {
            for k in 0..self.spec.folders_per_user {
                let theme = FOLDER_THEMES[k % FOLDER_THEMES.len()];
                let round = k / FOLDER_THEMES.len();
                let title = if round == 0 {
                    format!("{}_{theme}", user.last_name)
                } else {
                    format!("{}_{theme}_{}", user.last_name, round + 1)
                };
                user.folders.push(Folder {
                    id: self.ids.fresh(),
                    title,
                    created: self.clock.tick(),
                });
            }
            if index == 0 && self.spec.big_folder_items > 0 {
                user.folders.push(Folder {
                    id: self.ids.fresh(),
                    title: BIG_FOLDER.into(),
                    created: self.clock.tick(),
                });
            }
        }
    }

    /// The groups a migration filters out: owned by esri_* accounts, or titled Basemaps.
    fn system_groups(&mut self) -> Vec<Group> {
        [
            (
                "Esri Boundary Layers",
                "esri_boundaries",
                &["boundaries", "Living Atlas"][..],
            ),
            ("Living Atlas", "esri_livingatlas", &["Living Atlas"][..]),
            ("Navigator Maps", "esri_nav", &["Navigator"][..]),
            ("Basemaps", "admin", &["basemaps"][..]),
        ]
        .into_iter()
        .map(|(title, owner, tags)| {
            let mut group = self.group(title.into(), owner.into());
            group.tags = tags.iter().map(|t| t.to_string()).collect();
            group.access = if owner == "admin" { "org" } else { "public" }.into();
            group
        })
        .collect()
    }

    fn group(&mut self, title: String, owner: String) -> Group {
        let (created, modified) = self.clock.created_modified();
        Group {
            id: self.ids.fresh(),
            title,
            owner: owner.clone(),
            description: None,
            snippet: None,
            tags: vec![],
            phone: None,
            access: "org".into(),
            is_invitation_only: false,
            sort_field: Some("title".into()),
            sort_order: Some("asc".into()),
            is_view_only: false,
            capabilities: vec![],
            membership_access: None,
            thumbnail: None,
            created,
            modified,
            admins: vec![owner.clone()],
            users: vec![owner],
        }
    }

    /// Even-numbered groups belong to `admin` (as in the sample org), odd-numbered ones to an
    /// ordinary member, so a migration must handle both. Most groups also have managers.
    fn ordinary_groups(&mut self, users: &[User]) -> Vec<PlannedGroup> {
        let everyone: Vec<usize> = (0..users.len()).collect();
        (0..self.spec.groups)
            .map(|k| {
                let base = GROUP_TITLES[k % GROUP_TITLES.len()];
                let round = k / GROUP_TITLES.len();
                let title = if round == 0 {
                    base.to_string()
                } else {
                    format!("{base} {}", round + 1)
                };
                let mut members = self.layout.sample(&everyone, self.spec.members_per_group);
                let owner = match members.first() {
                    Some(&first) if k % 2 == 1 => users[first].username.clone(),
                    _ => "admin".to_string(),
                };
                let mut group = self.group(title.clone(), owner.clone());
                let others: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&u| users[u].username != owner)
                    .collect();
                let managers = if k % 3 == 2 { 0 } else { 1 + others.len() / 10 };
                group.admins.extend(
                    others
                        .iter()
                        .take(managers)
                        .map(|&u| users[u].username.clone()),
                );
                let mut sorted = others.clone();
                sorted.sort_unstable();
                group
                    .users
                    .extend(sorted.iter().map(|&u| users[u].username.clone()));
                group.tags = title
                    .to_lowercase()
                    .split(' ')
                    .filter(|w| w.len() > 3)
                    .map(str::to_owned)
                    .chain(["team".to_string()])
                    .collect();
                group.snippet = Some(format!("Content shared by the {title} team"));
                group.description = Some(format!(
                    "<p>Maps, data and documents of the {title} team. Ask a manager to join.</p>"
                ));
                group.access = ["private", "org", "public"][k % 3].into();
                group.is_invitation_only = k % 2 == 1;
                group.is_view_only = k % 5 == 4;
                group.sort_field = Some(["title", "modified", "created", "owner"][k % 4].into());
                group.sort_order = Some(if k % 4 == 1 { "desc" } else { "asc" }.into());
                group.thumbnail = (k % 2 == 0).then(thumbnail);
                members.sort_unstable();
                PlannedGroup {
                    group,
                    member_users: members,
                }
            })
            .collect()
    }

    fn plan_items(&mut self, users: &[User], user_groups: &[Vec<usize>]) -> Vec<PlannedItem> {
        let mut planned = Vec::new();
        for (u, user) in users.iter().enumerate() {
            let mut position = 0;
            let slots = std::iter::once(None).chain(
                user.folders
                    .iter()
                    .filter(|f| f.title != BIG_FOLDER)
                    .map(|f| Some(f.title.clone())),
            );
            for folder in slots {
                for _ in 0..self.spec.items_per_folder {
                    let kind = kind_for(u, position);
                    let index = planned.len();
                    planned.push(self.plan_item(index, u, folder.clone(), kind, &user_groups[u]));
                    position += 1;
                }
            }
            if u == 0 {
                for n in 0..self.spec.big_folder_items {
                    let kind = BIG_FOLDER_MIX[n % BIG_FOLDER_MIX.len()];
                    let index = planned.len();
                    planned.push(self.plan_item(
                        index,
                        u,
                        Some(BIG_FOLDER.into()),
                        kind,
                        &user_groups[u],
                    ));
                }
            }
        }
        planned
    }

    fn plan_item(
        &mut self,
        index: usize,
        owner: usize,
        folder: Option<String>,
        kind: Kind,
        owner_groups: &[usize],
    ) -> PlannedItem {
        let (access, groups) = self.sharing(kind, owner_groups);
        let (created, modified) = self.clock.created_modified();
        let topic = self.layout.pick(TOPICS).unwrap_or("Parcels");
        let state = &STATES[self.layout.below(STATES.len())];
        PlannedItem {
            id: self.ids.fresh(),
            slug: format!(
                "{}_{}_{index}",
                topic.to_lowercase().replace(' ', "_"),
                state.code.to_lowercase()
            ),
            owner,
            folder,
            kind,
            topic,
            state,
            access,
            groups,
            created,
            modified,
            thumbnail: self.layout.below(3) == 0,
            metadata: self.layout.below(5) == 0,
            refs: Refs::default(),
        }
    }

    /// Who sees an item. Web Maps are mostly shared with several groups; services mostly
    /// with the organisation; files mostly private. `shared` needs a group the owner is in,
    /// so an owner without groups keeps such items private.
    fn sharing(&mut self, kind: Kind, owner_groups: &[usize]) -> (&'static str, Vec<usize>) {
        let roll = self.layout.percent();
        let (access, wanted) = match kind {
            Kind::FeatureService => match roll {
                0..=54 => ("org", if roll < 15 { 1 } else { 0 }),
                55..=69 => ("public", 0),
                _ => ("shared", 2),
            },
            Kind::Csv => match roll {
                0..=69 => ("private", 0),
                _ => ("shared", 1),
            },
            Kind::WebMap => match roll {
                0..=69 => ("shared", 3),
                70..=89 => ("org", 2),
                _ => ("public", 1),
            },
            Kind::WebApp => match roll {
                0..=49 => ("public", 1),
                _ => ("org", 1),
            },
            Kind::Dashboard => match roll {
                0..=59 => ("shared", 2),
                _ => ("org", 0),
            },
            Kind::GeoJson => match roll {
                0..=39 => ("private", 0),
                40..=69 => ("public", 0),
                _ => ("shared", 2),
            },
            Kind::Pdf => match roll {
                0..=49 => ("private", 0),
                _ => ("shared", 1),
            },
            Kind::VectorTiles => ("org", 0),
        };
        let count = if wanted == 0 {
            0
        } else {
            1 + self.layout.below(wanted)
        };
        let mut groups = self.layout.sample(owner_groups, count);
        groups.sort_unstable();
        if access == "shared" && groups.is_empty() {
            ("private", groups)
        } else {
            (access, groups)
        }
    }

    /// Picks what each map, app and dashboard points at. References go anywhere in the org
    /// (other owners, other folders), which is what makes a migration's remapping matter.
    fn plan_references(&mut self, planned: &mut [PlannedItem]) {
        let of_kind = |kind: Kind| -> Vec<usize> {
            planned
                .iter()
                .enumerate()
                .filter(|(_, p)| p.kind == kind)
                .map(|(i, _)| i)
                .collect()
        };
        let services = of_kind(Kind::FeatureService);
        let webmaps = of_kind(Kind::WebMap);
        let vector_tiles = of_kind(Kind::VectorTiles);
        let owners = planned.iter().map(|p| p.owner + 1).max().unwrap_or(0);
        let mut first_own_service: Vec<Option<usize>> = vec![None; owners];
        for &s in services.iter().rev() {
            first_own_service[planned[s].owner] = Some(s);
        }
        for index in 0..planned.len() {
            let refs = match planned[index].kind {
                Kind::WebMap => {
                    let own = first_own_service[planned[index].owner];
                    Refs {
                        main_layer: own.or_else(|| self.layout.pick(&services)),
                        grouped_layers: self.layout.sample(&services, 2),
                        table: self.layout.pick(&services),
                        vector_tiles: self.layout.pick(&vector_tiles),
                        ..Refs::default()
                    }
                }
                Kind::WebApp => Refs {
                    webmap: self.layout.pick(&webmaps),
                    ..Refs::default()
                },
                Kind::Dashboard => Refs {
                    webmap: self.layout.pick(&webmaps),
                    service: self.layout.pick(&services),
                    ..Refs::default()
                },
                _ => continue,
            };
            planned[index].refs = refs;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Content

    fn item(
        &self,
        index: usize,
        plan: &PlannedItem,
        planned: &[PlannedItem],
        users: &[User],
        group_ids: &[String],
    ) -> Item {
        let mut rng = Rng::new(self.spec.seed, Stream::Content, index as u64);
        let owner = &users[plan.owner];
        let state = plan.state;
        let slug = plan.slug.as_str();
        let [xmin, ymin, xmax, ymax] = state.bbox;
        let extent = json!([[xmin, ymin], [xmax, ymax]]);
        let mut item = Item {
            id: plan.id.clone(),
            owner: owner.username.clone(),
            folder: plan.folder.clone(),
            title: String::new(),
            item_type: String::new(),
            type_keywords: vec![],
            description: None,
            tags: vec![
                plan.topic.to_lowercase(),
                state.code.into(),
                state.name.into(),
            ],
            snippet: None,
            extent,
            spatial_reference: None,
            name: None,
            access_information: None,
            license_info: None,
            culture: Some("en-us".into()),
            url: None,
            properties: None,
            categories: vec![],
            access: plan.access.into(),
            groups: plan.groups.iter().map(|&g| group_ids[g].clone()).collect(),
            data: None,
            thumbnail: plan.thumbnail.then(thumbnail),
            metadata: None,
            created: plan.created,
            modified: plan.modified,
        };
        let keywords = |words: &[&str]| words.iter().map(|w| w.to_string()).collect();
        match plan.kind {
            Kind::FeatureService => {
                item.title = format!("{} {}", plan.topic, state.code);
                item.item_type = "Feature Service".into();
                item.type_keywords = keywords(&[
                    "ArcGIS Server",
                    "Data",
                    "Feature Access",
                    "Feature Service",
                    "Service",
                ]);
                item.snippet = Some(format!("{} in {}", plan.topic, state.name));
                item.description = Some(format!(
                    "Feature service of {} in {}.",
                    plan.topic.to_lowercase(),
                    state.name
                ));
                item.spatial_reference = Some("WGS_1984_Web_Mercator_Auxiliary_Sphere".into());
                item.url = Some(service_url(slug, "FeatureServer"));
                item.data = (rng.below(2) == 0).then(|| {
                    ItemData::Json(json!({
                        "layers": [{
                            "id": 0,
                            "popupInfo": {"title": "{name}", "description": "Status: {status}"},
                            "layerDefinition": {"defaultVisibility": true, "minScale": 0, "maxScale": 0}
                        }]
                    }))
                });
            }
            Kind::VectorTiles => {
                item.title = format!("{} vector tiles", state.name);
                item.item_type = "Vector Tile Service".into();
                item.type_keywords = keywords(&["Vector Tile Service", "Service"]);
                item.snippet = Some(format!("Vector tiles covering {}", state.name));
                item.spatial_reference = Some("WGS_1984_Web_Mercator_Auxiliary_Sphere".into());
                item.url = Some(service_url(slug, "VectorTileServer"));
            }
            Kind::Csv => {
                item.title = format!("{} {} table", plan.topic, state.code);
                item.item_type = "CSV".into();
                item.type_keywords = keywords(&["CSV"]);
                item.snippet = Some(format!("{} in {} (CSV)", plan.topic, state.name));
                item.description = Some(format!("{} recorded in {}.", plan.topic, state.name));
                item.access_information = Some("City GIS Department".into());
                item.data = Some(file(
                    slug,
                    "csv",
                    csv(state, self.spec.file_bytes, &mut rng),
                ));
                item.name = Some(format!("{slug}.csv"));
            }
            Kind::GeoJson => {
                item.title = format!("{} {} points", plan.topic, state.code);
                item.item_type = "GeoJson".into();
                item.type_keywords = keywords(&[
                    "Coordinates Type",
                    "CRS",
                    "Feature",
                    "FeatureCollection",
                    "GeoJSON",
                ]);
                item.snippet = Some(format!("{} in {} as GeoJSON", plan.topic, state.name));
                item.data = Some(file(
                    slug,
                    "geojson",
                    geojson(state, self.spec.file_bytes, &mut rng),
                ));
                item.name = Some(format!("{slug}.geojson"));
            }
            Kind::Pdf => {
                item.title = format!("{} report {}", plan.topic, state.code);
                item.item_type = "PDF".into();
                item.type_keywords = keywords(&["Data", "Document", "PDF"]);
                item.snippet = Some(format!("Annual report on {}", plan.topic.to_lowercase()));
                item.extent = json!([]);
                item.license_info = Some("<p>For internal use.</p>".into());
                item.data = Some(file(
                    slug,
                    "pdf",
                    pdf(&item.title, self.spec.file_bytes, &mut rng),
                ));
                item.name = Some(format!("{slug}.pdf"));
            }
            Kind::WebMap => {
                item.title = format!("{} {} map", owner.full_name, plan.topic.to_lowercase());
                item.item_type = "Web Map".into();
                item.type_keywords = keywords(&[
                    "ArcGIS Online",
                    "Explorer Web Map",
                    "Map",
                    "Online Map",
                    "Web Map",
                ]);
                item.snippet = Some(format!("{} across the organisation", plan.topic));
                item.description = Some(format!(
                    "<p>{} maintained by {}.</p>",
                    plan.topic, owner.full_name
                ));
                item.data = Some(ItemData::Json(webmap(plan, planned)));
            }
            Kind::WebApp => {
                item.title = format!("{} viewer", plan.topic);
                item.item_type = "Web Mapping Application".into();
                item.type_keywords = keywords(&[
                    "JavaScript",
                    "Map",
                    "Mapping Site",
                    "Online Map",
                    "Ready To Use",
                    "Web Map",
                ]);
                item.snippet = Some(format!("Explore {}", plan.topic.to_lowercase()));
                item.extent = json!([]);
                item.url = Some(format!(
                    "{PORTAL_URL}/apps/instant/sidebar/index.html?appid={}",
                    plan.id
                ));
                let webmap = plan.refs.webmap.map(|w| planned[w].id.clone());
                item.data = Some(ItemData::Json(json!({
                    "values": {
                        "webmap": webmap,
                        "title": item.title,
                        "legend": true,
                        "search": true
                    }
                })));
            }
            Kind::Dashboard => {
                item.title = format!("{} dashboard", plan.topic);
                item.item_type = "Dashboard".into();
                item.type_keywords = keywords(&["Dashboard", "Operations Dashboard"]);
                item.snippet = Some(format!("{} at a glance", plan.topic));
                item.extent = json!([]);
                item.data = Some(ItemData::Json(dashboard(plan, planned)));
            }
        }
        if plan.metadata {
            item.metadata = Some(metadata(&item));
        }
        item
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn thumbnail() -> Blob {
    Blob {
        name: "thumbnail.png".into(),
        base64: THUMBNAIL_PNG_BASE64.into(),
    }
}

fn service_url(name: &str, server: &str) -> String {
    format!("{SERVICES_ROOT}/{name}/{server}")
}

fn file(slug: &str, extension: &str, bytes: Vec<u8>) -> ItemData {
    ItemData::File(Blob {
        name: format!("{slug}.{extension}"),
        base64: base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

fn point(state: &State, rng: &mut Rng) -> (f64, f64) {
    let [xmin, ymin, xmax, ymax] = state.bbox;
    (rng.between(xmin, xmax), rng.between(ymin, ymax))
}

/// A header and rows of points inside the state until about `target` bytes (one row at
/// least, so the file is a valid CSV even for `file_bytes=0`).
fn csv(state: &State, target: usize, rng: &mut Rng) -> Vec<u8> {
    let mut text = String::from("id,site,state,latitude,longitude,status\n");
    let mut row = 1;
    loop {
        let (lon, lat) = point(state, rng);
        let status = rng.pick(STATUSES).unwrap_or("open");
        text.push_str(&format!(
            "{row},Site {row},{},{lat:.5},{lon:.5},{status}\n",
            state.code
        ));
        if text.len() >= target {
            return text.into_bytes();
        }
        row += 1;
    }
}

fn geojson(state: &State, target: usize, rng: &mut Rng) -> Vec<u8> {
    let mut features = Vec::new();
    let mut length = 0;
    let mut n = 1;
    loop {
        let (lon, lat) = point(state, rng);
        let status = rng.pick(STATUSES).unwrap_or("open");
        let feature = format!(
            r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{lon:.5},{lat:.5}]}},"properties":{{"id":{n},"name":"Site {n}","status":"{status}"}}}}"#
        );
        length += feature.len() + 1;
        features.push(feature);
        if length >= target {
            break;
        }
        n += 1;
    }
    format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    )
    .into_bytes()
}

/// A one-page PDF with a correct cross-reference table; comment lines in the page's content
/// stream pad it to about `target` bytes.
fn pdf(title: &str, target: usize, rng: &mut Rng) -> Vec<u8> {
    let escaped: String = title
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .flat_map(|c| match c {
            '(' | ')' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect();
    let mut content = format!("BT /F1 18 Tf 72 720 Td ({escaped}) Tj ET\n");
    let missing = target.saturating_sub(assemble_pdf(&content).len());
    let mut padding = 0;
    while padding < missing {
        let line = format!("% {:016x}{:016x}\n", rng.next_u64(), rng.next_u64());
        padding += line.len();
        content.push_str(&line);
    }
    assemble_pdf(&content)
}

fn assemble_pdf(content: &str) -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (n, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{body}\nendobj\n", n + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

fn feature_layer(id: String, title: String, url: String, item_id: &str) -> Value {
    json!({
        "id": id,
        "title": title,
        "layerType": "ArcGISFeatureLayer",
        "url": url,
        "itemId": item_id,
        "visibility": true,
        "opacity": 1
    })
}

/// Web Map JSON with every kind of reference a cloner must rewrite: a first layer on the
/// service root (as in the sample org), a `GroupLayer` whose nested layers keep a layer
/// index in their `url`, a table, and a vector-tile basemap whose `styleUrl` embeds an id.
fn webmap(plan: &PlannedItem, planned: &[PlannedItem]) -> Value {
    let service = |index: usize| (&planned[index].id, planned[index].topic, &planned[index]);
    let url_of = |p: &PlannedItem, server: &str| service_url(&p.slug, server);
    let mut layers = Vec::new();
    if let Some(main) = plan.refs.main_layer {
        let (id, topic, p) = service(main);
        layers.push(feature_layer(
            format!("layer_{}", &id[..8]),
            format!("{topic} {}", p.state.code),
            url_of(p, "FeatureServer"),
            id,
        ));
    }
    if !plan.refs.grouped_layers.is_empty() {
        let nested: Vec<Value> = plan
            .refs
            .grouped_layers
            .iter()
            .map(|&g| {
                let (id, topic, p) = service(g);
                feature_layer(
                    format!("layer_{}_0", &id[..8]),
                    format!("{topic} {}", p.state.code),
                    format!("{}/0", url_of(p, "FeatureServer")),
                    id,
                )
            })
            .collect();
        layers.push(json!({
            "id": "group_0",
            "title": "Related services",
            "layerType": "GroupLayer",
            "visibility": true,
            "opacity": 1,
            "layers": nested
        }));
    }
    let tables: Vec<Value> = plan
        .refs
        .table
        .map(|t| {
            let (id, topic, p) = service(t);
            json!({
                "id": format!("table_{}", &id[..8]),
                "title": format!("{topic} records"),
                "url": format!("{}/1", url_of(p, "FeatureServer")),
                "itemId": id
            })
        })
        .into_iter()
        .collect();
    let basemap = match plan.refs.vector_tiles {
        Some(v) => {
            let (id, _, p) = service(v);
            json!({
                "title": format!("{} vector basemap", p.state.name),
                "baseMapLayers": [{
                    "id": format!("vector_{}", &id[..8]),
                    "title": format!("{} vector tiles", p.state.name),
                    "layerType": "VectorTileLayer",
                    "itemId": id,
                    "styleUrl": format!("{PORTAL_URL}/sharing/rest/content/items/{id}/resources/styles/root.json"),
                    "visibility": true,
                    "opacity": 1
                }]
            })
        }
        None => json!({
            "title": "Topographic",
            "baseMapLayers": [{
                "id": "World_Topo_Map_8618",
                "title": "World Topographic Map",
                "layerType": "ArcGISTiledMapServiceLayer",
                "url": "https://services.arcgisonline.com/ArcGIS/rest/services/World_Topo_Map/MapServer",
                "visibility": true,
                "opacity": 1
            }]
        }),
    };
    json!({
        "operationalLayers": layers,
        "tables": tables,
        "baseMap": basemap,
        "spatialReference": {"wkid": 102100, "latestWkid": 3857},
        "authoringApp": "WebMapViewer",
        "authoringAppVersion": "11.3",
        "version": "2.31"
    })
}

fn dashboard(plan: &PlannedItem, planned: &[PlannedItem]) -> Value {
    let mut widgets = Vec::new();
    if let Some(w) = plan.refs.webmap {
        widgets.push(json!({
            "id": "map_widget",
            "type": "mapWidget",
            "name": "Map",
            "itemId": planned[w].id,
            "showNavigation": true
        }));
    }
    if let Some(s) = plan.refs.service {
        widgets.push(json!({
            "id": "indicator_widget",
            "type": "indicatorWidget",
            "name": format!("{} count", planned[s].topic),
            "itemId": planned[s].id,
            "datasets": [{
                "type": "serviceDataset",
                "dataSource": {"type": "featureServiceDataSource", "itemId": planned[s].id, "layerId": 0},
                "outFields": ["*"]
            }]
        }));
    }
    json!({
        "version": 27,
        "widgets": widgets,
        "headerPanel": {"type": "headerPanel", "title": format!("{} dashboard", plan.topic)},
        "theme": "light"
    })
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn metadata(item: &Item) -> Metadata {
    let keywords: String = item
        .tags
        .iter()
        .map(|t| format!("<keyword>{}</keyword>", xml_escape(t)))
        .collect();
    Metadata {
        name: "metadata.xml".into(),
        text: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xml:lang=\"en\"><Esri>\
             <ArcGISFormat>1.0</ArcGISFormat><SyncOnce>TRUE</SyncOnce></Esri><dataIdInfo>\
             <idCitation><resTitle>{}</resTitle></idCitation><idAbs>{}</idAbs>\
             <searchKeys>{keywords}</searchKeys></dataIdInfo></metadata>\n",
            xml_escape(&item.title),
            xml_escape(item.snippet.as_deref().unwrap_or("")),
        ),
    }
}

/// Service2Data from each Feature Service to a CSV of the same owner (paired in order, as the
/// sample org pairs each state's service with its CSV), and Map2Service from each Web Map to
/// every distinct service it shows.
fn relationships(planned: &[PlannedItem]) -> Vec<Relationship> {
    let mut out = Vec::new();
    let owners = planned.iter().map(|p| p.owner + 1).max().unwrap_or(0);
    let mut services: Vec<Vec<&PlannedItem>> = vec![Vec::new(); owners];
    let mut tables: Vec<Vec<&PlannedItem>> = vec![Vec::new(); owners];
    for p in planned {
        match p.kind {
            Kind::FeatureService => services[p.owner].push(p),
            Kind::Csv => tables[p.owner].push(p),
            _ => {}
        }
    }
    for (mine, their_tables) in services.iter().zip(&tables) {
        for (service, table) in mine.iter().zip(their_tables) {
            out.push(Relationship {
                relationship_type: "Service2Data".into(),
                origin: service.id.clone(),
                destination: table.id.clone(),
            });
        }
    }
    for map in planned.iter().filter(|p| p.kind == Kind::WebMap) {
        let mut shown: Vec<usize> = map.refs.main_layer.into_iter().collect();
        shown.extend(&map.refs.grouped_layers);
        shown.extend(map.refs.table);
        let mut seen = HashSet::new();
        for service in shown {
            if seen.insert(service) {
                out.push(Relationship {
                    relationship_type: "Map2Service".into(),
                    origin: map.id.clone(),
                    destination: planned[service].id.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::query::{self, Document};
    use std::collections::{BTreeSet, HashMap};

    fn spec(text: &str) -> GenerateSpec {
        text.parse().unwrap()
    }

    fn medium() -> GenerateSpec {
        spec("seed=3,users=40,groups=6,folders-per-user=2,items-per-folder=3,members-per-group=12,file-bytes=300")
    }

    #[test]
    fn spec_string_sets_every_key_and_keeps_defaults_for_the_rest() {
        let parsed = spec(
            "seed=7,users=120,groups=5,folders-per-user=2,items-per-folder=3,file-bytes=4096,\
             big-folder-items=150,members-per-group=10,mode=multitenant",
        );
        assert_eq!(
            parsed,
            GenerateSpec {
                seed: 7,
                users: 120,
                groups: 5,
                folders_per_user: 2,
                items_per_folder: 3,
                file_bytes: 4096,
                big_folder_items: 150,
                members_per_group: 10,
                portal_mode: "multitenant".into(),
                ..GenerateSpec::default()
            }
        );
        let more =
            spec(" custom_roles=true , enterprise-users=4, admin-password=a1, user-password=u1 ");
        assert!(more.custom_roles);
        assert_eq!(more.enterprise_users, 4);
        assert_eq!(
            (more.admin_password.as_str(), more.user_password.as_str()),
            ("a1", "u1")
        );
        assert_eq!(spec(""), GenerateSpec::default());
    }

    #[test]
    fn spec_string_errors_name_the_problem() {
        let unknown = "users=3,colour=red".parse::<GenerateSpec>().unwrap_err();
        let message = unknown.to_string();
        assert!(message.contains("'colour'"), "{message}");
        for key in SPEC_KEYS {
            assert!(message.contains(key), "{message} lacks {key}");
        }
        let cases = [
            ("users=many", "users"),
            ("mode=cloud", "singletenant or multitenant"),
            ("custom-roles=maybe", "true or false"),
            ("admin-password=", "must not be empty"),
            ("users", "not key=value"),
            ("seed=-1", "non-negative whole number"),
        ];
        for (text, fragment) in cases {
            let error = text.parse::<GenerateSpec>().unwrap_err().to_string();
            assert!(error.contains(fragment), "{text}: {error}");
        }
        // A password never comes back in an error, even next to a mistake.
        let error = "admin-password=hunter2,hunter2"
            .parse::<GenerateSpec>()
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn debug_output_hides_passwords() {
        let secretive = spec("admin-password=very-secret-1,user-password=very-secret-2");
        let shown = format!("{secretive:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("users: 5"));
    }

    #[test]
    fn default_spec_is_a_small_org_with_every_kind_of_content() {
        let org = generate(&GenerateSpec::default());
        assert_eq!(org.users.len(), 5 + 5);
        assert_eq!(org.groups.len(), 2 + 4);
        assert_eq!(org.users.iter().map(|u| u.folders.len()).sum::<usize>(), 5);
        assert_eq!(org.items.len(), 5 * 2 * 2);
        let types: BTreeSet<&str> = org.items.iter().map(|i| i.item_type.as_str()).collect();
        for wanted in [
            "CSV",
            "Dashboard",
            "Feature Service",
            "GeoJson",
            "PDF",
            "Vector Tile Service",
            "Web Map",
            "Web Mapping Application",
        ] {
            assert!(types.contains(wanted), "no {wanted} in {types:?}");
        }
        let roles: BTreeSet<&str> = org.users.iter().map(|u| u.role.as_str()).collect();
        assert_eq!(roles.len(), 3, "{roles:?}");
        let admin = org.users.iter().find(|u| u.username == "admin").unwrap();
        assert_eq!(admin.password, "admin-sample-pw");
        assert_eq!(admin.role, "org_admin");
        assert_eq!(org.portal.default_admin, "admin");
        assert_eq!(org.portal.id, "0123456789ABCDEF");
    }

    struct UserDoc<'a>(&'a crate::fixture::User);
    impl Document for UserDoc<'_> {
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "username" => vec![self.0.username.clone()],
                "role" => vec![self.0.role.clone()],
                _ => vec![],
            }
        }
        fn free_text(&self) -> Vec<String> {
            let u = self.0;
            vec![
                u.username.clone(),
                u.full_name.clone(),
                u.first_name.clone(),
                u.last_name.clone(),
            ]
        }
    }

    struct GroupDoc<'a>(&'a Group);
    impl Document for GroupDoc<'_> {
        fn field(&self, name: &str) -> Vec<String> {
            match name {
                "owner" => vec![self.0.owner.clone()],
                "title" => vec![self.0.title.clone()],
                _ => vec![],
            }
        }
        fn free_text(&self) -> Vec<String> {
            let g = self.0;
            let mut text = vec![g.title.clone(), g.owner.clone()];
            text.extend(g.tags.iter().cloned());
            text.extend(g.snippet.iter().cloned());
            text.extend(g.description.iter().cloned());
            text
        }
    }

    #[test]
    fn the_seed_filters_drop_exactly_the_system_accounts_and_groups() {
        for spec in [
            GenerateSpec::default(),
            medium(),
            spec("mode=multitenant,users=30,groups=20,seed=9"),
        ] {
            let org = generate(&spec);
            let users = query::parse("!esri_ & !admin").unwrap();
            let kept = org
                .users
                .iter()
                .filter(|u| users.matches(&UserDoc(u)))
                .count();
            assert_eq!(kept, spec.users, "{spec:?}");
            let groups = query::parse("!owner:esri_* & !Basemaps").unwrap();
            let kept = org
                .groups
                .iter()
                .filter(|g| groups.matches(&GroupDoc(g)))
                .count();
            assert_eq!(kept, spec.groups, "{spec:?}");
        }
    }

    fn json_data(item: &Item) -> &Value {
        match &item.data {
            Some(ItemData::Json(value)) => value,
            other => panic!("{} has no JSON data: {other:?}", item.title),
        }
    }

    /// Every `itemId` anywhere in a JSON document.
    fn item_ids(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner) {
                        ("itemId" | "webmap", Value::String(id)) => out.push(id.clone()),
                        _ => item_ids(inner, out),
                    }
                }
            }
            Value::Array(list) => list.iter().for_each(|v| item_ids(v, out)),
            _ => {}
        }
    }

    #[test]
    fn references_resolve_and_cross_owners_and_folders() {
        let org = generate(&medium());
        let by_id: HashMap<&str, &Item> = org.items.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut other_owner = false;
        let mut in_folder = false;
        let mut nested = false;
        let mut vector = false;
        for item in &org.items {
            let (expected_types, data): (&[&str], _) = match item.item_type.as_str() {
                "Web Map" => (&["Feature Service", "Vector Tile Service"], json_data(item)),
                "Dashboard" => (&["Web Map", "Feature Service"], json_data(item)),
                "Web Mapping Application" => (&["Web Map"], json_data(item)),
                _ => continue,
            };
            let mut ids = Vec::new();
            item_ids(data, &mut ids);
            assert!(!ids.is_empty(), "{} references nothing", item.title);
            for id in ids {
                let target = by_id
                    .get(id.as_str())
                    .unwrap_or_else(|| panic!("{} references missing {id}", item.title));
                assert!(expected_types.contains(&target.item_type.as_str()));
                other_owner |= target.owner != item.owner;
                in_folder |= target.folder.is_some() && target.item_type == "Feature Service";
            }
            if item.item_type == "Web Map" {
                let layers = data["operationalLayers"].as_array().unwrap();
                nested |= layers.iter().any(|l| {
                    l["layerType"] == "GroupLayer" && !l["layers"].as_array().unwrap().is_empty()
                });
                assert!(!data["tables"].as_array().unwrap().is_empty());
                let basemap = &data["baseMap"]["baseMapLayers"][0];
                if basemap["layerType"] == "VectorTileLayer" {
                    let id = basemap["itemId"].as_str().unwrap();
                    assert!(basemap["styleUrl"].as_str().unwrap().contains(id));
                    vector = true;
                }
            }
            if item.item_type == "Web Mapping Application" {
                let url = item.url.as_deref().unwrap();
                assert!(url.ends_with(&format!("?appid={}", item.id)), "{url}");
            }
        }
        assert!(other_owner && in_folder && nested && vector);
    }

    #[test]
    fn sharing_follows_group_membership() {
        let org = generate(&medium());
        let groups: HashMap<&str, &Group> = org.groups.iter().map(|g| (g.id.as_str(), g)).collect();
        for group in &org.groups {
            assert!(group.admins.contains(&group.owner));
            assert!(group.users.contains(&group.owner));
            assert!(group.admins.iter().all(|a| group.users.contains(a)));
        }
        let ordinary_groups: Vec<&Group> = org.groups[4..].iter().collect();
        assert!(
            ordinary_groups.iter().any(|g| g.admins.len() > 1),
            "no managers"
        );
        assert!(ordinary_groups.iter().any(|g| g.owner == "admin"));
        assert!(ordinary_groups.iter().any(|g| g.owner != "admin"));
        assert!(ordinary_groups.iter().all(|g| g.users.len() >= 12));
        let mut accesses = BTreeSet::new();
        for item in &org.items {
            accesses.insert(item.access.as_str());
            match item.access.as_str() {
                "private" => assert!(item.groups.is_empty()),
                "shared" => assert!(!item.groups.is_empty()),
                _ => {}
            }
            for gid in &item.groups {
                assert!(groups[gid.as_str()].users.contains(&item.owner));
            }
        }
        assert_eq!(
            accesses,
            BTreeSet::from(["org", "private", "public", "shared"])
        );
        assert!(
            org.items.iter().any(|i| i.groups.len() >= 2),
            "no item in several groups"
        );
    }

    #[test]
    fn relationships_link_services_to_data_and_maps_to_services() {
        let org = generate(&medium());
        let by_id: HashMap<&str, &Item> = org.items.iter().map(|i| (i.id.as_str(), i)).collect();
        let mut seen = HashSet::new();
        let mut kinds = BTreeSet::new();
        for r in &org.relationships {
            assert!(seen.insert((&r.relationship_type, &r.origin, &r.destination)));
            let (origin, destination) = (by_id[r.origin.as_str()], by_id[r.destination.as_str()]);
            match r.relationship_type.as_str() {
                "Service2Data" => {
                    assert_eq!(origin.item_type, "Feature Service");
                    assert_eq!(destination.item_type, "CSV");
                    assert_eq!(origin.owner, destination.owner);
                }
                "Map2Service" => {
                    assert_eq!(origin.item_type, "Web Map");
                    assert_eq!(destination.item_type, "Feature Service");
                }
                other => panic!("unexpected relationship {other}"),
            }
            kinds.insert(r.relationship_type.as_str());
        }
        assert_eq!(kinds.len(), 2);
    }

    fn file_bytes(item: &Item) -> Vec<u8> {
        match &item.data {
            Some(ItemData::File(blob)) => base64::engine::general_purpose::STANDARD
                .decode(&blob.base64)
                .unwrap(),
            other => panic!("{} has no file: {other:?}", item.title),
        }
    }

    #[test]
    fn files_have_about_the_requested_size_and_their_format() {
        for target in [0, 1000, 20_000] {
            let org = generate(&GenerateSpec {
                file_bytes: target,
                users: 8,
                items_per_folder: 4,
                ..GenerateSpec::default()
            });
            let mut checked = BTreeSet::new();
            for item in &org.items {
                let extension = match item.item_type.as_str() {
                    "CSV" => "csv",
                    "GeoJson" => "geojson",
                    "PDF" => "pdf",
                    _ => continue,
                };
                let bytes = file_bytes(item);
                assert!(!bytes.is_empty());
                assert!(bytes.len() >= target, "{} bytes for {target}", bytes.len());
                // Small files are at least one well-formed document (a CSV header and row,
                // a GeoJSON feature, a one-page PDF), whatever the requested size.
                assert!(
                    bytes.len() <= target + 1024,
                    "{} bytes for {target}",
                    bytes.len()
                );
                assert_eq!(
                    item.name.as_deref().unwrap().rsplit('.').next(),
                    Some(extension)
                );
                match extension {
                    "csv" => {
                        let text = String::from_utf8(bytes).unwrap();
                        let widths: BTreeSet<usize> =
                            text.lines().map(|l| l.split(',').count()).collect();
                        assert_eq!(widths.len(), 1);
                        assert!(text.starts_with("id,site,state,latitude,longitude,status\n"));
                    }
                    "geojson" => {
                        let doc: Value = serde_json::from_slice(&bytes).unwrap();
                        assert_eq!(doc["type"], "FeatureCollection");
                    }
                    _ => {
                        assert!(bytes.starts_with(b"%PDF-"));
                        assert!(bytes.ends_with(b"%%EOF\n"));
                    }
                }
                checked.insert(extension);
            }
            assert_eq!(checked.len(), 3);
        }
    }

    #[test]
    fn file_size_changes_file_contents_only() {
        let small = generate(&medium());
        let large = generate(&GenerateSpec {
            file_bytes: 5000,
            ..medium()
        });
        assert_ne!(small, large);
        let strip = |org: &Fixture| {
            let mut org = org.clone();
            for item in &mut org.items {
                if let Some(ItemData::File(blob)) = &mut item.data {
                    blob.base64.clear();
                }
            }
            org
        };
        assert_eq!(strip(&small), strip(&large));
    }

    #[test]
    fn estimated_objects_counts_what_generate_builds() {
        for spec in [
            GenerateSpec::default(),
            medium(),
            spec("users=12,big-folder-items=30,groups=3"),
        ] {
            let org = generate(&spec);
            assert_eq!(estimated_objects(&spec), count_objects(&org));
            let lower_bound = org.users.len() + org.groups.len() + org.items.len();
            assert!(estimated_objects(&spec) > lower_bound);
        }
    }

    #[test]
    fn identity_provider_users_and_custom_roles() {
        let org = generate(&spec("users=20,enterprise-users=3,custom-roles=true"));
        let ordinary = &org.users[5..];
        for user in &ordinary[..17] {
            assert_eq!(user.provider, "arcgis");
            assert_eq!(user.password, "user-sample-pw");
        }
        for user in &ordinary[17..] {
            assert_eq!(user.provider, "enterprise");
            assert!(user.idp_username.as_deref().unwrap().contains('@'));
        }
        let role_ids: BTreeSet<&str> = ordinary
            .iter()
            .filter_map(|u| u.role_id.as_deref())
            .collect();
        assert_eq!(role_ids.len(), 2);
        assert!(ordinary
            .iter()
            .filter(|u| u.role_id.is_some())
            .all(|u| u.role == "org_user"));
        let plain = generate(&spec("users=20"));
        assert!(plain
            .users
            .iter()
            .all(|u| u.role_id.is_none() && u.provider == "arcgis"));
    }

    #[test]
    fn target_is_an_empty_portal_of_the_same_kind() {
        let spec = spec("mode=multitenant,admin-password=t0p");
        let source = generate(&spec);
        let target = generate_target(&spec);
        assert_eq!(target.users.len(), 1);
        assert_eq!(target.users[0].username, "admin");
        assert_eq!(target.users[0].password, "t0p");
        assert!(target.groups.is_empty() && target.items.is_empty());
        assert_eq!(target.portal.portal_mode, "multitenant");
        assert_ne!(target.portal.id, source.portal.id);
        assert_ne!(target.users[0].id, source.users[0].id);
    }
}
