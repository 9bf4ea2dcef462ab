//! Which source objects take part in the migration, from the `users`, `groups` and `items`
//! settings. Decided once at discovery; excluded objects never get a task.

use serde_json::Value;

use crate::clone::text;
use crate::settings::Settings;

pub struct Filters<'a> {
    settings: &'a Settings,
    /// The account the migration signs in with: the portal's administrator, which the
    /// target has already and which must never be overwritten.
    signed_in: &'a str,
}

impl<'a> Filters<'a> {
    pub fn new(settings: &'a Settings, signed_in: &'a str) -> Filters<'a> {
        Filters {
            settings,
            signed_in,
        }
    }

    pub fn user(&self, username: &str) -> bool {
        let users = &self.settings.users;
        if users.exclude_default_admin && username.eq_ignore_ascii_case(self.signed_in) {
            return false;
        }
        if users.exclude.iter().any(|p| p.matches(username)) {
            return false;
        }
        users.include.is_empty() || users.include.iter().any(|p| p.matches(username))
    }

    pub fn group(&self, title: &str, owner: &str) -> bool {
        let groups = &self.settings.groups;
        if groups.exclude_owners.iter().any(|p| p.matches(owner))
            || groups.exclude_titles.iter().any(|p| p.matches(title))
        {
            return false;
        }
        groups.include_titles.is_empty() || groups.include_titles.iter().any(|p| p.matches(title))
    }

    pub fn folder(&self, title: &str) -> bool {
        let items = &self.settings.items;
        if items.exclude_folders.iter().any(|p| p.matches(title)) {
            return false;
        }
        items.include_folders.is_empty() || items.include_folders.iter().any(|p| p.matches(title))
    }

    pub fn item(&self, item: &Value) -> bool {
        let items = &self.settings.items;
        let item_type = text(item, "type").unwrap_or_default();
        if items.exclude_types.iter().any(|t| t == &item_type)
            || (!items.include_types.is_empty() && !items.include_types.contains(&item_type))
        {
            return false;
        }
        let tags: Vec<&str> = item
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| tags.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if items
            .exclude_tags
            .iter()
            .any(|p| tags.iter().any(|tag| p.matches(tag)))
        {
            return false;
        }
        if !items.include_tags.is_empty()
            && !items
                .include_tags
                .iter()
                .any(|p| tags.iter().any(|tag| p.matches(tag)))
        {
            return false;
        }
        match (
            items.modified_after,
            item.get("modified").and_then(Value::as_i64),
        ) {
            (Some(after), Some(modified)) => modified >= after,
            _ => true,
        }
    }
}
