//! How an event is laid out as a DynamoDB item (docs/contracts.md, "The table"): the key
//! and index attributes, the by-day shard, and the size DynamoDB counts.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Partition key attribute.
pub const PK: &str = "contact_id";
/// Sort key attribute.
pub const SK: &str = "seq";
/// TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";
/// Partition key of the by-day index (CallStarted items only).
pub const DAY_SHARD: &str = "day_shard";
/// Sort key of both analyst indexes (CallStarted items only): the `at` of the call start.
pub const STARTED_AT: &str = "started_at";
/// Partition key of the by-caller index (an ordinary CallStarted field, when known).
pub const CALLER_HASH: &str = "caller_hash";
/// Index of calls by UTC day: `day_shard` + `started_at`.
pub const BY_DAY_INDEX: &str = "calls_by_day";
/// Index of calls by caller: `caller_hash` + `started_at`.
pub const BY_CALLER_INDEX: &str = "calls_by_caller";
/// Partition key where `triage migrate` records the migrations it applied. Not a call.
pub const MIGRATIONS_KEY: &str = "#migrations";
/// Partition keys starting with this are table metadata, never calls.
pub const RESERVED_PREFIX: char = '#';

/// Attributes the store adds to an event's item; stripped again on read.
pub const ADDED_ATTRIBUTES: [&str; 4] = [PK, EXPIRES_AT, DAY_SHARD, STARTED_AT];

/// 64-bit FNV-1a: a fixed hash, the same in every process and build (unlike std's).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The by-day index key of a call: `YYYY-MM-DD#k`, `k` = FNV-1a(contact id) mod `shards`.
pub fn day_shard(contact_id: &str, at: DateTime<Utc>, shards: u32) -> String {
    let k = fnv1a64(contact_id.as_bytes()) % u64::from(shards.max(1));
    format!("{}#{k}", at.format("%Y-%m-%d"))
}

/// The size DynamoDB bills and limits an item by: attribute names plus values (strings and
/// binaries by length; numbers by an upper bound of their digit count; 3 bytes of overhead per
/// list or map, 1 per element).
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len() + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len() + 1).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, x)| 1 + k.len() + value_size(x))
                .sum::<usize>()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn fnv1a_is_the_published_function() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn day_shards_are_stable_and_bounded() {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 1, 23, 59, 59)
            .single()
            .unwrap_or_default();
        let id = "4a573372-1f28-4e26-b97b-000000000000";
        let s = day_shard(id, at, 8);
        assert!(s.starts_with("2026-03-01#"), "{s}");
        assert_eq!(s, day_shard(id, at, 8));
        assert_eq!(day_shard(id, at, 1), "2026-03-01#0");
        let k: u64 = s.rsplit('#').next().unwrap_or("").parse().unwrap_or(99);
        assert!(k < 8);
    }

    #[test]
    fn item_sizes_count_names_and_values() {
        let item: Item = HashMap::from([
            ("ab".to_string(), AttributeValue::S("xyz".into())),
            ("n".to_string(), AttributeValue::N("12".into())),
            ("b".to_string(), AttributeValue::Bool(true)),
        ]);
        assert_eq!(item_size(&item), 2 + 3 + 1 + 3 + 1 + 1);
    }
}
