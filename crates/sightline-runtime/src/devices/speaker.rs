//! The speaker and the LED: `audio_play_request` to the glasses (the
//! blocking ones wait for `audio_play_response`, within Sightline's
//! deadline) and `rgb_led_control` to glasses that have an LED.

use std::time::{Duration, Instant};

use sightline_protocol::device::{self as wire, RequestKind};

use super::{
    led_response, settled, Asker, DeviceEffect, DeviceEffects, DeviceRequests, Outcome, Readiness,
};

impl DeviceRequests {
    pub(super) fn audio(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        a: wire::AudioPlay,
    ) -> DeviceEffects {
        let package = app.package;
        let ts = crate::now_iso();
        let refusal = if !glasses.phone {
            Some((
                Outcome::NotConnected,
                "Glasses are not connected".to_string(),
            ))
        } else if a.stop_other_audio
            && self
                .pending
                .contains_key(&(RequestKind::Audio, a.request_id.clone()))
        {
            Some((
                Outcome::Invalid,
                "An audio request with this requestId is already playing".to_string(),
            ))
        } else if a.stop_other_audio && !self.has_room(package) {
            Some((
                Outcome::Busy,
                format!(
                    "This app already has {} device requests waiting",
                    self.config.max_pending_per_app
                ),
            ))
        } else {
            None
        };
        if let Some((outcome, why)) = refusal {
            let mut fx = Vec::new();
            if a.stop_other_audio {
                fx.push(DeviceEffect::ToApp {
                    package: package.into(),
                    text: wire::audio_play_response(&a.request_id, false, Some(&why), None, &ts),
                });
            }
            fx.push(settled(
                RequestKind::Audio,
                package,
                &a.request_id,
                outcome,
                Duration::ZERO,
                why,
            ));
            return fx;
        }
        let url = self.reachable(&a.audio_url);
        let mut fx = vec![DeviceEffect::ToGlasses(wire::glasses_audio_play(
            package, &a, &url, &ts,
        ))];
        if a.stop_other_audio {
            fx.push(self.wait(
                now,
                RequestKind::Audio,
                package,
                &a.request_id,
                self.config.audio_deadline,
                None,
            ));
        } else {
            fx.push(settled(
                RequestKind::Audio,
                package,
                &a.request_id,
                Outcome::Forwarded,
                Duration::ZERO,
                "played without waiting".into(),
            ));
        }
        fx
    }

    pub(super) fn led(
        &mut self,
        now: Instant,
        app: Asker,
        glasses: Readiness,
        led: wire::LedControl,
    ) -> DeviceEffects {
        let package = app.package;
        let ts = crate::now_iso();
        let refusal = if !glasses.glasses {
            Some((
                Outcome::NotConnected,
                "Glasses are not connected".to_string(),
            ))
        } else if !glasses.has("hasLight") {
            Some((
                Outcome::NoCapability,
                format!("Connected glasses ({}) have no LED", glasses.model),
            ))
        } else if self
            .pending
            .contains_key(&(RequestKind::Led, led.request_id.clone()))
            || !self.has_room(package)
        {
            Some((Outcome::Busy, "Too many LED requests waiting".to_string()))
        } else {
            None
        };
        if let Some((outcome, why)) = refusal {
            return vec![
                DeviceEffect::ToApp {
                    package: package.into(),
                    text: led_response(&led.request_id, false, Some(&why), &ts),
                },
                settled(
                    RequestKind::Led,
                    package,
                    &led.request_id,
                    outcome,
                    Duration::ZERO,
                    why,
                ),
            ];
        }
        vec![
            DeviceEffect::ToGlasses(wire::glasses_led(package, &led, &ts)),
            self.wait(
                now,
                RequestKind::Led,
                package,
                &led.request_id,
                self.config.led_deadline,
                None,
            ),
        ]
    }
}
