//! Photos: a `photo_request` goes to glasses with a camera, with where to
//! upload the picture (the app's `/photo-upload`, or Sightline's upload
//! route for phones that cannot reach the app) and the tokens each side
//! checks. A photo that cannot be taken fails through the app's upload
//! route, the only way SDK 2.1.29 rejects `requestPhoto()` early.

use std::time::{Duration, Instant};

use sightline_protocol::device::{self as wire, RequestKind};
use sightline_protocol::stream::permission_granted;

use super::{
    fresh_token, photo_failure, settled, settled_from, Asker, DeviceEffect, DeviceEffects,
    DeviceRequests, Outcome, Pending, PhotoTarget, Readiness, Settled,
};

impl DeviceRequests {
    pub(super) fn photo_url(&self, app: Asker) -> String {
        crate::webhook::endpoint(app.public_url, "/photo-upload")
    }

    pub(super) fn photo(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        p: wire::PhotoRequest,
    ) -> DeviceEffects {
        let package = app.package;
        let custom = p.custom_webhook_url.is_some();
        let upload_url = self.photo_url(app);
        let refusal = if !permission_granted(app.permissions, "CAMERA") {
            Some((
                Outcome::NoPermission,
                "PERMISSION_DENIED",
                "Camera permission required to take photos".to_string(),
            ))
        } else if !glasses.glasses {
            Some((
                Outcome::NotConnected,
                "PHONE_GLASSES_NOT_CONNECTED",
                "Smart glasses are not connected".to_string(),
            ))
        } else if !glasses.has("hasCamera") {
            Some((
                Outcome::NoCapability,
                "NO_CAMERA",
                format!("Connected glasses ({}) have no camera", glasses.model),
            ))
        } else if self
            .pending
            .contains_key(&(RequestKind::Photo, p.request_id.clone()))
        {
            Some((
                Outcome::Invalid,
                "DUPLICATE_REQUEST",
                "A photo with this requestId is already being taken".to_string(),
            ))
        } else if !self.has_room(package) {
            Some((
                Outcome::Busy,
                "TOO_MANY_REQUESTS",
                format!(
                    "This app already has {} device requests waiting",
                    self.config.max_pending_per_app
                ),
            ))
        } else {
            None
        };
        if let Some((outcome, code, message)) = refusal {
            if custom {
                // The SDK resolved this promise already; count it only.
                return vec![settled(
                    RequestKind::Photo,
                    package,
                    &p.request_id,
                    outcome,
                    Duration::ZERO,
                    message,
                )];
            }
            return vec![photo_failure(
                &upload_url,
                RequestKind::Photo,
                package,
                &p.request_id,
                code,
                &message,
                outcome,
                Duration::ZERO,
            )];
        }
        let webhook_url = p.custom_webhook_url.clone().unwrap_or(upload_url.clone());
        let auth_token = p
            .auth_token
            .clone()
            .unwrap_or_else(|| app.user_token.to_string());
        let upload_token = fresh_token();
        let upload_here = format!(
            "{}/{}",
            self.upload_base,
            percent_encoding::utf8_percent_encode(
                &p.request_id,
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        let frame = wire::glasses_photo_request(
            &wire::GlassesPhoto {
                request: &p,
                package,
                webhook_url: &webhook_url,
                auth_token: &auth_token,
                upload_url: &upload_here,
                upload_token: &upload_token,
            },
            &crate::now_iso(),
        );
        let target = PhotoTarget {
            upload_url: webhook_url,
            upload_token,
            auth_token,
            custom,
        };
        let wake = self.wait(
            now,
            RequestKind::Photo,
            package,
            &p.request_id,
            self.config.photo_deadline,
            Some(target),
        );
        vec![DeviceEffect::ToGlasses(frame), wake]
    }

    pub(super) fn fail_photo(
        &self,
        p: &Pending,
        now: Instant,
        code: &str,
        message: &str,
        outcome: Outcome,
    ) -> DeviceEffects {
        let took = now.saturating_duration_since(p.asked);
        match &p.photo {
            Some(t) if !t.custom => vec![photo_failure(
                &t.upload_url,
                p.kind,
                &p.package,
                &p.request_id,
                code,
                message,
                outcome,
                took,
            )],
            _ => vec![settled_from(p, now, outcome, message.into())],
        }
    }

    /// A photo the phone uploads through Sightline: if it answers a
    /// waiting request with the right token, the photo's destination is
    /// returned and, with `take`, the request settled (without, it is only
    /// checked, before the photo is read).
    pub fn photo_uploaded(
        &mut self,
        now: Instant,
        request_id: &str,
        token: &str,
        take: bool,
    ) -> Result<(PhotoTarget, Settled), UploadRefused> {
        let key = (RequestKind::Photo, request_id.to_string());
        let Some(target) = self.pending.get(&key).and_then(|p| p.photo.clone()) else {
            return Err(UploadRefused::NotWaiting);
        };
        let equal: bool =
            subtle::ConstantTimeEq::ct_eq(target.upload_token.as_bytes(), token.as_bytes()).into();
        if !equal {
            return Err(UploadRefused::WrongToken);
        }
        if target.custom {
            return Err(UploadRefused::OwnUrl);
        }
        let p = if take {
            self.pending.remove(&key)
        } else {
            self.pending.get(&key).cloned()
        }
        .ok_or(UploadRefused::NotWaiting)?;
        let s = Settled {
            kind: RequestKind::Photo,
            package: p.package.clone(),
            request_id: p.request_id.clone(),
            outcome: Outcome::Ok,
            took: now.saturating_duration_since(p.asked),
            reason: "uploaded through Sightline".into(),
        };
        Ok((target, s))
    }
}

/// Why a photo uploaded through Sightline is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefused {
    #[error("no photo with this requestId is waiting")]
    NotWaiting,
    #[error("the upload token does not match the request")]
    WrongToken,
    #[error("this photo goes to the app's own URL")]
    OwnUrl,
}
