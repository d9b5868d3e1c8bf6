//! Callers' numbers: hashed with a key (HMAC-SHA256) when a call starts, never kept or logged.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a caller-hash key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallerKeyError {
    #[error("the caller hash key must be at least 16 bytes")]
    TooShort,
}

/// Keyed hash of callers' numbers (HMAC-SHA256, hex): stable, so repeat callers can be
/// found, and useless without the key.
#[derive(Clone)]
pub struct CallerHasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for CallerHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerHasher(..)")
    }
}

impl CallerHasher {
    /// A hasher with `key`; keys shorter than 16 bytes are refused.
    pub fn new(key: &[u8]) -> Result<CallerHasher, CallerKeyError> {
        if key.len() < 16 {
            return Err(CallerKeyError::TooShort);
        }
        // HMAC takes keys of any length; the check above is ours.
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| CallerKeyError::TooShort)?;
        Ok(CallerHasher { mac })
    }

    pub fn hash(&self, number: &str) -> String {
        let normalised: String = number
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        let mut mac = self.mac.clone();
        mac.update(normalised.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The caller's number, kept only until it is hashed (on a call's first invocation), with
/// the key to hash it. Its `Debug` never shows the number.
#[derive(Clone)]
pub struct CallerNumber {
    pub(crate) number: String,
    pub(crate) hasher: CallerHasher,
}

impl CallerNumber {
    /// The keyed hash that is stored (HMAC-SHA256, hex).
    pub fn hash(&self) -> String {
        self.hasher.hash(&self.number)
    }
}

impl std::fmt::Debug for CallerNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallerNumber(<redacted>)")
    }
}

impl PartialEq for CallerNumber {
    fn eq(&self, other: &Self) -> bool {
        self.hash() == other.hash()
    }
}

impl Eq for CallerNumber {}
