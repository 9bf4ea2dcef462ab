//! Users, groups and items as [`Document`]s for the search endpoints' query matching.

use super::query::Document;
use crate::fixture::{Group, Item, User};

pub struct UserDoc<'a> {
    pub user: &'a User,
    pub org_id: &'a str,
}

impl Document for UserDoc<'_> {
    fn field(&self, name: &str) -> Vec<String> {
        let u = self.user;
        match name {
            "id" => vec![u.id.clone()],
            "username" => vec![u.username.clone()],
            "fullname" => vec![u.full_name.clone()],
            "firstname" => vec![u.first_name.clone()],
            "lastname" => vec![u.last_name.clone()],
            "email" => vec![u.email.clone()],
            "role" => vec![u.role.clone()],
            "roleid" => u.role_id.iter().cloned().collect(),
            "tags" => u.tags.clone(),
            "accountid" | "orgid" => vec![self.org_id.to_owned()],
            "provider" => vec![u.provider.clone()],
            "access" => vec![u.access.clone()],
            "userlicensetype" | "userlicensetypeid" => vec![u.user_license_type_id.clone()],
            "created" => vec![u.created.to_string()],
            "modified" => vec![u.modified.to_string()],
            _ => vec![],
        }
    }

    fn free_text(&self) -> Vec<String> {
        let u = self.user;
        vec![
            u.username.clone(),
            u.full_name.clone(),
            u.first_name.clone(),
            u.last_name.clone(),
            u.email.clone(),
        ]
    }
}

pub struct GroupDoc<'a> {
    pub group: &'a Group,
    pub org_id: &'a str,
}

impl Document for GroupDoc<'_> {
    fn field(&self, name: &str) -> Vec<String> {
        let g = self.group;
        match name {
            "id" => vec![g.id.clone()],
            "title" => vec![g.title.clone()],
            "owner" => vec![g.owner.clone()],
            "tags" => g.tags.clone(),
            "typekeywords" => vec![],
            "access" => vec![g.access.clone()],
            "accountid" | "orgid" => vec![self.org_id.to_owned()],
            "snippet" => g.snippet.iter().cloned().collect(),
            "description" => g.description.iter().cloned().collect(),
            "created" => vec![g.created.to_string()],
            "modified" => vec![g.modified.to_string()],
            _ => vec![],
        }
    }

    fn free_text(&self) -> Vec<String> {
        let g = self.group;
        let mut text = vec![g.title.clone(), g.owner.clone()];
        text.extend(g.tags.iter().cloned());
        text.extend(g.snippet.iter().cloned());
        text.extend(g.description.iter().cloned());
        text
    }
}

pub struct ItemDoc<'a> {
    pub item: &'a Item,
    pub org_id: &'a str,
}

impl Document for ItemDoc<'_> {
    fn field(&self, name: &str) -> Vec<String> {
        let i = self.item;
        match name {
            "id" => vec![i.id.clone()],
            "title" => vec![i.title.clone()],
            "type" => vec![i.item_type.clone()],
            "typekeywords" => i.type_keywords.clone(),
            "tags" => i.tags.clone(),
            "owner" => vec![i.owner.clone()],
            "accountid" | "orgid" => vec![self.org_id.to_owned()],
            "group" => i.groups.clone(),
            "access" => vec![i.access.clone()],
            "name" => i.name.iter().cloned().collect(),
            "snippet" => i.snippet.iter().cloned().collect(),
            "description" => i.description.iter().cloned().collect(),
            "url" => i.url.iter().cloned().collect(),
            "folder" => i.folder.iter().cloned().collect(),
            "created" => vec![i.created.to_string()],
            "modified" => vec![i.modified.to_string()],
            _ => vec![],
        }
    }

    fn free_text(&self) -> Vec<String> {
        let i = self.item;
        let mut text = vec![i.title.clone(), i.item_type.clone(), i.owner.clone()];
        text.extend(i.tags.iter().cloned());
        text.extend(i.type_keywords.iter().cloned());
        text.extend(i.snippet.iter().cloned());
        text.extend(i.description.iter().cloned());
        text.extend(i.name.iter().cloned());
        text
    }
}
