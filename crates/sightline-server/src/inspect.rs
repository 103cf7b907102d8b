//! `GET /inspect`: the live inspector page. One static HTML file, embedded in
//! the binary, with no build step. The page itself is public; everything it
//! shows comes from the admin routes of [`crate::actors`], which it calls with
//! the admin token the operator enters once (kept in the browser's local
//! storage, or passed once as `#token=` in the address, which never reaches
//! the server).

use actix_web::http::header;
use actix_web::HttpResponse;

const PAGE: &str = include_str!("../assets/inspect.html");

pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ))
        .body(PAGE)
}
