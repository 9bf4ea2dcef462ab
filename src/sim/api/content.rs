//! Content: folder listings, folders, items (add, read, data, info files, update, delete,
//! reassign, move), multipart uploads and item search.

use super::users::parse_query;
use super::{
    can_see_item, editable_item, page, sort_by_request, text_key, visible_item, Ctx, Reply, SortKey,
};
use crate::fixture::{Folder, Item, Metadata};
use crate::sim::error::{ApiError, ApiResult};
use crate::sim::files::{FileBody, SpooledPart};
use crate::sim::render::{folder_json, item_json};
use crate::sim::search::ItemDoc;
use crate::sim::state::{decode_blob, encode_blob, new_id, Data, PendingUpload, SimItem, State};
use bytes::Bytes;
use serde_json::{json, Value};

pub fn content_type_for(name: &str) -> &'static str {
    let extension = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "csv" => "text/csv",
        "json" | "geojson" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "kml" => "application/vnd.google-earth.kml+xml",
        "kmz" => "application/vnd.google-earth.kmz",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

fn info_not_found() -> ApiError {
    ApiError::new(
        400,
        Some("CONT_0036"),
        "Item info file does not exist or is inaccessible.",
    )
}

/// The folder `folder_id` of `username`, or an error.
fn user_folder(state: &State, username: &str, folder_id: &str) -> ApiResult<Folder> {
    let user = state
        .user(username)
        .ok_or_else(|| ApiError::user_not_found(username))?;
    user.folders
        .iter()
        .find(|f| f.id == folder_id)
        .cloned()
        .ok_or_else(ApiError::folder_not_found)
}

pub fn listing(ctx: &Ctx, state: &State, username: &str, folder: Option<&str>) -> ApiResult<Reply> {
    let user = state
        .user(username)
        .ok_or_else(|| ApiError::user_not_found(username))?;
    ctx.require_self_or_admin(&user.username)?;
    let current = match folder {
        Some(id) => Some(user_folder(state, &user.username, id)?),
        None => None,
    };
    let title = current.as_ref().map(|f| f.title.as_str());
    let items: Vec<&SimItem> = state
        .items
        .values()
        .filter(|i| {
            i.item.owner.eq_ignore_ascii_case(&user.username) && i.item.folder.as_deref() == title
        })
        .collect();
    let total = items.len();
    let (start, num) = ctx.req.paging();
    let (page, next) = page(items, start, num);
    let items: Vec<Value> = page.iter().map(|i| item_json(state, i)).collect();
    let folders: Vec<Value> = user
        .folders
        .iter()
        .map(|f| folder_json(&user.username, f))
        .collect();
    Ok(Reply::Json(json!({
        "username": user.username,
        "total": total, "start": start, "num": num, "nextStart": next,
        "currentFolder": current.as_ref().map(|f| folder_json(&user.username, f)),
        "items": items,
        "folders": folders,
    })))
}

pub fn create_folder(ctx: &Ctx, state: &mut State, username: &str) -> ApiResult<Reply> {
    ctx.require_self_or_admin(username)?;
    let title = ctx.req.require("title")?.to_owned();
    let now = ctx.now;
    let sim = state
        .user_mut(username)
        .ok_or_else(|| ApiError::user_not_found(username))?;
    if sim
        .user
        .folders
        .iter()
        .any(|f| f.title.eq_ignore_ascii_case(&title))
    {
        return Err(ApiError::new(400, None, "Unable to create folder.")
            .with_details([format!("Folder title '{title}' not available.")]));
    }
    let folder = Folder {
        id: new_id(),
        title,
        created: now,
    };
    sim.user.folders.push(folder.clone());
    Ok(Reply::Json(json!({
        "success": true,
        "folder": {"username": sim.user.username, "id": folder.id, "title": folder.title},
    })))
}

fn remove_items(state: &mut State, ids: &[String]) {
    for id in ids {
        state.items.shift_remove(id);
    }
    state
        .relationships
        .retain(|r| !ids.contains(&r.origin) && !ids.contains(&r.destination));
}

/// Deleting a folder deletes the items in it, as on a real portal.
pub fn delete_folder(
    ctx: &Ctx,
    state: &mut State,
    username: &str,
    folder_id: &str,
) -> ApiResult<Reply> {
    ctx.require_self_or_admin(username)?;
    let folder = user_folder(state, username, folder_id)?;
    let owner = state
        .user(username)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let doomed: Vec<String> = state
        .items
        .values()
        .filter(|i| {
            i.item.owner.eq_ignore_ascii_case(&owner)
                && i.item.folder.as_deref() == Some(&folder.title)
        })
        .map(|i| i.item.id.clone())
        .collect();
    remove_items(state, &doomed);
    if let Some(sim) = state.user_mut(&owner) {
        sim.user.folders.retain(|f| f.id != folder.id);
    }
    Ok(Reply::Json(json!({
        "success": true,
        "folder": {"username": owner, "id": folder.id, "title": folder.title},
    })))
}

/// `"xmin,ymin,xmax,ymax"`, a JSON array of corners or an extent object → `[[..],[..]]`.
fn parse_extent(text: &str) -> ApiResult<Value> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(json!([]));
    }
    let invalid = || ApiError::bad_request(format!("Invalid extent '{text}'."));
    if text.starts_with('[') || text.starts_with('{') {
        let value: Value = serde_json::from_str(text).map_err(|_| invalid())?;
        if value.is_array() {
            return Ok(value);
        }
        let corner = |a: &str, b: &str| -> Option<Value> {
            Some(json!([value.get(a)?.as_f64()?, value.get(b)?.as_f64()?]))
        };
        return match (corner("xmin", "ymin"), corner("xmax", "ymax")) {
            (Some(low), Some(high)) => Ok(json!([low, high])),
            _ => Err(invalid()),
        };
    }
    let numbers: Vec<f64> = text
        .split(',')
        .map(|n| n.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| invalid())?;
    match numbers.as_slice() {
        [xmin, ymin, xmax, ymax] => Ok(json!([[xmin, ymin], [xmax, ymax]])),
        _ => Err(invalid()),
    }
}

/// Applies the item properties and content present in the request. On create, blank
/// values are simply absent; on update they clear only with `clearEmptyFields=true`.
fn apply_item_fields(ctx: &Ctx, item: &mut Item, data: &mut Option<Data>) -> ApiResult<()> {
    let req = ctx.req;
    let clear = req.bool("clearemptyfields") == Some(true);
    let set_opt = |key: &str, target: &mut Option<String>| match req.get(key) {
        Some(value) => *target = Some(value.to_owned()),
        None if clear && req.has(key) => *target = None,
        None => {}
    };
    if let Some(title) = req.get("title") {
        item.title = title.to_owned();
    }
    if let Some(item_type) = req.get("type") {
        item.item_type = item_type.to_owned();
    }
    set_opt("description", &mut item.description);
    set_opt("snippet", &mut item.snippet);
    set_opt("spatialreference", &mut item.spatial_reference);
    set_opt("accessinformation", &mut item.access_information);
    set_opt("licenseinfo", &mut item.license_info);
    set_opt("culture", &mut item.culture);
    set_opt("url", &mut item.url);
    for (key, target) in [
        ("typekeywords", &mut item.type_keywords),
        ("tags", &mut item.tags),
        ("categories", &mut item.categories),
    ] {
        if req.get(key).is_some() || (clear && req.has(key)) {
            *target = req.list(key);
        }
    }
    if let Some(extent) = req.raw("extent") {
        if !extent.trim().is_empty() || clear {
            item.extent = parse_extent(extent)?;
        }
    }
    match req.get("properties") {
        Some(text) => {
            item.properties = Some(
                serde_json::from_str(text)
                    .map_err(|_| ApiError::bad_request("'properties' must be a JSON object."))?,
            )
        }
        None if clear && req.has("properties") => item.properties = None,
        None => {}
    }
    if let Some(text) = req.raw("text") {
        if !text.is_empty() {
            *data = Some(Data::from_text(text));
        } else if clear {
            *data = None;
        }
    }
    if let Some(upload) = req.file("file") {
        let name = req
            .get("filename")
            .or(upload.filename.as_deref())
            .or(item.name.as_deref())
            .unwrap_or("file")
            .to_owned();
        item.name = Some(name.clone());
        *data = Some(Data::File {
            name,
            body: FileBody::Bytes(upload.bytes.clone()),
        });
    }
    if let Some(upload) = req.file("thumbnail") {
        let name = upload.filename.as_deref().unwrap_or("thumbnail.png");
        item.thumbnail = Some(encode_blob(name, &upload.bytes));
    }
    if let Some(upload) = req.file("metadata") {
        item.metadata = Some(Metadata {
            name: "metadata.xml".into(),
            text: String::from_utf8_lossy(&upload.bytes).into_owned(),
        });
    }
    Ok(())
}

fn is_item_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn add_item(
    ctx: &Ctx,
    state: &mut State,
    username: &str,
    folder_id: Option<&str>,
) -> ApiResult<Reply> {
    ctx.require_self_or_admin(username)?;
    let owner = state
        .user(username)
        .map(|u| u.username.clone())
        .ok_or_else(|| ApiError::user_not_found(username))?;
    let folder = match folder_id {
        Some(id) => Some(user_folder(state, &owner, id)?),
        None => None,
    };
    let title = ctx.req.require("title")?.to_owned();
    let item_type = ctx.req.require("type")?.to_owned();
    if ctx
        .faults
        .refused_types
        .iter()
        .any(|t| t.eq_ignore_ascii_case(&item_type))
    {
        return Err(ApiError::bad_request(format!(
            "Item type '{item_type}' is not supported by this portal."
        )));
    }
    let id = match ctx.req.get("itemidtocreate") {
        Some(wanted) if state.portal.portal_mode == "singletenant" => {
            if !is_item_id(wanted) {
                return Err(ApiError::bad_request(format!(
                    "Invalid itemIdToCreate '{wanted}'."
                )));
            }
            if state.items.contains_key(wanted) {
                return Err(ApiError::new(409, None, "Item already exists.")
                    .with_details([format!("An item with id '{wanted}' already exists.")]));
            }
            wanted.to_owned()
        }
        _ => new_id(),
    };
    let mut item = Item {
        id: id.clone(),
        owner,
        folder: folder.as_ref().map(|f| f.title.clone()),
        title,
        item_type,
        type_keywords: vec![],
        description: None,
        tags: vec![],
        snippet: None,
        extent: json!([]),
        spatial_reference: None,
        name: None,
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
        created: ctx.now,
        modified: ctx.now,
    };
    let mut data = None;
    apply_item_fields(ctx, &mut item, &mut data)?;
    let upload = if ctx.req.bool("multipart") == Some(true) {
        let filename = ctx.req.get("filename").map(str::to_owned);
        if item.name.is_none() {
            item.name = filename.clone();
        }
        Some(PendingUpload {
            filename,
            parts: Default::default(),
        })
    } else {
        None
    };
    state.items.insert(
        id.clone(),
        SimItem {
            item,
            data,
            upload,
            searchable_at: ctx.searchable_at(),
        },
    );
    Ok(Reply::Json(json!({
        "success": true,
        "id": id,
        "folder": folder.map(|f| f.id),
    })))
}

pub fn get_item(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let item = visible_item(ctx, state, id)?;
    Ok(Reply::Json(item_json(state, item)))
}

/// `content/users/<u>/items/<id>`: the owner's view, with the item's sharing.
pub fn owner_view(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let item = state.items.get(id).ok_or_else(ApiError::item_not_found)?;
    ctx.require_self_or_admin(&item.item.owner)?;
    Ok(Reply::Json(json!({
        "item": item_json(state, item),
        "sharing": {"access": item.item.access, "groups": item.item.groups},
    })))
}

pub fn data(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let item = visible_item(ctx, state, id)?;
    if ctx.faults.broken_items.iter().any(|b| b == id) {
        return Err(ApiError::new(
            400,
            Some("CONT_0002"),
            "Item data could not be read (simulated broken item).",
        ));
    }
    Ok(match &item.data {
        None => Reply::Empty,
        Some(Data::Json(value)) => Reply::Bytes {
            content_type: "application/json; charset=utf-8".into(),
            filename: None,
            body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        },
        Some(Data::Text(text)) => Reply::Bytes {
            content_type: "text/plain; charset=utf-8".into(),
            filename: None,
            body: Bytes::from(text.clone()),
        },
        Some(Data::File {
            name,
            body: FileBody::Bytes(bytes),
        }) => Reply::Bytes {
            content_type: content_type_for(name).into(),
            filename: Some(name.clone()),
            body: bytes.clone(),
        },
        Some(Data::File { name, body }) => Reply::File {
            content_type: content_type_for(name).into(),
            filename: Some(name.clone()),
            body: body.clone(),
        },
    })
}

/// `info/thumbnail/<name>` (or `info/<name>`) and `info/metadata/metadata.xml`.
pub fn info_file(ctx: &Ctx, state: &State, id: &str, file: &str) -> ApiResult<Reply> {
    let item = &visible_item(ctx, state, id)?.item;
    if file.eq_ignore_ascii_case("metadata/metadata.xml") {
        let metadata = item.metadata.as_ref().ok_or_else(info_not_found)?;
        return Ok(Reply::Bytes {
            content_type: "application/xml".into(),
            filename: None,
            body: Bytes::from(metadata.text.clone()),
        });
    }
    let thumbnail = item.thumbnail.as_ref().ok_or_else(info_not_found)?;
    let wanted = file.strip_prefix("thumbnail/").unwrap_or(file);
    if wanted != thumbnail.name {
        return Err(info_not_found());
    }
    Ok(Reply::Bytes {
        content_type: content_type_for(&thumbnail.name).into(),
        filename: None,
        body: decode_blob(thumbnail),
    })
}

pub fn update(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    let searchable_at = ctx.searchable_at();
    let sim = editable_item(ctx, state, id)?;
    let mut item = sim.item.clone();
    let mut data = sim.data.clone();
    apply_item_fields(ctx, &mut item, &mut data)?;
    if ctx.req.bool("multipart") == Some(true) {
        let filename = ctx.req.get("filename").map(str::to_owned);
        sim.upload = Some(PendingUpload {
            filename,
            parts: Default::default(),
        });
    } else if ctx.req.file("file").is_some() {
        // A whole file replaces whatever an unfinished multipart upload had sent.
        sim.upload = None;
    }
    item.modified = ctx.now;
    sim.item = item;
    sim.data = data;
    sim.searchable_at = searchable_at;
    Ok(Reply::Json(json!({"success": true, "id": id})))
}

pub fn delete(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    editable_item(ctx, state, id)?;
    remove_items(state, &[id.to_owned()]);
    Ok(Reply::Json(json!({"success": true, "itemId": id})))
}

pub fn reassign(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    ctx.require_admin()?;
    let target = ctx
        .req
        .get("targetusername")
        .ok_or_else(|| ApiError::missing("targetUsername"))?;
    let target = state
        .user(target)
        .map(|u| u.username.clone())
        .ok_or_else(|| ApiError::user_not_found(target))?;
    let folder_title = ctx
        .req
        .get("targetfoldername")
        .filter(|t| *t != "/")
        .map(str::to_owned);
    if !state.items.contains_key(id) {
        return Err(ApiError::item_not_found());
    }
    if let Some(title) = &folder_title {
        let now = ctx.now;
        if let Some(sim) = state.user_mut(&target) {
            if !sim.user.folders.iter().any(|f| &f.title == title) {
                sim.user.folders.push(Folder {
                    id: new_id(),
                    title: title.clone(),
                    created: now,
                });
            }
        }
    }
    let searchable_at = ctx.searchable_at();
    let sim = state
        .items
        .get_mut(id)
        .ok_or_else(ApiError::item_not_found)?;
    sim.item.owner = target;
    sim.item.folder = folder_title;
    sim.item.modified = ctx.now;
    sim.searchable_at = searchable_at;
    Ok(Reply::Json(json!({"success": true, "itemId": id})))
}

pub fn move_item(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    let owner = editable_item(ctx, state, id)?.item.owner.clone();
    let folder = match ctx.req.get("folder").filter(|f| *f != "/") {
        None => None,
        Some(wanted) => {
            let user = state
                .user(&owner)
                .ok_or_else(|| ApiError::user_not_found(&owner))?;
            Some(
                user.folders
                    .iter()
                    .find(|f| f.id == wanted || f.title == wanted)
                    .cloned()
                    .ok_or_else(ApiError::folder_not_found)?,
            )
        }
    };
    let sim = state
        .items
        .get_mut(id)
        .ok_or_else(ApiError::item_not_found)?;
    sim.item.folder = folder.as_ref().map(|f| f.title.clone());
    Ok(Reply::Json(json!({
        "success": true, "itemId": id, "owner": owner,
        "folder": folder.map(|f| f.id),
    })))
}

fn not_multipart() -> ApiError {
    ApiError::bad_request("Item is not being uploaded in parts (add it with multipart=true).")
}

pub fn add_part(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    let part: u32 = ctx
        .req
        .require("partnum")?
        .parse()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| ApiError::bad_request("'partNum' must be between 1 and 10000."))?;
    let bytes = ctx
        .req
        .file("file")
        .map(|u| u.bytes.clone())
        .ok_or_else(|| ApiError::missing("file"))?;
    let sim = editable_item(ctx, state, id)?;
    let upload = sim.upload.as_mut().ok_or_else(not_multipart)?;
    let spooled = SpooledPart::write(&bytes).map_err(|e| {
        ApiError::new(500, None, "Unable to store the uploaded part.").with_details([e.to_string()])
    })?;
    upload.parts.insert(part, spooled);
    Ok(Reply::Json(json!({"success": true, "id": id})))
}

pub fn commit(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    let searchable_at = ctx.searchable_at();
    let sim = editable_item(ctx, state, id)?;
    let upload = sim.upload.as_ref().ok_or_else(not_multipart)?;
    if upload.parts.is_empty() {
        return Err(ApiError::bad_request("No parts were uploaded."));
    }
    let name = upload
        .filename
        .clone()
        .or_else(|| sim.item.name.clone())
        .unwrap_or_else(|| "file".into());
    let parts: Vec<SpooledPart> = upload.parts.values().cloned().collect();
    let body = FileBody::from_parts(parts).map_err(|e| {
        ApiError::new(500, None, "Unable to read the uploaded parts.").with_details([e.to_string()])
    })?;
    let mut item = sim.item.clone();
    let mut data = Some(Data::File {
        name: name.clone(),
        body,
    });
    apply_item_fields(ctx, &mut item, &mut data)?;
    if item.name.is_none() {
        item.name = Some(name);
    }
    item.modified = ctx.now;
    sim.item = item;
    sim.data = data;
    sim.upload = None;
    sim.searchable_at = searchable_at;
    Ok(Reply::Json(json!({"success": true, "id": id})))
}

pub fn status(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let sim = state.items.get(id).ok_or_else(ApiError::item_not_found)?;
    ctx.require_self_or_admin(&sim.item.owner)?;
    let status = sim.status();
    Ok(Reply::Json(json!({
        "status": status, "statusMessage": status, "itemId": id,
    })))
}

pub fn parts(ctx: &Ctx, state: &State, id: &str) -> ApiResult<Reply> {
    let sim = state.items.get(id).ok_or_else(ApiError::item_not_found)?;
    ctx.require_self_or_admin(&sim.item.owner)?;
    let parts: Vec<u32> = sim
        .upload
        .as_ref()
        .map(|u| u.parts.keys().copied().collect())
        .unwrap_or_default();
    Ok(Reply::Json(json!({ "parts": parts })))
}

/// Cancelling an upload deletes the item that never got its file.
pub fn cancel(ctx: &Ctx, state: &mut State, id: &str) -> ApiResult<Reply> {
    let sim = editable_item(ctx, state, id)?;
    if sim.upload.is_none() {
        return Err(not_multipart());
    }
    remove_items(state, &[id.to_owned()]);
    Ok(Reply::Json(json!({"success": true, "itemId": id})))
}

/// `content/groups/<id>/search`: the item search, within one group the caller can see.
pub fn search_in_group(ctx: &Ctx, state: &State, group_id: &str) -> ApiResult<Reply> {
    let group = state
        .groups
        .get(group_id)
        .ok_or_else(ApiError::group_not_found)?;
    if !super::can_see_group(ctx, &group.group) {
        return Err(ApiError::group_not_found());
    }
    search(ctx, state, Some(group_id))
}

/// Item search; `group` limits it to the items shared with that group.
pub fn search(ctx: &Ctx, state: &State, group: Option<&str>) -> ApiResult<Reply> {
    let q = ctx.req.get("q");
    let query = parse_query(q)?;
    let org_id = state.portal.id.as_str();
    let mut found: Vec<&SimItem> = state
        .items
        .values()
        .filter(|i| i.searchable_at <= ctx.now)
        .filter(|i| group.is_none_or(|g| i.item.groups.iter().any(|ig| ig == g)))
        .filter(|i| can_see_item(ctx, state, i))
        .filter(|i| {
            query.matches(&ItemDoc {
                item: &i.item,
                org_id,
            })
        })
        .collect();
    sort_by_request(ctx.req, &mut found, |i, field| match field {
        "title" => text_key(&i.item.title),
        "type" => text_key(&i.item.item_type),
        "owner" => text_key(&i.item.owner),
        "created" => SortKey::Number(i.item.created),
        "modified" => SortKey::Number(i.item.modified),
        _ => SortKey::None,
    });
    let total = found.len();
    let (start, num) = ctx.req.paging();
    let (page, next) = page(found, start, num);
    let results: Vec<Value> = page.iter().map(|i| item_json(state, i)).collect();
    Ok(Reply::Json(json!({
        "query": q.unwrap_or(""),
        "total": total, "start": start, "num": num, "nextStart": next,
        "results": results,
    })))
}
