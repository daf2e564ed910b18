//! Listings read deep pages at the cost of shallow ones: `?after=` continues after the
//! last id of the page before, and a full page names the next in its `Link` header.

use std::time::Duration;

use penguin::config::PeerSettings;
use penguin::service::Service::{self, Inventario, Pagos, Pedidos, Productos};
use serde_json::{Value, json};

use crate::helpers::{TestApp, fast_peers};

fn orden(producto_id: i64) -> Value {
    json!({"items": [{"producto_id": producto_id, "cantidad": 1}], "pago": {"medio": "tarjeta", "moneda": "PYG"}})
}

/// Every row of `path`, following each full page's `Link: <...>; rel="next"` from a
/// first page of `limit` rows; and how many pages it took.
async fn follow(app: &TestApp, service: Service, path: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut rows = Vec::new();
    let mut next = Some(format!("{path}?limit={limit}"));
    let mut pages = 0;
    while let Some(url) = next.take() {
        let page = app.get(service, &url).await;
        assert_eq!(page.status, 200, "{url}: {page:?}");
        pages += 1;
        let got = page.body.as_array().expect("a JSON array").clone();
        let link = page.headers.get("link").map(|v| v.to_str().unwrap().to_string());
        if got.len() == limit {
            let link = link.unwrap_or_else(|| panic!("{url}: a full page names the next"));
            let target = link
                .strip_prefix('<')
                .and_then(|l| l.strip_suffix(">; rel=\"next\""))
                .unwrap_or_else(|| panic!("{url}: Link {link:?}"));
            assert!(
                target.starts_with(&format!("{path}?limit={limit}&after=")),
                "{target}"
            );
            next = Some(target.to_string());
        } else {
            assert_eq!(link, None, "{url}: the last page names no next");
        }
        rows.extend(got);
    }
    (rows, pages)
}

#[actix_web::test]
async fn every_listing_is_walked_by_its_next_links_and_matches_the_whole_list() {
    let app = TestApp::spawn_all().await;
    let mut productos = Vec::new();
    for n in 0..5 {
        let id = app.stocked(&format!("Hielo {n}"), json!(10), 10).await;
        productos.push(id);
    }
    for &id in &productos {
        assert_eq!(app.post(Pedidos, "/pedidos", orden(id)).await.status, 201);
    }
    for (service, path) in [
        (Productos, "/productos"),
        (Inventario, "/stock"),
        (Pedidos, "/pedidos"),
        (Pagos, "/pagos"),
    ] {
        let whole = app.get(service, &format!("{path}?limit=1000")).await;
        assert_eq!(whole.headers.get("link"), None, "{path}: not full, no next");
        let whole = whole.body.as_array().unwrap().clone();
        assert_eq!(whole.len(), 5, "{path}");
        let (walked, pages) = follow(&app, service, path, 2).await;
        assert_eq!(walked, whole, "{path}: the pages make the list");
        assert_eq!(pages, 3, "{path}: 2 + 2 + 1");
        let (walked, pages) = follow(&app, service, path, 5).await;
        assert_eq!(
            (walked.len(), pages),
            (5, 2),
            "{path}: a full last page, then an empty one"
        );

        // `after` with `offset`: skipped after the id; past the end, an empty page.
        let id_of = |row: &Value| {
            row.get("id")
                .or_else(|| row.get("pago_id"))
                .or_else(|| row.get("producto_id"))
                .and_then(Value::as_i64)
                .unwrap()
        };
        let after = id_of(&whole[0]);
        let page = app
            .get(service, &format!("{path}?after={after}&offset=1&limit=2"))
            .await;
        assert_eq!(page.body, json!(whole[2..4]), "{path}");
        let page = app
            .get(service, &format!("{path}?after=9223372036854775807"))
            .await;
        assert_eq!((page.status, page.body), (200, json!([])), "{path}");
        let page = app
            .get(service, &format!("{path}?after=99999999999999999999999"))
            .await;
        assert_eq!((page.status, page.body), (200, json!([])), "{path}");
    }
    for bad in ["-1", "abc", "1.5", ""] {
        let answer = app.get(Pedidos, &format!("/pedidos?after={bad}")).await;
        assert!(matches!(answer.status, 400 | 422), "after={bad}: {answer:?}");
        assert!(answer.body["error"].is_string(), "{answer:?}");
        assert!(
            answer.body["detail"].as_str().unwrap().contains("`after`"),
            "{answer:?}"
        );
    }
    // With `ids`, the page is of the products named, in the order asked.
    let named = |row: &Value| row["id"].as_i64().unwrap();
    let (a, b, c) = (productos[0], productos[1], productos[2]);
    let answer = app
        .get(Productos, &format!("/productos?ids={c},{a},{b}&after={a}"))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let ids: Vec<i64> = answer.body.as_array().unwrap().iter().map(named).collect();
    assert_eq!(ids, [c, b]);
    let answer = app
        .get(Productos, &format!("/productos?ids={c},{a},{b}&offset=1&limit=1"))
        .await;
    let ids: Vec<i64> = answer.body.as_array().unwrap().iter().map(named).collect();
    assert_eq!(ids, [a]);
}

#[actix_web::test]
async fn an_idempotency_key_is_forgotten_after_its_retention_once_its_order_is_over() {
    let peers = PeerSettings {
        idempotency_retention: Duration::from_secs(1),
        ..fast_peers()
    };
    let app = TestApp::spawn_all_with(peers).await;
    let hielo = app.stocked("Hielo", json!(10), 10).await;
    let first = app
        .post_with_key(Pedidos, "/pedidos", &orden(hielo), "una-vez")
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let again = app
        .post_with_key(Pedidos, "/pedidos", &orden(hielo), "una-vez")
        .await;
    assert_eq!(
        again.body["id"], first.body["id"],
        "within the retention, a replay"
    );
    // Recovery passes every 200 ms forget the key once it is a second old.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let later = app
            .post_with_key(Pedidos, "/pedidos", &orden(hielo), "una-vez")
            .await;
        if later.body["id"] != first.body["id"] {
            assert_eq!(later.status, 201, "{later:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the key was never forgotten"
        );
    }
    assert_eq!(
        app.stock(hielo).await,
        (8, 0, 2),
        "two orders, each reserved once"
    );
}

#[actix_web::test]
async fn idempotency_keys_are_kept_for_a_day_by_default() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(10), 10).await;
    let first = app
        .post_with_key(Pedidos, "/pedidos", &orden(hielo), "guardada")
        .await;
    // Several recovery passes (every 200 ms here) go by.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = app
        .post_with_key(Pedidos, "/pedidos", &orden(hielo), "guardada")
        .await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(app.stock(hielo).await, (9, 0, 1));
}
