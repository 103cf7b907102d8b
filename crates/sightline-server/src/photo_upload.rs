//! `POST /api/photos/{user}/{requestId}`: a photo the phone uploads to
//! Sightline, for phones that cannot reach the app server directly. The
//! glasses' `photo_request` names this URL (`uploadUrl`) and a token for
//! this one request (`uploadToken`, sent as `Authorization: Bearer`).
//!
//! The token is checked before the body is read; the body is multipart
//! with the image in a part named `photo` (as the SDK's own route takes
//! it), at most [`crate::limits::Limits::photo_upload_bytes`], and must be
//! an image both by its declared type and by its first bytes. The photo is
//! then delivered to the app's `/photo-upload` the way the SDK expects, and
//! the phone hears whether the app took it.

use actix_multipart::Multipart;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::json;
use sightline_runtime::devices::UploadRefused;
use sightline_runtime::session::{PhotoDestination, PhotoUploaded};
use sightline_runtime::supervisor::FindSession;

use crate::auth::bearer;
use crate::error::ApiError;
use crate::SharedState;

/// Image types accepted, with the bytes each file starts with.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.len() >= 12
        && &bytes[4..8] == b"ftyp"
        && (&bytes[8..12] == b"heic" || &bytes[8..12] == b"heix" || &bytes[8..12] == b"mif1")
    {
        Some("image/heic")
    } else {
        None
    }
}

/// The photo read from the upload.
struct Photo {
    bytes: Bytes,
    mime: &'static str,
    filename: String,
}

#[utoipa::path(
    post, path = "/api/photos/{user}/{requestId}", tag = "users",
    params(
        ("user" = String, Path, description = "The user the photo was asked of"),
        ("requestId" = String, Path, description = "The app's photo request id"),
    ),
    request_body(content_type = "multipart/form-data", description = "The image in a part named `photo`"),
    responses(
        (status = 200, description = "`{success, requestId}`: delivered to the app"),
        (status = 401, description = "Missing or wrong upload token", body = crate::views::ErrorBody),
        (status = 404, description = "No such photo request waiting", body = crate::views::ErrorBody),
        (status = 413, description = "Photo too large", body = crate::views::ErrorBody),
        (status = 415, description = "Not an image", body = crate::views::ErrorBody),
        (status = 502, description = "The app did not take the photo", body = crate::views::ErrorBody),
    ),
    security(("upload_token" = []))
)]
pub async fn upload(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<SharedState>,
) -> Result<HttpResponse, ApiError> {
    let (user, request_id) = path.into_inner();
    let token = bearer(req.headers())
        .ok_or(ApiError::Unauthorized)?
        .to_string();
    let session = state
        .runtime
        .supervisor
        .send(FindSession {
            user_id: user.clone(),
        })
        .await
        .map_err(|_| ApiError::Internal("the session supervisor is gone"))?
        .ok_or_else(|| ApiError::NotFound(format!("no session of {user} is running")))?;
    let ask = |take| PhotoUploaded {
        request_id: request_id.clone(),
        token: token.clone(),
        take,
    };
    let refused = |e: actix::MailboxError| {
        tracing::debug!(error = %e, "session ended during a photo upload");
        ApiError::NotFound("the session ended".into())
    };
    // The token first: nothing is read for a request that is not waiting.
    session
        .send(ask(false))
        .await
        .map_err(refused)?
        .map_err(unknown_request)?;
    let multipart_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart_type {
        return Err(ApiError::Unsupported(
            "the photo must be sent as multipart/form-data with a part named \"photo\"".into(),
        ));
    }
    let limit = state.config.limits.photo_upload_bytes;
    let photo = read_photo(Multipart::new(req.headers(), payload), limit).await?;
    let PhotoDestination {
        package,
        upload_url,
        auth_token,
    } = session
        .send(ask(true))
        .await
        .map_err(refused)?
        .map_err(unknown_request)?;
    deliver(&upload_url, &auth_token, &request_id, &photo, state.runtime.config.webhook_timeout)
        .await
        .map_err(|why| {
            tracing::warn!(package = %package, request_id = %request_id, error = %why, "a photo uploaded through Sightline could not be delivered to the app");
            ApiError::Upstream(format!("the app did not take the photo: {why}"))
        })?;
    tracing::info!(package = %package, request_id = %request_id, bytes = photo.bytes.len(), "photo uploaded through Sightline delivered to the app");
    Ok(HttpResponse::Ok().json(json!({"success": true, "requestId": request_id})))
}

fn unknown_request(why: UploadRefused) -> ApiError {
    match why {
        UploadRefused::WrongToken => ApiError::Unauthorized,
        other => ApiError::NotFound(format!("photo request: {other}")),
    }
}

/// Reads the `photo` part, bounded, skipping any other part.
async fn read_photo(mut form: Multipart, limit: usize) -> Result<Photo, ApiError> {
    let bad = |e: actix_multipart::MultipartError| {
        ApiError::BadRequest(format!("malformed multipart body: {e}"))
    };
    let mut skipped = 0usize;
    let mut parts = 0usize;
    while let Some(field) = form.next().await {
        parts += 1;
        if parts > 16 {
            return Err(ApiError::TooLarge("an upload has at most 16 parts".into()));
        }
        let mut field = field.map_err(bad)?;
        let is_photo = field.name() == Some("photo");
        let declared = field
            .content_type()
            .map(|m| m.essence_str().to_string())
            .unwrap_or_default();
        let filename = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(|f| f.chars().take(200).collect::<String>())
            .unwrap_or_else(|| "photo.jpg".into());
        let mut buf = BytesMut::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(bad)?;
            if is_photo {
                if buf.len() + chunk.len() > limit {
                    return Err(ApiError::TooLarge(format!(
                        "the photo is larger than {limit} bytes"
                    )));
                }
                buf.extend_from_slice(&chunk);
            } else {
                skipped += chunk.len();
                if skipped > 64 * 1024 {
                    return Err(ApiError::TooLarge(
                        "parts other than the photo are limited to 64 KiB".into(),
                    ));
                }
            }
        }
        if !is_photo {
            continue;
        }
        if !declared.starts_with("image/") {
            return Err(ApiError::Unsupported(format!(
                "the photo part is {declared:?}, not an image"
            )));
        }
        let Some(mime) = sniff(&buf) else {
            return Err(ApiError::Unsupported(
                "the photo is not a JPEG, PNG, WebP or HEIC image".into(),
            ));
        };
        return Ok(Photo {
            bytes: buf.freeze(),
            mime,
            filename,
        });
    }
    Err(ApiError::BadRequest(
        "no part named \"photo\" in the upload".into(),
    ))
}

/// POSTs the photo to the app's `/photo-upload` as the glasses would:
/// multipart with `requestId` and the file under `photo`.
async fn deliver(
    url: &str,
    auth_token: &str,
    request_id: &str,
    photo: &Photo,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let boundary = format!("sightline-{}", sightline_runtime::devices::fresh_token());
    let quoted = |s: &str| s.replace(['"', '\r', '\n', '\\'], "_");
    let mut body = BytesMut::with_capacity(photo.bytes.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"requestId\"\r\n\r\n{}\r\n",
            quoted(request_id)
        )
        .as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            quoted(&photo.filename),
            photo.mime
        )
        .as_bytes(),
    );
    body.extend_from_slice(&photo.bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let client = awc::Client::builder().timeout(timeout).finish();
    let res = client
        .post(url)
        .insert_header((
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        ))
        .insert_header(("authorization", format!("Bearer {auth_token}")))
        .send_body(body.freeze())
        .await
        .map_err(|e| e.to_string())?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered HTTP {}", res.status().as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn images_are_recognised_by_their_first_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"<html>not a photo</html>"), None);
        assert_eq!(sniff(b""), None);
    }
}
