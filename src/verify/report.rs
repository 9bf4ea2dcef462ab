//! What `verify` answers: one outcome per object and a summary per kind, printable like
//! `rclone check --combined` (`*` differs, `-` missing, `!` error) or as JSON.

use std::fmt;

use serde::Serialize;

/// The kinds of object `verify` compares. Memberships, sharing and relationships are
/// properties of their group or item, so a lost member shows up on the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    User,
    Group,
    Folder,
    Item,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 4] = [
        ObjectKind::User,
        ObjectKind::Group,
        ObjectKind::Folder,
        ObjectKind::Item,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::User => "user",
            ObjectKind::Group => "group",
            ObjectKind::Folder => "folder",
            ObjectKind::Item => "item",
        }
    }
}

/// One field whose target value is not what the source says it should be. `source` is the
/// expected value (the source's, after the migration's mappings), `target` what the target has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub field: String,
    pub source: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Equal,
    Differ {
        differences: Vec<Difference>,
    },
    /// Mapped but gone from the target, or never mapped; `reason` says which.
    Missing {
        reason: String,
    },
    /// A read failed, so nothing can be said about this object.
    Error {
        error: String,
    },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Equal => "equal",
            Outcome::Differ { .. } => "differ",
            Outcome::Missing { .. } => "missing",
            Outcome::Error { .. } => "error",
        }
    }

    /// The fields that differ (empty unless `Differ`).
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Outcome::Differ { differences } => {
                differences.iter().map(|d| d.field.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectReport {
    pub kind: ObjectKind,
    /// Username for users, id for everything else.
    pub source_id: String,
    /// From the id map; `None` when the object was never mapped.
    pub target_id: Option<String>,
    /// The object as the state file names it, e.g. `item 'AR' (CSV) of brown.rogers`.
    pub label: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KindSummary {
    pub kind: String,
    pub equal: u64,
    pub differ: u64,
    pub missing: u64,
    pub error: u64,
    /// Objects the `existing` policy told the migration to skip: not compared.
    pub skipped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// `ok` when every compared object is equal, else `differences`.
    pub status: String,
    pub state_file: String,
    pub source: String,
    pub target: String,
    pub summary: Vec<KindSummary>,
    /// Every compared object, equal ones included, ordered by kind then label.
    pub objects: Vec<ObjectReport>,
}

impl VerifyReport {
    pub(super) fn new(
        state_file: String,
        source: String,
        target: String,
        mut objects: Vec<ObjectReport>,
        skipped: &[(ObjectKind, u64)],
    ) -> VerifyReport {
        objects.sort_by(|a, b| {
            (a.kind, &a.label, &a.source_id).cmp(&(b.kind, &b.label, &b.source_id))
        });
        let summary: Vec<KindSummary> = ObjectKind::ALL
            .iter()
            .map(|kind| {
                let mut row = KindSummary {
                    kind: kind.as_str().to_string(),
                    skipped: skipped
                        .iter()
                        .filter(|(k, _)| k == kind)
                        .map(|(_, n)| n)
                        .sum(),
                    ..KindSummary::default()
                };
                for object in objects.iter().filter(|o| o.kind == *kind) {
                    match object.outcome {
                        Outcome::Equal => row.equal += 1,
                        Outcome::Differ { .. } => row.differ += 1,
                        Outcome::Missing { .. } => row.missing += 1,
                        Outcome::Error { .. } => row.error += 1,
                    }
                }
                row
            })
            .collect();
        let ok = objects.iter().all(|o| o.outcome == Outcome::Equal);
        VerifyReport {
            status: if ok { "ok" } else { "differences" }.to_string(),
            state_file,
            source,
            target,
            summary,
            objects,
        }
    }

    /// True when nothing differs, is missing or could not be read: the exit code 0 case.
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    pub fn summary(&self, kind: ObjectKind) -> KindSummary {
        self.summary
            .iter()
            .find(|row| row.kind == kind.as_str())
            .cloned()
            .unwrap_or_default()
    }

    /// The report on one source object (username for users, id otherwise).
    pub fn object(&self, kind: ObjectKind, source_id: &str) -> Option<&ObjectReport> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.source_id.eq_ignore_ascii_case(source_id))
    }

    pub fn not_equal(&self) -> impl Iterator<Item = &ObjectReport> {
        self.objects.iter().filter(|o| o.outcome != Outcome::Equal)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "state file: {}", self.state_file)?;
        writeln!(f, "migration:  {} → {}", self.source, self.target)?;
        writeln!(f)?;
        for row in &self.summary {
            write!(
                f,
                "{:<8}{:>6} equal{:>6} differ{:>6} missing{:>6} error",
                row.kind, row.equal, row.differ, row.missing, row.error
            )?;
            if row.skipped > 0 {
                write!(
                    f,
                    "   ({} skipped by the existing-object policy, not compared)",
                    row.skipped
                )?;
            }
            writeln!(f)?;
        }
        let mut any = false;
        for object in self.not_equal() {
            if !any {
                writeln!(f)?;
                any = true;
            }
            let ids = match &object.target_id {
                Some(target) => format!("{} → {target}", object.source_id),
                None => object.source_id.clone(),
            };
            match &object.outcome {
                Outcome::Equal => {}
                Outcome::Differ { differences } => {
                    let fields: Vec<String> = differences
                        .iter()
                        .map(|d| {
                            format!("{}: source {:?} target {:?}", d.field, d.source, d.target)
                        })
                        .collect();
                    writeln!(
                        f,
                        "* {} [{ids}] differs: {}",
                        object.label,
                        fields.join("; ")
                    )?;
                }
                Outcome::Missing { reason } => {
                    writeln!(f, "- {} [{ids}] missing: {reason}", object.label)?
                }
                Outcome::Error { error } => {
                    writeln!(f, "! {} [{ids}] error: {error}", object.label)?
                }
            }
        }
        writeln!(f)?;
        let count = |pick: fn(&KindSummary) -> u64| self.summary.iter().map(pick).sum::<u64>();
        if self.is_ok() {
            writeln!(f, "ok: all {} objects are equal", count(|r| r.equal))
        } else {
            writeln!(
                f,
                "differences: {} differ, {} missing, {} errors, {} equal",
                count(|r| r.differ),
                count(|r| r.missing),
                count(|r| r.error),
                count(|r| r.equal)
            )
        }
    }
}
