//! `portal-migrate verify`: compares the target with the source through the id map of the
//! state file, object by object, and reports each as equal, differing (which fields, both
//! values), missing or unreadable, like `rclone check`.
//!
//! The set of objects comes from the state file: every user, group, folder and item task
//! discovery created (so the configured filters apply), mapped or not. The state file is
//! opened read-only and only for the first moment, so `verify` works during a run. What the
//! target *should* hold is derived with the migration's own rules: the username rename map,
//! role and license maps, group access translation, and for item JSON and URLs the reference
//! rewriting of [`crate::clone::remap`].

mod diff;
mod item;
mod objects;
mod report;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::OnceCell;

use crate::clone::folder::FolderTask;
use crate::clone::item::ItemTask;
use crate::clone::{text, TaskKind};
use crate::engine::portal_spec;
use crate::portal::{Portal, PortalError};
use crate::settings::Settings;
use crate::store::{PortalIdentity, Store, StoreError, TaskRow, TaskState};

pub use report::{Difference, KindSummary, ObjectKind, ObjectReport, Outcome, VerifyReport};

/// What stops `verify` from comparing anything at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Portal(#[from] PortalError),
    #[error("{}: no migration is recorded in this state file yet; run `portal-migrate run` first", path.display())]
    NothingMigrated { path: PathBuf },
    #[error(
        "the state file belongs to the migration {recorded_source} → {recorded_target}, but the configuration signs in to {source_portal} → {target_portal}; point state.path at this pair's state file"
    )]
    WrongPair {
        recorded_source: String,
        recorded_target: String,
        source_portal: String,
        target_portal: String,
    },
    #[error("reading the state file was interrupted: {0}")]
    Background(String),
}

/// Compares every object the migration covers. Errors reading one object are part of the
/// report; only a state file that cannot be read, a failed sign-in or a state file of another
/// migration end it early.
pub async fn verify(settings: Settings) -> Result<VerifyReport, VerifyError> {
    let path = settings.state.path.clone();
    let loaded = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || State::load(&path))
            .await
            .map_err(|join| VerifyError::Background(join.to_string()))??
    };
    let Some((recorded_source, recorded_target)) = loaded.pair.clone() else {
        return Err(VerifyError::NothingMigrated { path });
    };
    let (source, target) = tokio::try_join!(
        Portal::connect(portal_spec("source", &settings.source)),
        Portal::connect(portal_spec("target", &settings.target)),
    )?;
    if !same_portal(&recorded_source, &source) || !same_portal(&recorded_target, &target) {
        return Err(VerifyError::WrongPair {
            recorded_source: describe(&recorded_source),
            recorded_target: describe(&recorded_target),
            source_portal: format!("{} (portal id {})", source.url(), source.info().id),
            target_portal: format!("{} (portal id {})", target.url(), target.info().id),
        });
    }

    let concurrency = settings.workers.count.max(1);
    let (jobs, mut results, skipped) = plan(&loaded);
    let roles = crate::clone::user::RoleDirectory::load(&source, &target).await?;
    let verifier = Arc::new(Verifier {
        settings: Arc::new(settings),
        source,
        target,
        maps: loaded.maps,
        roles,
        source_folders: Cache::default(),
        target_folders: Cache::default(),
        target_users: Cache::default(),
    });
    let compared: Vec<ObjectReport> = futures::stream::iter(jobs)
        .map(|job| {
            let verifier = verifier.clone();
            async move { verifier.compare(job).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.extend(compared);
    Ok(VerifyReport::new(
        path.display().to_string(),
        format!("{} ({})", recorded_source.url, recorded_source.name),
        format!("{} ({})", recorded_target.url, recorded_target.name),
        results,
        &skipped,
    ))
}

/// Source id → target id, per kind, as the state file records them.
#[derive(Debug, Default)]
pub(crate) struct Maps {
    pub users: HashMap<String, String>,
    pub groups: HashMap<String, String>,
    pub folders: HashMap<String, String>,
    pub items: HashMap<String, String>,
}

/// Everything `verify` needs from the state file, read at once so the file is not held open.
struct State {
    pair: Option<(PortalIdentity, PortalIdentity)>,
    maps: Maps,
    tasks: Vec<(ObjectKind, TaskRow)>,
}

impl State {
    fn load(path: &std::path::Path) -> Result<State, StoreError> {
        let store = Store::open_readonly(path)?;
        let maps = Maps {
            users: store.id_map(TaskKind::User.as_str())?,
            groups: store.id_map(TaskKind::Group.as_str())?,
            folders: store.id_map(TaskKind::Folder.as_str())?,
            items: store.id_map(TaskKind::Item.as_str())?,
        };
        let mut tasks = Vec::new();
        for (kind, task_kind) in [
            (ObjectKind::User, TaskKind::User),
            (ObjectKind::Group, TaskKind::Group),
            (ObjectKind::Folder, TaskKind::Folder),
            (ObjectKind::Item, TaskKind::Item),
        ] {
            tasks.extend(
                store
                    .tasks_of_kind(task_kind.as_str())?
                    .into_iter()
                    .map(|row| (kind, row)),
            );
        }
        Ok(State {
            pair: store.pair()?,
            maps,
            tasks,
        })
    }
}

/// One mapped object to compare.
struct Job {
    kind: ObjectKind,
    source_id: String,
    target_id: String,
    label: String,
    task: TaskRow,
}

/// Splits the tasks into comparisons to make, objects already known to be missing (no
/// mapping) and per-kind counts of objects skipped by policy.
fn plan(state: &State) -> (Vec<Job>, Vec<ObjectReport>, Vec<(ObjectKind, u64)>) {
    let mut jobs = Vec::new();
    let mut missing = Vec::new();
    let mut skipped: HashMap<ObjectKind, u64> = HashMap::new();
    for (kind, task) in &state.tasks {
        if task.state == TaskState::Skipped {
            *skipped.entry(*kind).or_default() += 1;
            continue;
        }
        let (source_id, map) = match kind {
            ObjectKind::User => (task.source_key.clone(), &state.maps.users),
            ObjectKind::Group => (task.source_key.clone(), &state.maps.groups),
            ObjectKind::Item => (task.source_key.clone(), &state.maps.items),
            // The folder task's key is `owner/folder id`; the id map keeps the folder id.
            ObjectKind::Folder => (
                task.source_key
                    .rsplit('/')
                    .next()
                    .unwrap_or(&task.source_key)
                    .to_string(),
                &state.maps.folders,
            ),
        };
        match map.get(&source_id) {
            Some(target_id) => jobs.push(Job {
                kind: *kind,
                source_id,
                target_id: target_id.clone(),
                label: task.title.clone(),
                task: task.clone(),
            }),
            None => missing.push(ObjectReport {
                kind: *kind,
                source_id,
                target_id: None,
                label: task.title.clone(),
                outcome: Outcome::Missing {
                    reason: never_migrated(task),
                },
            }),
        }
    }
    (jobs, missing, skipped.into_iter().collect())
}

fn never_migrated(task: &TaskRow) -> String {
    let mut reason = format!("never migrated (its task is {})", task.state);
    if let Some(error) = &task.last_error {
        reason.push_str(": ");
        reason.push_str(error);
    }
    reason
}

/// Shared by every comparison: both portals, the settings, the id maps, and per-owner lookups
/// that many objects need (folder lists, whether a user exists in the target).
pub(crate) struct Verifier {
    pub settings: Arc<Settings>,
    pub source: Portal,
    pub target: Portal,
    pub maps: Maps,
    /// Custom roles of both portals, to expect the role the migration gives.
    pub roles: crate::clone::user::RoleDirectory,
    source_folders: Cache<Arc<Vec<(String, String)>>>,
    target_folders: Cache<Arc<Vec<(String, String)>>>,
    target_users: Cache<bool>,
}

/// What one comparison found, before it becomes an [`Outcome`].
pub(crate) enum Compared {
    Diffs(Vec<Difference>),
    Missing(String),
}

impl Verifier {
    async fn compare(&self, job: Job) -> ObjectReport {
        let result = match job.kind {
            ObjectKind::User => objects::user(self, &job.source_id, &job.target_id).await,
            ObjectKind::Group => objects::group(self, &job.source_id, &job.target_id).await,
            ObjectKind::Folder => {
                match serde_json::from_value::<FolderTask>(job.task.payload.clone()) {
                    Ok(folder) => objects::folder(self, &folder, &job.target_id).await,
                    Err(e) => Err(format!("the folder task's payload cannot be read: {e}")),
                }
            }
            ObjectKind::Item => {
                match serde_json::from_value::<ItemTask>(job.task.payload.clone()) {
                    Ok(task) => item::item(self, &task, &job.source_id, &job.target_id).await,
                    Err(e) => Err(format!("the item task's payload cannot be read: {e}")),
                }
            }
        };
        let outcome = match result {
            Ok(Compared::Diffs(differences)) if differences.is_empty() => Outcome::Equal,
            Ok(Compared::Diffs(differences)) => Outcome::Differ { differences },
            Ok(Compared::Missing(reason)) => Outcome::Missing { reason },
            Err(error) => Outcome::Error { error },
        };
        ObjectReport {
            kind: job.kind,
            source_id: job.source_id,
            target_id: Some(job.target_id),
            label: job.label,
            outcome,
        }
    }

    /// The target username for a source username: the id map's, else the rename rule's.
    pub fn target_username(&self, source_username: &str) -> String {
        self.maps
            .users
            .get(source_username)
            .cloned()
            .unwrap_or_else(|| configured_username(&self.settings, source_username))
    }

    /// (folder id, title) of the source user's folders.
    pub async fn source_folders(
        &self,
        owner: &str,
    ) -> Result<Arc<Vec<(String, String)>>, PortalError> {
        self.source_folders
            .get(owner, || folders_of(&self.source, owner))
            .await
    }

    pub async fn target_folders(
        &self,
        owner: &str,
    ) -> Result<Arc<Vec<(String, String)>>, PortalError> {
        self.target_folders
            .get(owner, || folders_of(&self.target, owner))
            .await
    }

    pub async fn target_has_user(&self, username: &str) -> Result<bool, PortalError> {
        let key = username.to_ascii_lowercase();
        self.target_users
            .get(&key, || async {
                Ok(self.target.user(username).await?.is_some())
            })
            .await
    }
}

/// The username the `users.rename` setting gives a source user.
pub(crate) fn configured_username(settings: &Settings, source_username: &str) -> String {
    settings
        .users
        .rename
        .get(source_username)
        .cloned()
        .unwrap_or_else(|| source_username.to_string())
}

async fn folders_of(
    portal: &Portal,
    owner: &str,
) -> Result<Arc<Vec<(String, String)>>, PortalError> {
    let listing = portal.user_content(owner, None).await?;
    Ok(Arc::new(
        listing
            .folders
            .iter()
            .filter_map(|folder| Some((text(folder, "id")?, text(folder, "title")?)))
            .collect(),
    ))
}

/// A lookup made once per key however many comparisons ask at the same time; failures are
/// not remembered, so the next asker tries again.
struct Cache<V> {
    slots: Mutex<HashMap<String, Arc<OnceCell<V>>>>,
}

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Cache {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Cache<V> {
    async fn get<F, Fut>(&self, key: &str, load: F) -> Result<V, PortalError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, PortalError>>,
    {
        let cell = {
            // The map is only touched briefly and never across an await; a poisoned lock
            // still holds a consistent map.
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.entry(key.to_string()).or_default().clone()
        };
        cell.get_or_try_init(load).await.cloned()
    }
}

fn same_portal(recorded: &PortalIdentity, portal: &Portal) -> bool {
    let normalize = |text: &str| match url::Url::parse(text.trim()) {
        Ok(parsed) => parsed.to_string().trim_end_matches('/').to_string(),
        Err(_) => text.trim().trim_end_matches('/').to_string(),
    };
    normalize(&recorded.url) == normalize(portal.url().as_str())
        && recorded.portal_id.eq_ignore_ascii_case(&portal.info().id)
}

fn describe(portal: &PortalIdentity) -> String {
    format!("{} (portal id {})", portal.url, portal.portal_id)
}
