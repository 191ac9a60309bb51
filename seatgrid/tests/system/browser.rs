//! Browsers for the pages' tests: Debian's Chromium, headless, driven through `chromedriver`
//! (WebDriver) started as a process of its own for each test, with every host but 127.0.0.1
//! unresolvable (the pages must not need the internet). Screenshots go to `docs/screenshots/`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// A `chromedriver` process; stopped when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Driver {
    pub async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {driver} ({e}): install Debian's chromium-driver (scripts/test does)")
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, url }
    }

    /// A fresh browser (its own profile: its own storage and sign-in) with a window of
    /// `width` x `height`.
    pub async fn browser(&self, width: u32, height: u32) -> Browser {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", format!("--window-size={width},{height}"),
                         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session");
        Browser { client }
    }
}

pub struct Browser {
    pub client: Client,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap()
    }

    /// Waits until `script` returns something truthy; returns it.
    pub async fn until(&self, within: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let value = self.js(script, vec![]).await;
            if !(value.is_null()
                || value == json!(false)
                || value == json!("")
                || value == json!(0))
            {
                return value;
            }
            assert!(Instant::now() < deadline, "waited {within:?} for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element `css` selects; found again if the page redrew it meanwhile.
    pub async fn click(&self, css: &str) {
        self.on_element(
            css,
            |e| async move { e.click().await.map(|_| String::new()) },
        )
        .await;
    }

    /// Runs `act` on the element `css` selects, finding it again while the page replaces it (the
    /// pages redraw their panels on every live update).
    async fn on_element<F, Fut>(&self, css: &str, act: F) -> String
    where
        F: Fn(fantoccini::elements::Element) -> Fut,
        Fut: std::future::Future<Output = Result<String, fantoccini::error::CmdError>>,
    {
        for _ in 0..50 {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no {css}: {e}"));
            match act(element).await {
                Ok(out) => return out,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{css}: {e}"),
            }
        }
        panic!("{css} kept being replaced")
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        self.on_element(css, |e| async move { e.text().await })
            .await
    }

    /// Signs in through the development sign-in page, as `name` with `role`.
    pub async fn sign_in(&self, base: &str, name: &str, role: &str, next: &str) {
        self.goto(&format!("{base}/login?next={next}")).await;
        self.type_into("#login-name", name).await;
        self.js(
            "document.getElementById('login-role').value = arguments[0]",
            vec![json!(role)],
        )
        .await;
        self.click("#login-submit").await;
        self.until(
            Duration::from_secs(10),
            "the sign-in",
            "return localStorage.getItem('seatgrid.token') && location.pathname !== '/login'",
        )
        .await;
    }

    /// Waits for the event page's seat map to be drawn from the server's.
    pub async fn seat_map_ready(&self) {
        self.until(
            Duration::from_secs(20),
            "the seat map",
            "return window.seatgrid && window.seatgrid.map.version >= 0",
        )
        .await;
    }

    /// Clicks a seat on the seat map, where it is drawn.
    pub async fn click_seat(&self, seat: u32) {
        let at = self
            .js(
                "const m = window.seatgrid.map, c = m.seatCentre(arguments[0]);
                 return [c.x - m.cssWidth / 2, c.y - m.cssHeight / 2];",
                vec![json!(seat)],
            )
            .await;
        let canvas = self.client.find(Locator::Id("seat-map")).await.unwrap();
        let click = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement {
                element: canvas,
                duration: None,
                x: at[0].as_f64().unwrap(),
                y: at[1].as_f64().unwrap(),
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client.perform_actions(click).await.unwrap();
    }

    /// A seat's status on the page's map: `A`, `H` or `B`.
    pub async fn seat_status(&self, seat: u32) -> String {
        self.js(
            "return window.seatgrid.map.statusOf(arguments[0])",
            vec![json!(seat)],
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
    }

    /// Saves a screenshot as `docs/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(self) {
        self.client.close().await.ok();
    }
}
