//! Finding the item ids an item's JSON points at. Web maps, apps and dashboards name other
//! items in many places (operational layers, nested group layers, tables, basemap layers,
//! `values.webmap`, widgets, `?appid=` in URLs); rather than chase every schema, any 32-hex
//! token is a candidate, and `link` keeps only those that are items of this migration.

/// Item types whose data may name other items.
pub const HOLDS_REFERENCES: &[&str] = &[
    "Web Map",
    "Web Scene",
    "Web Mapping Application",
    "Dashboard",
    "Operation View",
    "StoryMap",
    "Web Experience",
    "Hub Site Application",
    "Hub Page",
    "Solution",
    "Application",
    "Insights Page",
    "Insights Workbook",
    "Workforce Project",
    "QuickCapture Project",
    "Form",
    "Mobile Application",
];

/// Every maximal run of exactly 32 hexadecimal characters in `text`, lowercased.
pub fn referenced_ids(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut ids = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_hexdigit() {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
            end += 1;
        }
        let bounded_after = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
        let bounded_before = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        if end - start == 32 && bounded_after && bounded_before {
            ids.push(text[start..end].to_ascii_lowercase());
        }
        start = end;
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ids_in_layers_urls_and_style_urls() {
        let json = r#"{"operationalLayers":[{"itemId":"aaa6ad38f9c24b4294a4c6d0994fc7c7"},
            {"layers":[{"itemId":"882009025e11471caad3f48389fde221"}]}],
            "url":"https://x/apps/View/index.html?appid=71b66b8e628b46c9850cefd91f67f604",
            "styleUrl":"https://p/sharing/rest/content/items/f9866c5a2be0428abe1c7097993d9b36/resources/styles/root.json",
            "notAnId":"aaa6ad38f9c24b4294a4c6d0994fc7c7ff", "short":"abc123"}"#;
        assert_eq!(
            referenced_ids(json),
            vec![
                "aaa6ad38f9c24b4294a4c6d0994fc7c7",
                "882009025e11471caad3f48389fde221",
                "71b66b8e628b46c9850cefd91f67f604",
                "f9866c5a2be0428abe1c7097993d9b36"
            ]
        );
    }
}
