//! Identifiers the domain speaks of, checked once at the edge.

use std::fmt;

/// The id of one contact (one call): Connect's ContactId. Checked once at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(String);

impl ContactId {
    pub const MAX_LEN: usize = 256;

    /// A ContactId is 1..=256 printable ASCII characters (Connect's are UUIDs).
    pub fn parse(raw: &str) -> Result<ContactId, ContactIdError> {
        Self::check(raw)?;
        Ok(ContactId(raw.to_string()))
    }

    /// As [`ContactId::parse`], keeping the given string (no copy).
    pub fn from_string(raw: String) -> Result<ContactId, ContactIdError> {
        Self::check(&raw)?;
        Ok(ContactId(raw))
    }

    fn check(raw: &str) -> Result<(), ContactIdError> {
        if raw.is_empty() {
            return Err(ContactIdError::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(ContactIdError::TooLong { len: raw.len() });
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ContactIdError::NotPrintable);
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not a ContactId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactIdError {
    #[error("ContactId is empty")]
    Empty,
    #[error(
        "ContactId is {len} bytes long; at most {} are allowed",
        ContactId::MAX_LEN
    )]
    TooLong { len: usize },
    #[error("ContactId must be printable ASCII without spaces")]
    NotPrintable,
}

impl std::str::FromStr for ContactId {
    type Err = ContactIdError;
    fn from_str(s: &str) -> Result<ContactId, ContactIdError> {
        ContactId::parse(s)
    }
}

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_ids_are_checked() {
        assert!(ContactId::parse("4a573372-1f28-4e26-b97b-000000000000").is_ok());
        assert!(ContactId::parse("").is_err());
        assert!(ContactId::parse("a b").is_err());
        assert!(ContactId::parse(&"x".repeat(257)).is_err());
    }
}
