//! Rewriting references inside item JSON and URLs: every source item or group id that was
//! migrated becomes its target id, and service URLs move by the configured URL map. Like the
//! portal's own cloner this works on the serialized text, so references in any schema (web
//! maps, apps, dashboards, experiences) are found without knowing it.

use std::collections::HashMap;

use crate::clone::{TaskError, TaskKind};
use crate::engine::Context;
use crate::plan::referenced_ids;

/// The result of a rewrite: the new text and the ids that looked like references but have no
/// counterpart in the target (reported, since they still point at the source).
pub struct Rewritten {
    pub text: String,
    pub unmapped: Vec<String>,
}

/// Looks up every 32-hex token of `text` in the id map (items, then groups).
pub async fn id_map_for(
    ctx: &Context,
    text: &str,
) -> Result<HashMap<String, Option<String>>, TaskError> {
    let ids = referenced_ids(text);
    Ok(ctx
        .store
        .call(move |s| {
            let mut found = HashMap::new();
            for id in ids {
                let target = match s.target_id(TaskKind::Item.as_str(), &id)? {
                    Some(target) => Some(target),
                    None => s.target_id(TaskKind::Group.as_str(), &id)?,
                };
                found.insert(id, target);
            }
            Ok(found)
        })
        .await?)
}

pub fn rewrite(
    text: &str,
    ids: &HashMap<String, Option<String>>,
    url_map: &[(String, String)],
    own_source_id: &str,
) -> Rewritten {
    let mut out = text.to_string();
    // Longest source prefix first (the settings keep that order), so a service root is not
    // half-rewritten by a shorter root that contains it.
    for (from, to) in url_map {
        out = out.replace(from.as_str(), to.as_str());
    }
    let mut unmapped = Vec::new();
    for (source, target) in ids {
        match target {
            Some(target) => {
                out = out.replace(source.as_str(), target);
                let upper = source.to_ascii_uppercase();
                if out.contains(&upper) {
                    out = out.replace(&upper, target);
                }
            }
            None if source != own_source_id => unmapped.push(source.clone()),
            None => {}
        }
    }
    unmapped.sort();
    Rewritten {
        text: out,
        unmapped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_ids_and_urls_and_reports_the_rest() {
        let mut ids = HashMap::new();
        ids.insert(
            "aaa6ad38f9c24b4294a4c6d0994fc7c7".to_string(),
            Some("11111111111111111111111111111111".to_string()),
        );
        ids.insert("882009025e11471caad3f48389fde221".to_string(), None);
        let url_map = vec![(
            "https://old.example.com/arcgis/rest/services".to_string(),
            "https://new.example.com/server/rest/services".to_string(),
        )];
        let text = r#"{"itemId":"aaa6ad38f9c24b4294a4c6d0994fc7c7","other":"882009025e11471caad3f48389fde221","url":"https://old.example.com/arcgis/rest/services/AR/FeatureServer/0"}"#;
        let out = rewrite(text, &ids, &url_map, "ffffffffffffffffffffffffffffffff");
        assert_eq!(
            out.text,
            r#"{"itemId":"11111111111111111111111111111111","other":"882009025e11471caad3f48389fde221","url":"https://new.example.com/server/rest/services/AR/FeatureServer/0"}"#
        );
        assert_eq!(out.unmapped, vec!["882009025e11471caad3f48389fde221"]);
    }
}
