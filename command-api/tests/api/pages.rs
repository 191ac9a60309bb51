//! The pages' server side: development sign-in (off unless configured), the app's shell on every
//! page path, its modules and styles (compressed, from this server only), and the JavaScript
//! budget (under 200 KB gzipped, everything a page loads).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, test_config};

async fn dev_token(app: &crate::helpers::TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/dev/token"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn development_sign_in_is_off_unless_configured() {
    let app = spawn_app().await;
    let response = dev_token(&app, json!({"name": "alice"})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "dev_login_off");
}

#[tokio::test]
async fn development_sign_in_mints_tokens_the_api_takes() {
    let app = spawn_app_with(command_api::CommandApiConfig {
        dev_login: true,
        ..test_config()
    })
    .await;
    let response = dev_token(&app, json!({"name": "dora", "role": "organizer"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let minted: Value = response.json().await.unwrap();
    assert_eq!(minted["customer_id"], "dora");
    assert_eq!(minted["role"], "organizer");
    let token = minted["token"].as_str().unwrap();
    // An organizer's token creates events; a buyer's may not.
    let create = |token: String| {
        app.client
            .post(app.url("/api/events"))
            .header("authorization", format!("Bearer {token}"))
            .json(&json!({"name": "Signed in", "rows": 2, "cols": 3, "price_cents": 1000}))
            .send()
    };
    assert_eq!(
        create(token.to_owned()).await.unwrap().status(),
        StatusCode::CREATED
    );
    let buyer: Value = dev_token(&app, json!({"name": "bob"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(buyer["role"], "buyer");
    let refused = create(buyer["token"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Bad input: a clear 4xx, never an admin.
    for (body, status) in [
        (
            json!({"name": "has space"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": ""}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"name": "x".repeat(65)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "eve", "role": "admin"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"role": "buyer"}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        assert_eq!(
            dev_token(&app, body.clone()).await.status(),
            status,
            "{body}"
        );
    }
    let not_json = app
        .client
        .post(app.url("/api/dev/token"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
}

/// Script `src`, stylesheet `href` and module `import ... from` paths of a page or a module.
fn references(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for attr in ["src=\"", "rel=\"stylesheet\" href=\"", "from './"] {
        for (at, _) in text.match_indices(attr) {
            let rest = &text[at + attr.len()..];
            let end = rest.find(['"', '\'']).unwrap();
            let path = &rest[..end];
            paths.push(if attr == "from './" {
                format!("/app/{path}")
            } else {
                path.to_owned()
            });
        }
    }
    paths
}

#[tokio::test]
async fn every_page_path_answers_the_app_which_loads_only_from_this_server_within_budget() {
    let app = spawn_app().await;
    for page in [
        "/",
        "/login",
        "/tickets",
        "/organizer",
        "/events/6c1f7a52-4b1e-4a8e-9d55-1f2a3b4c5d6e",
    ] {
        let response = app.client.get(app.url(page)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{page}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("script-src 'self'"), "{policy}");
    }
    let shell = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !shell.contains("https://") && !shell.contains("%ASSETS%"),
        "{shell}"
    );

    // Follow every script, module import and style from the shell.
    let mut queue = references(&shell);
    let mut seen = std::collections::BTreeSet::new();
    let mut script_bytes = 0;
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        assert!(
            path.starts_with("/app/") || path.starts_with("/assets/"),
            "{path}"
        );
        let response = app
            .client
            .get(app.url(&path))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-encoding"], "gzip", "{path}");
        let is_script = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript");
        let gzipped = response.bytes().await.unwrap();
        if is_script {
            script_bytes += gzipped.len();
        }
        if path.starts_with("/app/") {
            let plain = app
                .client
                .get(app.url(&path))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            queue.extend(references(&plain));
        }
    }
    for module in ["app.js", "buyer.js", "organizer.js", "seatmap.js", "api.js"] {
        assert!(seen.contains(&format!("/app/{module}")), "{seen:?}");
    }
    assert!(
        script_bytes < 200 * 1024,
        "{script_bytes} bytes of JavaScript, gzipped (budget 200 KB)"
    );
    let missing = app
        .client
        .get(app.url("/app/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}
