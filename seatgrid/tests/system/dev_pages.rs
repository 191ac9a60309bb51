//! The developer pages (GraphiQL at `/graphql`, Swagger UI at `/api/docs`) work without internet:
//! every script and style they load is served by SeatGrid itself, and Debian's Chromium, run
//! headless with every host but this one unresolvable, renders both.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::spawn_system;

/// `src` and `href` values of a page.
fn asset_paths(page: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attr) {
            let rest = &page[at + attr.len()..];
            paths.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_developer_pages_load_every_asset_from_this_server() {
    let app = spawn_system().await;
    for page in ["/graphql", "/api/docs"] {
        let response = app
            .client
            .get(format!("{}{page}", app.address))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{page}");
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("https://") && !html.contains("unpkg"),
            "{page} uses a CDN"
        );
        let assets = asset_paths(&html);
        assert!(assets.len() >= 2, "{page}: {assets:?}");
        for path in assets {
            assert!(path.starts_with("/assets/"), "{page} loads {path}");
            let url = format!("{}{path}", app.address);
            let asset = app
                .client
                .get(&url)
                .header("accept-encoding", "gzip, br")
                .send()
                .await
                .unwrap();
            assert_eq!(asset.status(), 200, "{path}");
            assert_eq!(asset.headers()["content-encoding"], "gzip", "{path}");
            let body = asset.bytes().await.unwrap();
            assert_eq!(&body[..2], [0x1f, 0x8b], "{path} is gzip");
            let plain = app.client.get(&url).send().await.unwrap();
            assert_eq!(plain.status(), 406, "{path} without gzip");
        }
    }
    let missing = app
        .client
        .get(format!("{}/assets/dev-3.8.3-5.32.0/nope.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// The DOM of `url` after Chromium ran its scripts, with only 127.0.0.1 resolvable.
fn rendered(url: &str) -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {chromium} ({e}): install Debian's chromium (scripts/test does)")
        });
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("chromium did not finish rendering {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_and_swagger_ui_render_in_chromium_without_internet() {
    let app = spawn_system().await;
    let graphiql_url = format!("{}/graphql", app.address);
    let docs_url = format!("{}/api/docs", app.address);
    let (graphiql, docs) =
        tokio::task::spawn_blocking(move || (rendered(&graphiql_url), rendered(&docs_url)))
            .await
            .unwrap();
    assert!(
        graphiql.contains("graphiql-container"),
        "GraphiQL did not render: {graphiql:.500}"
    );
    assert!(!graphiql.contains("Loading GraphiQL..."), "{graphiql:.500}");
    assert!(
        docs.contains("opblock"),
        "Swagger UI did not render: {docs:.500}"
    );
    assert!(
        docs.contains("/holds"),
        "Swagger UI did not list the operations: {docs:.500}"
    );
}
