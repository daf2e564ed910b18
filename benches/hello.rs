//! The baseline of `scripts/bench.sh`: the smallest actix-web server, answering
//! `GET /` with "hello", with penguin's runtime settings (one worker per CPU). Every
//! penguin figure is also shown as a ratio to this one, measured in the same run
//! with the same load tool, because absolute figures drift on shared machines.
//!
//!   cargo run --release --example hello -- 127.0.0.1:8080

use actix_web::{App, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    HttpServer::new(|| App::new().route("/", web::get().to(|| async { "hello" })))
        .bind(addr)?
        .run()
        .await
}
