//! The ceiling of `scripts/bench.sh` for an order: the bare server of `hello.rs`
//! (penguin's runtime settings, one worker per CPU) whose `GET /` first makes four
//! sequential GETs to a peer — another `hello` — as a one-item order makes four peer
//! calls (price, reserve, charge, confirm), then answers "hello". No database, no
//! JSON, no logging: what is left is the cost of the HTTP chain alone, so an order's
//! throughput and CPU are also shown against it. Each worker has its own pooled,
//! kept-alive client, as pedidos does.
//!
//!   cargo run --release --example chain -- 127.0.0.1:8081 http://127.0.0.1:8080/

use actix_web::error::ErrorBadGateway;
use actix_web::{App, HttpServer, web};

/// The peer as one worker reaches it.
struct Peer {
    client: awc::Client,
    url: String,
}

async fn chained(peer: web::Data<Peer>) -> actix_web::Result<&'static str> {
    for _ in 0..4 {
        let mut answer = peer.client.get(&peer.url).send().await.map_err(ErrorBadGateway)?;
        answer.body().await.map_err(ErrorBadGateway)?;
        if !answer.status().is_success() {
            return Err(ErrorBadGateway(format!("the peer answered {}", answer.status())));
        }
    }
    Ok("hello")
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8081".into());
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    HttpServer::new(move || {
        // The pool limit and the kept-alive connections of pedidos' peer client
        // (PEER_MAX_CONNECTIONS defaults to 256), so the ceiling is fair.
        let connector = awc::Connector::new().limit(256);
        let client = awc::Client::builder()
            .connector(connector)
            .disable_timeout()
            .disable_redirects()
            .finish();
        App::new()
            .app_data(web::Data::new(Peer {
                client,
                url: url.clone(),
            }))
            .route("/", web::get().to(chained))
    })
    .bind(addr)?
    .run()
    .await
}
