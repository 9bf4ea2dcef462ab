//! The portal simulator over real HTTP on loopback, driven with reqwest against the sample
//! org: what a migration client relies on (auth, listings, paging, data bytes, writes read
//! back, error bodies) and what the faults promise.

use base64::Engine as _;
use portal_migrate::fixture::{sample_org, Fixture, ItemData};
use portal_migrate::sim::{Faults, SimOptions, SimServer};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const ORG_ID: &str = "0123456789ABCDEF";
const ADMIN_PASSWORD: &str = "admin-sample-pw";
const USER_PASSWORD: &str = "user-sample-pw";
/// brown.rogers' Web Map, in folder Rogers_webmaps, shared with Central Services.
const WEB_MAP: &str = "b18c614bc00d40d0a216754d1aa8b150";
/// brown.rogers' private CSV in the root folder.
const CSV: &str = "ebd57622fb984f1c96122c4b442ea6d7";
/// brown.rogers' Feature Service, no data.
const FEATURE_SERVICE: &str = "aaa6ad38f9c24b4294a4c6d0994fc7c7";
/// project_archiver's public GeoJson.
const PUBLIC_GEOJSON: &str = "e0e716ac1d774cb190765dd7a2a7421f";
const CENTRAL_SERVICES: &str = "13e3d99f4dc11674536762b36fcc35be";

async fn start_with(fixture: Fixture, faults: Faults, tls: bool) -> SimServer {
    SimServer::start(
        fixture,
        SimOptions {
            tls,
            faults,
            ..SimOptions::default()
        },
    )
    .await
    .expect("the simulator starts")
}

async fn start() -> SimServer {
    start_with(sample_org::source(), Faults::default(), false).await
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn rest(sim: &SimServer, path: &str) -> String {
    format!("{}/sharing/rest/{}", sim.url(), path)
}

async fn generate_token(client: &Client, sim: &SimServer, user: &str, password: &str) -> Value {
    client
        .post(rest(sim, "generateToken"))
        .form(&[
            ("username", user),
            ("password", password),
            ("client", "referer"),
            ("referer", "http://localhost"),
            ("f", "json"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn token(client: &Client, sim: &SimServer, user: &str, password: &str) -> String {
    let body = generate_token(client, sim, user, password).await;
    body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {body}"))
        .to_owned()
}

async fn admin_token(client: &Client, sim: &SimServer) -> String {
    token(client, sim, "admin", ADMIN_PASSWORD).await
}

async fn get(client: &Client, sim: &SimServer, path: &str, params: &[(&str, &str)]) -> Value {
    let response = client
        .get(rest(sim, path))
        .query(&[("f", "json")])
        .query(params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.unwrap()
}

async fn post(client: &Client, sim: &SimServer, path: &str, params: &[(&str, &str)]) -> Value {
    let response = client
        .post(rest(sim, path))
        .query(&[("f", "json")])
        .form(params)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "POST {path}");
    response.json().await.unwrap()
}

fn fixture_item(id: &str) -> portal_migrate::fixture::Item {
    sample_org::source()
        .items
        .into_iter()
        .find(|i| i.id == id)
        .unwrap()
}

#[tokio::test]
async fn generate_token_signs_in_and_refuses_a_wrong_password_like_a_portal() {
    let sim = start().await;
    let client = client();
    let ok = generate_token(&client, &sim, "admin", ADMIN_PASSWORD).await;
    assert!(ok["token"].as_str().is_some_and(|t| t.len() >= 32), "{ok}");
    assert!(ok["expires"].as_i64().unwrap() > 0);
    assert_eq!(ok["ssl"], json!(false));

    let bad = generate_token(&client, &sim, "admin", "wrong").await;
    assert_eq!(
        bad,
        json!({"error": {"code": 400, "message": "Unable to generate token.",
                          "details": ["Invalid username or password."]}})
    );
    let unknown = generate_token(&client, &sim, "nobody", "x").await;
    assert_eq!(unknown, bad, "an unknown user looks like a wrong password");

    // The token works as a query parameter and as the X-Esri-Authorization header.
    let token = ok["token"].as_str().unwrap();
    let me = get(&client, &sim, "community/self", &[("token", token)]).await;
    assert_eq!(me["username"], "admin");
    let by_header: Value = client
        .get(rest(&sim, "portals/self"))
        .query(&[("f", "json")])
        .header("X-Esri-Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_header["user"]["username"], "admin");
    assert_eq!(by_header["portalMode"], "singletenant");
    assert_eq!(by_header["isPortal"], json!(true));
    assert_eq!(by_header["id"], ORG_ID);
}

#[tokio::test]
async fn anonymous_callers_see_public_items_only() {
    let sim = start().await;
    let client = client();
    let private = get(&client, &sim, &format!("content/items/{CSV}"), &[]).await;
    let code = private["error"]["code"].as_i64().unwrap();
    assert!(code == 403 || code == 499, "{private}");
    let data = get(&client, &sim, &format!("content/items/{CSV}/data"), &[]).await;
    assert!(
        data["error"].is_object(),
        "private data must not leak: {data}"
    );

    let public = get(
        &client,
        &sim,
        &format!("content/items/{PUBLIC_GEOJSON}"),
        &[],
    )
    .await;
    assert_eq!(public["id"], PUBLIC_GEOJSON);
    assert_eq!(public["access"], "public");

    let me = get(&client, &sim, "community/self", &[]).await;
    assert_eq!(me["error"]["code"], 499);
}

#[tokio::test]
async fn tokens_expire_with_498_after_their_ttl_and_on_demand() {
    let sim = start_with(
        sample_org::source(),
        Faults {
            token_ttl_secs: Some(1),
            ..Faults::default()
        },
        false,
    )
    .await;
    let client = client();
    let token = admin_token(&client, &sim).await;
    let fresh = get(&client, &sim, "community/self", &[("token", &token)]).await;
    assert_eq!(fresh["username"], "admin");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = get(&client, &sim, "community/self", &[("token", &token)]).await;
    assert_eq!(
        expired,
        json!({"error": {"code": 498, "message": "Invalid token.", "details": []}})
    );

    sim.set_faults(Faults::default());
    let token = admin_token(&client, &sim).await;
    assert_eq!(
        get(&client, &sim, "community/self", &[("token", &token)]).await["username"],
        "admin"
    );
    sim.set_faults(Faults {
        expire_tokens_now: true,
        ..Faults::default()
    });
    assert!(
        !sim.faults().expire_tokens_now,
        "expiring tokens is one-shot"
    );
    let after = get(&client, &sim, "community/self", &[("token", &token)]).await;
    assert_eq!(after["error"]["code"], 498);
    let again = admin_token(&client, &sim).await;
    assert_eq!(
        get(&client, &sim, "community/self", &[("token", &again)]).await["username"],
        "admin",
        "tokens issued afterwards work"
    );
}

#[tokio::test]
async fn the_notebook_user_query_finds_exactly_the_eleven_ordinary_users() {
    let sim = start().await;
    let client = client();
    let token = admin_token(&client, &sim).await;
    let q = format!("!esri_ & !admin accountid:{ORG_ID}");
    let found = get(
        &client,
        &sim,
        "community/users",
        &[("q", &q), ("num", "100"), ("token", &token)],
    )
    .await;
    let names: BTreeSet<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = [
        "brown.rogers",
        "davis.reed",
        "johnson.stewart",
        "jones.morris",
        "miller.cook",
        "moore.bell",
        "project_archiver",
        "smith.collins",
        "taylor.murphy",
        "williams.sanchez",
        "wilson.morgan",
    ]
    .into();
    assert_eq!(names, expected);
    assert_eq!(found["total"], 11);
    assert_eq!(found["nextStart"], -1);
    // arcgis-rest-js searches users at portals/self/users/search.
    let same = get(
        &client,
        &sim,
        "portals/self/users/search",
        &[("q", &q), ("num", "100"), ("token", &token)],
    )
    .await;
    assert_eq!(same["total"], 11);
    let in_group = get(
        &client,
        &sim,
        &format!("content/groups/{CENTRAL_SERVICES}/search"),
        &[("q", "type:\"Web Map\""), ("num", "100"), ("token", &token)],
    )
    .await;
    assert_eq!(in_group["total"], 4);
}

#[tokio::test]
async fn item_search_pages_through_all_49_items_seven_at_a_time() {
    let sim = start().await;
    let client = client();
    let token = admin_token(&client, &sim).await;
    let q = format!("accountid:{ORG_ID}");
    let mut start = 1i64;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = get(
            &client,
            &sim,
            "search",
            &[
                ("q", q.as_str()),
                ("num", "7"),
                ("start", &start.to_string()),
                ("token", &token),
            ],
        )
        .await;
        assert_eq!(page["total"], 49);
        assert_eq!(page["start"], start);
        let results = page["results"].as_array().unwrap();
        assert_eq!(results.len(), 7);
        seen.extend(results.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        pages += 1;
        let next = page["nextStart"].as_i64().unwrap();
        if next == -1 {
            break;
        }
        assert_eq!(next, start + 7);
        start = next;
    }
    assert_eq!(pages, 7);
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 49);
    // num is capped at 100.
    let all = get(
        &client,
        &sim,
        "search",
        &[("q", "*"), ("num", "1000"), ("token", &token)],
    )
    .await;
    assert_eq!(all["num"], 100);
    assert_eq!(all["results"].as_array().unwrap().len(), 49);
}

#[tokio::test]
async fn items_and_their_data_read_back_as_in_the_fixture() {
    let sim = start().await;
    let client = client();
    let token = admin_token(&client, &sim).await;

    let map = get(
        &client,
        &sim,
        &format!("content/items/{WEB_MAP}"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(map["type"], "Web Map");
    assert_eq!(map["owner"], "brown.rogers");
    assert_eq!(map["orgId"], ORG_ID);
    assert_eq!(map["ownerFolder"], "ebfdbc2bb47f4d5f92b6673a8a68a89f");
    assert!(map["thumbnail"].as_str().unwrap().starts_with("thumbnail/"));
    assert_eq!(map["numViews"], 0);
    let map_data: Value = client
        .get(rest(&sim, &format!("content/items/{WEB_MAP}/data")))
        .query(&[("f", "json"), ("token", &token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let Some(ItemData::Json(expected)) = fixture_item(WEB_MAP).data else {
        panic!("the fixture's web map has JSON data");
    };
    assert_eq!(map_data, expected);

    let thumbnail = client
        .get(rest(
            &sim,
            &format!(
                "content/items/{WEB_MAP}/info/{}",
                map["thumbnail"].as_str().unwrap()
            ),
        ))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let expected_thumbnail = base64::engine::general_purpose::STANDARD
        .decode(&fixture_item(WEB_MAP).thumbnail.unwrap().base64)
        .unwrap();
    assert_eq!(thumbnail.as_ref(), expected_thumbnail.as_slice());

    let csv = client
        .get(rest(&sim, &format!("content/items/{CSV}/data")))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let disposition = csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.contains("AR.csv"), "{disposition}");
    let Some(ItemData::File(blob)) = fixture_item(CSV).data else {
        panic!("the fixture's CSV is a file");
    };
    let expected_bytes = base64::engine::general_purpose::STANDARD
        .decode(&blob.base64)
        .unwrap();
    assert_eq!(
        csv.bytes().await.unwrap().as_ref(),
        expected_bytes.as_slice()
    );

    let empty = client
        .get(rest(&sim, &format!("content/items/{FEATURE_SERVICE}/data")))
        .query(&[("f", "json"), ("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::OK);
    assert!(
        empty.bytes().await.unwrap().is_empty(),
        "no data → empty body"
    );

    let metadata = client
        .get(rest(
            &sim,
            "content/items/464fdece247e46b1ba861a7ac92701a4/info/metadata/metadata.xml",
        ))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metadata,
        fixture_item("464fdece247e46b1ba861a7ac92701a4")
            .metadata
            .unwrap()
            .text
    );
    let none = get(
        &client,
        &sim,
        &format!("content/items/{CSV}/info/metadata/metadata.xml"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(none["error"]["code"], 400);
}

#[tokio::test]
async fn user_content_lists_the_root_with_folders_and_each_folder() {
    let sim = start().await;
    let client = client();
    let token = token(&client, &sim, "brown.rogers", USER_PASSWORD).await;
    let root = get(
        &client,
        &sim,
        "content/users/brown.rogers",
        &[("token", &token)],
    )
    .await;
    assert_eq!(root["total"], 2);
    assert_eq!(root["currentFolder"], Value::Null);
    let folders = root["folders"].as_array().unwrap();
    assert_eq!(folders.len(), 1);
    assert_eq!(folders[0]["title"], "Rogers_webmaps");
    let folder = get(
        &client,
        &sim,
        "content/users/brown.rogers/ebfdbc2bb47f4d5f92b6673a8a68a89f",
        &[("token", &token)],
    )
    .await;
    assert_eq!(folder["currentFolder"]["title"], "Rogers_webmaps");
    assert_eq!(folder["items"][0]["id"], WEB_MAP);

    let owner_view = get(
        &client,
        &sim,
        &format!("content/users/brown.rogers/items/{WEB_MAP}"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(owner_view["item"]["id"], WEB_MAP);
    assert_eq!(owner_view["sharing"]["groups"], json!([CENTRAL_SERVICES]));

    // Another ordinary user may not list brown.rogers' content.
    let other = token_of(&client, &sim, "jones.morris").await;
    let refused = get(
        &client,
        &sim,
        "content/users/brown.rogers",
        &[("token", &other)],
    )
    .await;
    assert_eq!(refused["error"]["code"], 403);
}

async fn token_of(client: &Client, sim: &SimServer, user: &str) -> String {
    token(client, sim, user, USER_PASSWORD).await
}

#[tokio::test]
async fn a_second_folder_with_the_same_title_is_refused() {
    let sim = start().await;
    let client = client();
    let token = token_of(&client, &sim, "brown.rogers").await;
    let first = post(
        &client,
        &sim,
        "content/users/brown.rogers/createFolder",
        &[("title", "Archive"), ("token", &token)],
    )
    .await;
    assert_eq!(first["success"], json!(true));
    assert_eq!(first["folder"]["title"], "Archive");
    assert_eq!(first["folder"]["username"], "brown.rogers");
    assert_eq!(first["folder"]["id"].as_str().unwrap().len(), 32);
    let second = post(
        &client,
        &sim,
        "content/users/brown.rogers/createFolder",
        &[("title", "archive"), ("token", &token)],
    )
    .await;
    assert_eq!(second["error"]["code"], 400, "{second}");
    assert!(second.get("success").is_none());
}

#[tokio::test]
async fn an_added_item_is_shared_related_and_read_back() {
    let sim = start().await;
    let client = client();
    let token = token_of(&client, &sim, "brown.rogers").await;
    let text = r#"{"operationalLayers":[{"id":"a","itemId":"aaa6ad38f9c24b4294a4c6d0994fc7c7"}],"version":"2.7"}"#;
    let added = post(
        &client,
        &sim,
        "content/users/brown.rogers/ebfdbc2bb47f4d5f92b6673a8a68a89f/addItem",
        &[
            ("title", "Copy"),
            ("type", "Web Map"),
            ("typeKeywords", "Web Map,source-123"),
            ("tags", "a,b"),
            ("extent", "-94.6,33,-89.6,36.5"),
            ("text", text),
            ("token", &token),
        ],
    )
    .await;
    assert_eq!(added["success"], json!(true), "{added}");
    assert_eq!(added["folder"], "ebfdbc2bb47f4d5f92b6673a8a68a89f");
    let id = added["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);

    let shared = post(
        &client,
        &sim,
        &format!("content/users/brown.rogers/items/{id}/share"),
        &[
            ("groups", CENTRAL_SERVICES),
            ("everyone", "false"),
            ("org", "false"),
            ("token", &token),
        ],
    )
    .await;
    assert_eq!(shared, json!({"notSharedWith": [], "itemId": id}));
    let related = post(
        &client,
        &sim,
        "content/users/brown.rogers/addRelationship",
        &[
            ("originItemId", &id),
            ("destinationItemId", FEATURE_SERVICE),
            ("relationshipType", "Map2Service"),
            ("token", &token),
        ],
    )
    .await;
    assert_eq!(related, json!({"success": true}));

    let item = get(
        &client,
        &sim,
        &format!("content/items/{id}"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(item["title"], "Copy");
    assert_eq!(item["access"], "shared");
    assert_eq!(item["typeKeywords"], json!(["Web Map", "source-123"]));
    assert_eq!(item["extent"], json!([[-94.6, 33.0], [-89.6, 36.5]]));
    let data = client
        .get(rest(&sim, &format!("content/items/{id}/data")))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(data, text, "JSON data is served compactly, key order kept");
    let groups = get(
        &client,
        &sim,
        &format!("content/items/{id}/groups"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(groups["member"][0]["id"], CENTRAL_SERVICES);
    let forward = get(
        &client,
        &sim,
        &format!("content/items/{id}/relatedItems"),
        &[
            ("relationshipTypes", "Map2Service,Service2Data"),
            ("direction", "forward"),
            ("token", &token),
        ],
    )
    .await;
    assert_eq!(forward["total"], 1);
    assert_eq!(forward["relatedItems"][0]["id"], FEATURE_SERVICE);
    let reverse = get(
        &client,
        &sim,
        &format!("content/items/{FEATURE_SERVICE}/relatedItems"),
        &[
            ("relationshipType", "Map2Service"),
            ("direction", "reverse"),
            ("token", &token),
        ],
    )
    .await;
    assert_eq!(reverse["relatedItems"][0]["id"], id.as_str());
    let group_content = get(
        &client,
        &sim,
        &format!("content/groups/{CENTRAL_SERVICES}"),
        &[("num", "100"), ("token", &token)],
    )
    .await;
    assert_eq!(group_content["total"], 5);

    let snapshot = sim.snapshot();
    let stored = snapshot.items.iter().find(|i| i.id == id).unwrap();
    assert_eq!(stored.folder.as_deref(), Some("Rogers_webmaps"));
    assert_eq!(stored.groups, vec![CENTRAL_SERVICES.to_owned()]);
    assert!(matches!(stored.data, Some(ItemData::Json(_))));
    assert!(snapshot
        .relationships
        .iter()
        .any(|r| r.origin == id && r.relationship_type == "Map2Service"));
}

#[tokio::test]
async fn a_multipart_upload_commits_the_parts_in_order() {
    let sim = start().await;
    let client = client();
    let token = token_of(&client, &sim, "brown.rogers").await;
    let added = post(
        &client,
        &sim,
        "content/users/brown.rogers/addItem",
        &[
            ("title", "Big"),
            ("type", "CSV"),
            ("multipart", "true"),
            ("filename", "big.csv"),
            ("token", &token),
        ],
    )
    .await;
    let id = added["id"].as_str().unwrap().to_owned();
    let status_path = format!("content/users/brown.rogers/items/{id}/status");
    let status = get(&client, &sim, &status_path, &[("token", &token)]).await;
    assert_eq!(status["status"], "partial");
    // Parts may arrive out of order; the part number decides their place.
    for (number, bytes) in [
        ("2", b"second,part\n".to_vec()),
        ("1", b"first,part\n".to_vec()),
    ] {
        let form = Form::new()
            .text("f", "json")
            .text("token", token.clone())
            .part("file", Part::bytes(bytes).file_name("big.csv"));
        let part: Value = client
            .post(rest(
                &sim,
                &format!("content/users/brown.rogers/items/{id}/addPart"),
            ))
            .query(&[("partNum", number)])
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(part["success"], json!(true), "{part}");
    }
    let parts = get(
        &client,
        &sim,
        &format!("content/users/brown.rogers/items/{id}/parts"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(parts["parts"], json!([1, 2]));
    let committed = post(
        &client,
        &sim,
        &format!("content/users/brown.rogers/items/{id}/commit"),
        &[("type", "CSV"), ("token", &token)],
    )
    .await;
    assert_eq!(committed["success"], json!(true));
    let status = get(&client, &sim, &status_path, &[("token", &token)]).await;
    assert_eq!(status["status"], "completed");
    let data = client
        .get(rest(&sim, &format!("content/items/{id}/data")))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(data.as_ref(), b"first,part\nsecond,part\n");
    let item = get(
        &client,
        &sim,
        &format!("content/items/{id}"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(item["name"], "big.csv");
    assert_eq!(item["size"], 23);
}

#[tokio::test]
async fn a_file_item_and_thumbnail_upload_in_one_multipart_add() {
    let sim = start().await;
    let client = client();
    let token = token_of(&client, &sim, "brown.rogers").await;
    let form = Form::new()
        .text("f", "json")
        .text("token", token.clone())
        .text("title", "Upload")
        .text("type", "PDF")
        .part(
            "file",
            Part::bytes(b"%PDF-1.4 tiny".to_vec()).file_name("doc.pdf"),
        )
        .part(
            "thumbnail",
            Part::bytes(vec![0x89, b'P', b'N', b'G']).file_name("t.png"),
        );
    let added: Value = client
        .post(rest(&sim, "content/users/brown.rogers/addItem"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = added["id"].as_str().unwrap();
    let item = get(
        &client,
        &sim,
        &format!("content/items/{id}"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(item["name"], "doc.pdf");
    assert_eq!(item["thumbnail"], "thumbnail/t.png");
    let data = client
        .get(rest(&sim, &format!("content/items/{id}/data")))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(data.as_ref(), b"%PDF-1.4 tiny");
}

#[tokio::test]
async fn the_state_of_an_untouched_sim_is_the_loaded_fixture() {
    let sim = start().await;
    let client = client();
    let state: Value = client
        .get(format!("http://{}/__sim/state", sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let original: Value = serde_json::from_str(sample_org::SOURCE_JSON).unwrap();
    assert_eq!(state, original);
    assert_eq!(sim.snapshot(), sample_org::source());
}

#[tokio::test]
async fn writes_and_reads_are_refused_with_portal_bodies_never_html() {
    let sim = start().await;
    let client = client();
    let token = admin_token(&client, &sim).await;
    for (path, code) in [
        ("no/such/route", 400),
        ("content/items/0123456789abcdef0123456789abcdef", 400),
        ("community/users/nobody.here", 400),
        ("community/groups/0123456789abcdef0123456789abcdef", 400),
    ] {
        let response = client
            .get(rest(&sim, path))
            .query(&[("f", "json"), ("token", &token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(body["error"]["details"].is_array(), "{path}: {body}");
    }
    let missing = get(
        &client,
        &sim,
        "content/items/0123456789abcdef0123456789abcdef",
        &[("token", &token)],
    )
    .await;
    assert_eq!(
        missing,
        json!({"error": {"code": 400, "messageCode": "CONT_0001",
                          "message": "Item does not exist or is inaccessible.", "details": []}})
    );
    let unknown_route = get(&client, &sim, "no/such/route", &[]).await;
    assert_eq!(unknown_route["error"]["message"], "Invalid URL");
    // Outside /portal entirely, and a garbage multipart body.
    let outside: Value = client
        .get(format!("http://{}/elsewhere", sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(outside["error"]["code"], 400);
    let garbage: Value = client
        .post(rest(&sim, "content/users/admin/addItem"))
        .header("content-type", "multipart/form-data; boundary=xyz")
        .body("--xyz\r\nnonsense")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(garbage["error"]["code"], 400);
    // A write by GET is refused.
    let by_get = get(
        &client,
        &sim,
        "content/users/admin/createFolder",
        &[("title", "x"), ("token", &token)],
    )
    .await;
    assert!(by_get["error"].is_object());
    // pjson is pretty-printed.
    let pretty = client
        .get(rest(&sim, ""))
        .query(&[("f", "pjson")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pretty.contains('\n') && pretty.contains("currentVersion"));
}

#[tokio::test]
async fn groups_keep_titles_unique_and_membership_batches_small() {
    let sim = start().await;
    let client = client();
    let token = admin_token(&client, &sim).await;
    let duplicate = post(
        &client,
        &sim,
        "community/createGroup",
        &[
            ("title", "central services"),
            ("tags", "x"),
            ("token", &token),
        ],
    )
    .await;
    assert_eq!(duplicate["error"]["code"], 400, "{duplicate}");
    let created = post(
        &client,
        &sim,
        "community/createGroup",
        &[
            ("title", "New Group"),
            ("tags", "x"),
            ("access", "org"),
            ("token", &token),
        ],
    )
    .await;
    assert_eq!(created["success"], json!(true));
    assert_eq!(created["group"]["owner"], "admin");
    let id = created["group"]["id"].as_str().unwrap().to_owned();
    let added = post(
        &client,
        &sim,
        &format!("community/groups/{id}/addUsers"),
        &[
            ("users", "brown.rogers,nobody.here"),
            ("admins", "davis.reed"),
            ("token", &token),
        ],
    )
    .await;
    assert_eq!(added, json!({"notAdded": ["nobody.here"]}));
    let members = get(
        &client,
        &sim,
        &format!("community/groups/{id}/users"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(members["owner"], "admin");
    assert_eq!(members["admins"], json!(["admin", "davis.reed"]));
    assert_eq!(members["users"], json!(["brown.rogers"]));
    let too_many: Vec<String> = (0..26).map(|n| format!("user{n}")).collect();
    let refused = post(
        &client,
        &sim,
        &format!("community/groups/{id}/addUsers"),
        &[("users", &too_many.join(",")), ("token", &token)],
    )
    .await;
    assert_eq!(refused["error"]["code"], 400);
    // A user owning content cannot be deleted.
    let delete = post(
        &client,
        &sim,
        "community/users/brown.rogers/delete",
        &[("token", &token)],
    )
    .await;
    assert_eq!(delete["error"]["code"], 400);
}

#[tokio::test]
async fn users_are_created_through_portaladmin_on_enterprise() {
    let sim = start().await;
    let client = client();
    let token = admin_token(&client, &sim).await;
    let created: Value = client
        .post(format!(
            "{}/portaladmin/security/users/createUser",
            sim.url()
        ))
        .form(&[
            ("username", "new.person"),
            ("password", "pw-123456"),
            ("firstname", "New"),
            ("lastname", "Person"),
            ("email", "new@example.com"),
            ("role", "org_publisher"),
            ("userLicenseTypeId", "creatorUT"),
            ("f", "json"),
            ("token", &token),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created, json!({"status": "success"}));
    let user = get(
        &client,
        &sim,
        "community/users/new.person",
        &[("token", &token)],
    )
    .await;
    assert_eq!(user["role"], "org_publisher");
    assert_eq!(user["fullName"], "New Person");
    let _ = generate_token(&client, &sim, "new.person", "pw-123456").await["token"]
        .as_str()
        .expect("the new user signs in");
    let snapshot = sim.snapshot();
    let stored = snapshot
        .users
        .iter()
        .find(|u| u.username == "new.person")
        .unwrap();
    assert_eq!(stored.password, "pw-123456");
    // Inviting is the Online way and is refused here.
    let invite = post(
        &client,
        &sim,
        "portals/self/invite",
        &[
            ("invitationList", r#"{"invitations":[]}"#),
            ("token", &token),
        ],
    )
    .await;
    assert!(invite["error"].is_object());
}

#[tokio::test]
async fn search_sees_new_items_only_after_the_lag_but_reads_see_them_at_once() {
    let sim = start_with(
        sample_org::source(),
        Faults {
            search_lag_ms: 400,
            ..Faults::default()
        },
        false,
    )
    .await;
    let client = client();
    let token = admin_token(&client, &sim).await;
    let added = post(
        &client,
        &sim,
        "content/users/admin/addItem",
        &[
            ("title", "Lagging"),
            ("type", "Web Map"),
            ("typeKeywords", "source-lag"),
            ("token", &token),
        ],
    )
    .await;
    let id = added["id"].as_str().unwrap();
    let q = "typekeywords:source-lag";
    let early = get(&client, &sim, "search", &[("q", q), ("token", &token)]).await;
    assert_eq!(early["total"], 0);
    let direct = get(
        &client,
        &sim,
        &format!("content/items/{id}"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(direct["id"], id);
    let listing = get(&client, &sim, "content/users/admin", &[("token", &token)]).await;
    assert!(listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = get(&client, &sim, "search", &[("q", q), ("token", &token)]).await;
    assert_eq!(late["total"], 1);
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let sim = start_with(
        sample_org::source(),
        Faults {
            rate_limit_rps: Some(2.0),
            ..Faults::default()
        },
        false,
    )
    .await;
    let client = client();
    let mut limited = None;
    for _ in 0..10 {
        let response = client
            .get(rest(&sim, ""))
            .query(&[("f", "json")])
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("10 quick requests exceed 2 per second");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 429);
    assert!(sim.stats().outcome_total("rate_limited") >= 1);
    // Control routes are never limited.
    for _ in 0..5 {
        let stats = client
            .get(format!("http://{}/__sim/stats", sim.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(stats.status(), StatusCode::OK);
    }
}

/// What a client sees of one request under fail_rate=1: never a success.
async fn assert_transient_failure(
    response: Result<reqwest::Response, reqwest::Error>,
) -> &'static str {
    let response = match response {
        Err(_) => return "dropped",
        Ok(response) => response,
    };
    let status = response.status();
    let body: Result<Value, _> = response.json().await;
    match status.as_u16() {
        500 | 502 | 503 | 504 => "http",
        200 => {
            let body = body.expect("an HTTP 200 failure carries a JSON body");
            assert_eq!(body["error"]["code"], 500, "{body}");
            "body"
        }
        other => panic!("unexpected status {other}"),
    }
}

#[tokio::test]
async fn a_certain_fail_rate_gives_only_transient_failures_of_every_kind() {
    let sim = start_with(
        sample_org::source(),
        Faults {
            fail_rate: 1.0,
            stall_ms: Some(100),
            seed: Some(42),
            ..Faults::default()
        },
        false,
    )
    .await;
    let client = client();
    let mut kinds = BTreeSet::new();
    for _ in 0..40 {
        let response = client
            .get(rest(&sim, &format!("content/items/{PUBLIC_GEOJSON}")))
            .query(&[("f", "json")])
            .send()
            .await;
        kinds.insert(assert_transient_failure(response).await);
    }
    assert_eq!(kinds, ["body", "dropped", "http"].into());
    let stats = sim.stats();
    assert_eq!(stats.count("content/items/{id}", "ok"), 0);
    for kind in ["http500", "http502", "http503", "error500", "drop", "stall"] {
        assert!(
            stats.count("content/items/{id}", &format!("fault:{kind}")) > 0,
            "no {kind} in {stats:?}"
        );
    }
}

/// With every write failing, half of them still happen: a client that retries blindly
/// would duplicate them, so it must look before creating again.
#[tokio::test]
async fn failed_writes_may_still_have_happened() {
    let sim = start().await;
    let client = client();
    let token = admin_token(&client, &sim).await;
    sim.set_faults(Faults {
        fail_rate: 1.0,
        stall_ms: Some(50),
        seed: Some(7),
        ..Faults::default()
    });
    let titles: Vec<String> = (0..12).map(|n| format!("Attempt {n}")).collect();
    for title in &titles {
        let response = client
            .post(rest(&sim, "content/users/admin/createFolder"))
            .form(&[("title", title.as_str()), ("f", "json"), ("token", &token)])
            .send()
            .await;
        assert_transient_failure(response).await;
    }
    sim.set_faults(Faults::default());
    let root = get(&client, &sim, "content/users/admin", &[("token", &token)]).await;
    let created: Vec<&str> = root["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert!(
        !created.is_empty(),
        "some failed createFolder calls did create the folder"
    );
    assert!(created.len() < titles.len(), "and some did not");
    assert!(created.iter().all(|t| titles.iter().any(|a| a == t)));
}

#[tokio::test]
async fn broken_items_and_a_down_portal() {
    let sim = start().await;
    let client = client();
    let token = admin_token(&client, &sim).await;
    sim.set_faults(Faults {
        broken_items: vec![CSV.to_owned()],
        ..Faults::default()
    });
    let broken = get(
        &client,
        &sim,
        &format!("content/items/{CSV}/data"),
        &[("token", &token)],
    )
    .await;
    assert_eq!(
        broken,
        json!({"error": {"code": 400, "messageCode": "CONT_0002",
            "message": "Item data could not be read (simulated broken item).", "details": []}})
    );
    // Fault settings can be replaced over HTTP too.
    let set: Value = client
        .post(format!("http://{}/__sim/faults", sim.addr()))
        .json(&json!({"down": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["down"], json!(true));
    assert!(
        client.get(rest(&sim, "")).send().await.is_err(),
        "a down portal never answers"
    );
    let faults: Value = client
        .get(format!("http://{}/__sim/faults", sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["down"], json!(true));
}

#[tokio::test]
async fn two_tls_simulators_answer_over_https() {
    let source = start_with(sample_org::source(), Faults::default(), true).await;
    let target = start_with(sample_org::target(), Faults::default(), true).await;
    assert!(source.url().starts_with("https://127.0.0.1:"));
    let client = Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for (sim, name) in [(&source, "Staging Portal"), (&target, "Production Portal")] {
        let portal: Value = client
            .get(format!("{}/sharing/rest/portals/self?f=json", sim.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(portal["name"], name);
        let token = generate_token(&client, sim, "admin", ADMIN_PASSWORD).await;
        assert_eq!(token["ssl"], json!(true));
    }
    source.shutdown().await;
    assert!(
        client
            .get(format!("{}/sharing/rest?f=json", target.url()))
            .send()
            .await
            .is_ok(),
        "stopping one simulator leaves the other serving"
    );
}
