//! Embedding Sightline in your own actix-web application.
//!
//! Your app keeps its own routes; Sightline's (`/glasses-ws`, `/app-ws`,
//! `/health`, `/api/admin/*`) are mounted beside them, sharing one server.
//!
//! Run: `SIGHTLINE_JWT_SECRET=dev-secret cargo run --example embed`
//! then open http://127.0.0.1:8080/hello.

use std::sync::Arc;

use actix_web::{web, App, HttpServer, Responder};
use sightline::store::MemoryStore;
use sightline::{ServerConfig, Sightline};

async fn hello() -> impl Responder {
    "Your own route, served next to Sightline's.\n"
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut config = match ServerConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("embed: {e}");
            std::process::exit(2);
        }
    };
    config.bind = ([127, 0, 0, 1], 8080).into();
    config.runtime.public_ws_url = "ws://127.0.0.1:8080/app-ws".into();

    let sightline = Sightline::builder(config)
        .store(Arc::new(MemoryStore::new()))
        .build()
        .map_err(std::io::Error::other)?;
    let routes = sightline.configure();

    println!("listening on http://127.0.0.1:8080 (Sightline at /glasses-ws and /app-ws)");
    HttpServer::new(move || {
        App::new()
            .configure(routes.clone())
            .route("/hello", web::get().to(hello))
    })
    .bind(("127.0.0.1", 8080))?
    .run()
    .await
}
