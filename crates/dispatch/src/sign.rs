//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
//! with the endpoint's secret `whsec_<base64 key>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Shortest key accepted, in bytes (Standard Webhooks generates 24 to 64).
pub const MIN_KEY_BYTES: usize = 16;
/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 128;

/// Bytes of a key made by [`Secret::generate`].
const GENERATED_KEY_BYTES: usize = 32;

/// A webhook endpoint's signing key. `Debug` never shows it.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Secret {
    /// Read `whsec_<base64>` (surrounding blanks ignored). The error never repeats the
    /// text.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let Some(b64) = text.trim().strip_prefix(SECRET_PREFIX) else {
            return Err(format!(
                "a webhook secret starts with {SECRET_PREFIX} followed by base64 \
                 (`pftrack events secret` makes one)"
            ));
        };
        let key = STANDARD
            .decode(b64)
            .map_err(|_| format!("the part after {SECRET_PREFIX} is not valid base64"))?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(format!(
                "the key is {} bytes; between {MIN_KEY_BYTES} and {MAX_KEY_BYTES} are accepted",
                key.len()
            ));
        }
        Ok(Secret { key })
    }

    /// A new random secret, as `whsec_<base64>`.
    pub fn generate() -> String {
        let key: [u8; GENERATED_KEY_BYTES] = rand::random();
        format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
    }

    /// The `webhook-signature` value of `body` sent with `id` at `timestamp` (Unix
    /// seconds): `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // Any key length is valid for HMAC: this cannot fail.
        let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn known_answer_of_the_standard_webhooks_reference() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn bad_secrets_are_refused_without_being_repeated() {
        for bad in [
            "",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!",
            "whsec_c2hvcnQ=",
        ] {
            let err = Secret::parse(bad).unwrap_err();
            assert!(bad.len() < 8 || !err.contains(bad), "{err}");
        }
        let made = Secret::generate();
        assert!(Secret::parse(&made).is_ok());
        assert_ne!(made, Secret::generate());
        assert_eq!(
            format!("{:?}", Secret::parse(&made).unwrap()),
            "Secret(redacted)"
        );
    }
}
