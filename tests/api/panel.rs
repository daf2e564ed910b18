//! pedidos' status page: `GET /panel` (a page without data, no token) and
//! `GET /panel/estado` (its JSON, token). The services run as four processes of the
//! real binary, so that inventario can be stopped and started again on its port.
//!
//! The browser test drives the page in headless Chromium through chromedriver
//! (WebDriver over HTTP): it is skipped, saying why, where they are not installed, and
//! fails instead under CI (`.ci/run` installs them). It
//! saves its screenshots under `target/tmp/panel/`.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::{
    Answer, Http, Script, ScriptedPeer, TOKEN, free_port, order_body, say, serve_alone, skip,
};
use crate::shop::{Layout, Shop};
use penguin::service::Service;

/// The four services as processes, each on its own port: one failed call opens a
/// circuit, which lets a trial through two seconds later.
async fn shop() -> Shop {
    let env = [
        ("WORKERS", "1"),
        ("BREAKER_FAILURES", "1"),
        ("BREAKER_OPEN_SECS", "2"),
        ("RETRY_ATTEMPTS", "1"),
        ("PEER_TIMEOUT_MS", "1000"),
        ("RECOVERY_INTERVAL", "1"),
    ];
    Shop::start(Layout::Apart, &env).await
}

/// An order of one unit of `producto`, its payment rejected if `fail`.
async fn pedir(shop: &Shop, producto: i64, fail: bool) -> Answer {
    shop.post(Service::Pedidos, "/pedidos", order_body(&[(producto, 1)], fail))
        .await
}

async fn panel_estado(shop: &Shop) -> Value {
    let answer = shop.get(Service::Pedidos, "/panel/estado").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item[key] == value))
        .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
}

#[actix_web::test]
async fn the_page_holds_no_data_and_its_json_needs_the_token() {
    let shop = shop().await;
    let page = shop
        .http
        .call(Method::GET, format!("{}/panel", shop.url(Service::Pedidos)))
        .send()
        .await
        .expect("the page");
    assert_eq!(page.status, 200);
    let content_type = page.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("text/html; charset=utf-8"));
    let policy = page
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"),
        "{policy}"
    );
    for outside in ["http://", "https://", "//cdn", "src=\""] {
        assert!(!page.text.contains(outside), "the page loads {outside}…");
    }
    assert!(page.text.contains("sessionStorage") && page.text.contains("/panel/estado"));

    let refused = shop
        .http
        .call(
            Method::GET,
            format!("{}/panel/estado", shop.url(Service::Pedidos)),
        )
        .send()
        .await
        .expect("an answer");
    refused.assert_refused(401, "unauthorized");

    let hielo = shop.stocked("Hielo <b>frío</b>", json!(12.5), 10).await;
    assert_eq!(pedir(&shop, hielo, false).await.status, 201);
    assert_eq!(pedir(&shop, hielo, true).await.status, 402);
    let estado = panel_estado(&shop).await;
    for service in ["pedidos", "productos", "inventario", "pagos"] {
        let servicio = find(&estado["servicios"], "service", service);
        assert_eq!(servicio["ready"], true, "{servicio}");
        assert_eq!(servicio["version"], env!("CARGO_PKG_VERSION"));
    }
    for peer in ["productos", "inventario", "pagos"] {
        assert_eq!(find(&estado["circuitos"], "peer", peer)["circuit"], "closed");
    }
    let pedidos = estado["pedidos"].as_array().expect("orders");
    assert_eq!(pedidos.len(), 2);
    assert_eq!(pedidos[0]["estado"], "rechazado", "newest first");
    assert!(pedidos[0]["motivo"].as_str().unwrap().contains("rejected"));
    assert_eq!(pedidos[1]["estado"], "confirmado");
    assert_eq!(pedidos[1]["request_id"].as_str().map(str::len), Some(32));
    assert_eq!(
        estado["ultimo_minuto"],
        json!({"pendiente": 0, "confirmado": 1, "rechazado": 1, "fallido": 0})
    );
    let producto = find(&estado["productos"], "nombre", "Hielo <b>frío</b>");
    assert_eq!(
        (
            &producto["disponible"],
            &producto["reservado"],
            &producto["confirmado"]
        ),
        (&json!(9), &json!(0), &json!(1))
    );

    // inventario stopped: it is shown not ready, the stock as unknown, and an order fails.
    shop.kill(Some(Service::Inventario));
    let failed = pedir(&shop, hielo, false).await;
    assert_eq!(failed.status, 503, "{failed:?}");
    let estado = panel_estado(&shop).await;
    let inventario = find(&estado["servicios"], "service", "inventario");
    assert_eq!(inventario["ready"], false);
    assert!(
        inventario["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{inventario}"
    );
    assert_eq!(
        find(&estado["circuitos"], "peer", "inventario")["circuit"],
        "open"
    );
    assert!(find(&estado["circuitos"], "peer", "inventario")["retry_at"].is_string());
    assert!(
        estado["productos_detalle"]
            .as_str()
            .unwrap_or_default()
            .contains("inventario")
    );
    assert_eq!(
        find(&estado["productos"], "nombre", "Hielo <b>frío</b>")["disponible"],
        Value::Null
    );
    assert_eq!(estado["pedidos"][0]["estado"], "fallido");
    assert_eq!(estado["ultimo_minuto"]["fallido"], 1);
}

#[actix_web::test]
async fn peers_that_hang_or_cut_their_answers_are_shown_not_ready_and_their_circuits_untouched() {
    let hung = ScriptedPeer::start(Script::Hang).await;
    let cut = ScriptedPeer::start(Script::Answer(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"status\": \"ready\"}",
    ))
    .await;
    let odd = ScriptedPeer::start(Script::Answer(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]",
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _pedidos = serve_alone(
        dir.path(),
        Service::Pedidos,
        port,
        &[
            ("PRODUCTS_URL", odd.url()),
            ("INVENTORY_URL", hung.url()),
            ("PAYMENTS_URL", cut.url()),
            ("BREAKER_FAILURES", "1".into()),
        ],
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = Http::default();
    for _ in 0..3 {
        let asked = Instant::now();
        let answer = http
            .call(Method::GET, format!("{url}/panel/estado"))
            .token(TOKEN)
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(asked.elapsed() < Duration::from_secs(3), "{:?}", asked.elapsed());
        let estado = answer.body;
        let servicio = |name: &str| find(&estado["servicios"], "service", name).clone();
        assert_eq!(servicio("pedidos")["ready"], true);
        let inventario = servicio("inventario");
        assert_eq!(inventario["ready"], false);
        assert!(
            inventario["detail"].as_str().unwrap().contains("no answer"),
            "{inventario}"
        );
        let pagos = servicio("pagos");
        assert_eq!(pagos["ready"], false);
        assert!(pagos["detail"].as_str().unwrap().contains("cut short"), "{pagos}");
        let productos = servicio("productos");
        assert_eq!(
            productos["ready"], false,
            "a 200 that does not say ready: {productos}"
        );
        assert_eq!(estado["productos"], json!([]));
        for peer in ["productos", "inventario", "pagos"] {
            assert_eq!(
                find(&estado["circuitos"], "peer", peer)["circuit"],
                "closed",
                "{peer}"
            );
        }
    }
    let metrics = http
        .call(Method::GET, format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert!(
        !metrics.text.contains("penguin_peer_calls_total{"),
        "reading the peers is not using them: {}",
        metrics.text
    );
}

/// chromedriver, started on a free port, and one browser session in it.
struct Browser {
    driver: Child,
    http: Http,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `Err` says what is missing.
    async fn start() -> Result<Self, String> {
        let chromium = [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or("chromium is not installed (apt-get install chromium chromium-driver)")?;
        let port = free_port();
        // Its own process group, so that dropping it ends the browsers it started too.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("chromedriver cannot be run ({e}): apt-get install chromium-driver"))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = Http::default();
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut browser = Self {
            driver,
            http,
            session: String::new(),
            base,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = browser
                .http
                .call(Method::GET, format!("{}/status", browser.base))
                .send()
                .await;
            if status.is_ok_and(|s| s.body["value"]["ready"] == true) {
                break;
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not start".into());
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = browser._profile.path().display().to_string();
        let session = browser
            .http
            .call(Method::POST, format!("{}/session", browser.base))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--window-size=1280,1100", format!("--user-data-dir={profile}")],
                },
            }}}))
            .send()
            .await?;
        browser.session = session.body["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no browser session: {}", session.text))?
            .to_string();
        Ok(browser)
    }

    async fn command(&self, method: Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut call = self.http.call(method.clone(), url);
        if method == Method::POST {
            call = call.json(&body);
        }
        let answer = call.send().await.expect("chromedriver answers");
        assert_eq!(answer.status, 200, "WebDriver {path}: {}", answer.text);
        answer.body["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command(Method::POST, "/url", json!({"url": url})).await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .command(
                Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .expect("an element")
            .to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.command(
            Method::POST,
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.command(Method::POST, &format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// Runs `script` in the page and returns what it returns.
    async fn run(&self, script: &str) -> Value {
        self.command(
            Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// What the page shows a person: each part's visible text, and its state attributes.
    async fn shown(&self) -> Value {
        self.run(
            "const rows = (sel) => [...document.querySelectorAll(sel)].map((r) => ({
               text: r.innerText, estado: r.dataset.estado, circuit: r.dataset.circuit,
               ready: r.dataset.ready,
               id: r.dataset.pedido || r.dataset.peer || r.dataset.service || r.dataset.producto,
               color: getComputedStyle(r.querySelector('.badge') || r).color }));
             return {
               login: !document.getElementById('login').hidden,
               login_error: document.getElementById('login-error').innerText,
               panel: !document.getElementById('panel').hidden,
               problem: document.getElementById('problem').innerText,
               servicios: rows('#servicios .card'), circuitos: rows('#circuitos tr'),
               pedidos: rows('#pedidos tr[data-pedido]'), productos: rows('#productos tr'),
               minuto: Object.fromEntries([...document.querySelectorAll('#minuto [data-estado]')]
                 .map((d) => [d.dataset.estado, Number(d.querySelector('strong').innerText)])),
               token_in_url: location.href.includes('token'),
             };",
        )
        .await
    }

    /// Waits until what the page shows passes `check`; panics with it after 20 s.
    async fn wait_for(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let shown = self.shown().await;
            if check(&shown) {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {what}: {shown:#}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.command(Method::GET, "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("a PNG");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("panel");
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("the screenshot written");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.driver.id()) {
            // SAFETY: kill(2) on the process group chromedriver leads; no memory is shared.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.driver.wait();
    }
}

fn row<'a>(shown: &'a Value, part: &str, id: &str) -> Option<&'a Value> {
    shown[part].as_array()?.iter().find(|r| r["id"] == id)
}

fn text(shown: &Value, part: &str, id: &str) -> String {
    row(shown, part, id)
        .and_then(|r| r["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[actix_web::test]
async fn a_person_sees_orders_circuits_and_stock_in_a_real_browser() {
    let browser = match Browser::start().await {
        Ok(browser) => browser,
        Err(why) => return skip(&why),
    };
    let shop = shop().await;
    let hielo = shop.stocked("Hielo", json!(12.5), 10).await;

    // Before the token: the form, and nothing else.
    browser
        .open(&format!("{}/panel", shop.url(Service::Pedidos)))
        .await;
    let shown = browser.wait_for("the token form", |s| s["login"] == true).await;
    assert_eq!(shown["panel"], false);
    browser.type_into("#token", "not-the-token").await;
    browser.click("#entrar").await;
    let shown = browser
        .wait_for("a refused token", |s| {
            s["login_error"].as_str().is_some_and(|e| e.contains("refused"))
        })
        .await;
    assert_eq!(shown["panel"], false);
    // A token no header can carry is refused at once, not sent.
    browser.type_into("#token", "s\u{e9}cret\u{201d}").await;
    browser.click("#entrar").await;
    browser
        .wait_for("a token with accents refused", |s| {
            s["login_error"]
                .as_str()
                .is_some_and(|e| e.contains("no accents"))
        })
        .await;
    browser.run("document.getElementById('token').value = ''").await;

    browser.type_into("#token", TOKEN).await;
    browser.click("#entrar").await;
    browser.wait_for("the panel", |s| s["panel"] == true).await;
    let stored = browser
        .run("return sessionStorage.getItem('penguin-token')")
        .await;
    assert_eq!(stored, TOKEN, "the token is kept in the tab's session storage");

    let confirmado = pedir(&shop, hielo, false).await;
    assert_eq!(confirmado.status, 201, "{confirmado:?}");
    let rechazado = pedir(&shop, hielo, true).await;
    assert_eq!(rechazado.status, 402, "{rechazado:?}");
    shop.kill(Some(Service::Inventario));
    let fallido = pedir(&shop, hielo, false).await;
    assert_eq!(fallido.status, 503, "{fallido:?}");
    let ids = [&confirmado, &rechazado, &fallido].map(|a| a.body["id"].to_string());

    let shown = browser
        .wait_for("three orders and inventario's circuit open", |s| {
            row(s, "pedidos", &ids[2]).is_some()
                && row(s, "circuitos", "inventario").is_some_and(|r| r["circuit"] == "open")
        })
        .await;
    for (id, estado) in ids.iter().zip(["confirmado", "rechazado", "fallido"]) {
        let shown_row = row(&shown, "pedidos", id).expect("the order's row");
        assert_eq!(shown_row["estado"], estado);
        let text = shown_row["text"].as_str().unwrap_or_default();
        assert!(text.contains(estado), "the estado in words: {text}");
        assert!(text.contains("12.5 PYG"), "the total: {text}");
    }
    let order = |n: usize| [&confirmado, &rechazado, &fallido][n].body.clone();
    assert!(
        text(&shown, "pedidos", &ids[0]).contains(order(0)["request_id"].as_str().unwrap()),
        "the request id to grep for"
    );
    assert!(
        text(&shown, "pedidos", &ids[1]).contains("rejected"),
        "why it was rejected"
    );
    let motivo = order(2)["motivo"].as_str().unwrap().to_string();
    assert!(
        text(&shown, "pedidos", &ids[2]).contains(&motivo),
        "why it failed: {motivo}"
    );
    // Failed states differ by colour as well as by text.
    let color = |id: &str| row(&shown, "pedidos", id).unwrap()["color"].clone();
    assert_ne!(color(&ids[0]), color(&ids[2]));
    assert_ne!(color(&ids[0]), color(&ids[1]));

    let circuit = text(&shown, "circuitos", "inventario");
    assert!(circuit.contains("OPEN"), "{circuit}");
    assert!(
        circuit.contains("in ") || circuit.contains("the trial"),
        "the next trial: {circuit}"
    );
    assert!(text(&shown, "circuitos", "pagos").contains("closed"));
    let inventario = row(&shown, "servicios", "inventario").expect("inventario's card");
    assert_eq!(inventario["ready"], "false");
    assert!(inventario["text"].as_str().unwrap().contains("NOT READY"));
    assert_eq!(
        shown["minuto"],
        json!({"confirmado": 1, "pendiente": 0, "rechazado": 1, "fallido": 1})
    );
    assert_eq!(shown["token_in_url"], false);
    let open = browser.screenshot("panel-circuit-open.png").await;

    // inventario back: an order goes through, the circuit closes, the stock shows again.
    shop.run(Some(Service::Inventario)).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let repuesto = loop {
        let answer = pedir(&shop, hielo, false).await;
        if answer.status == 201 {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "inventario never came back: {answer:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    };
    let id = repuesto.body["id"].to_string();
    let shown = browser
        .wait_for("inventario's circuit closed again", |s| {
            row(s, "circuitos", "inventario").is_some_and(|r| r["circuit"] == "closed")
                && row(s, "servicios", "inventario").is_some_and(|r| r["ready"] == "true")
                && row(s, "pedidos", &id).is_some_and(|r| r["estado"] == "confirmado")
        })
        .await;
    assert!(text(&shown, "circuitos", "inventario").contains("closed"));
    let stock = panel_estado(&shop).await["productos"][0].clone();
    let units = text(&shown, "productos", &hielo.to_string());
    assert!(
        units.contains(&format!(
            "{}\t{}\t{}",
            stock["disponible"], stock["reservado"], stock["confirmado"]
        )),
        "available, reserved and sold: {units:?} for {stock}"
    );
    let closed = browser.screenshot("panel.png").await;

    // On a phone's width the page does not scroll sideways; wide tables scroll in place.
    browser
        .command(Method::POST, "/window/rect", json!({"width": 390, "height": 844}))
        .await;
    let fits = browser
        .run("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        .await;
    assert_eq!(fits, true, "the page is as wide as a phone");
    browser.screenshot("panel-phone.png").await;
    let _ = browser.command(Method::DELETE, "", Value::Null).await;
    say(&format!(
        "panel screenshots: {} and {}",
        open.display(),
        closed.display()
    ));
}
