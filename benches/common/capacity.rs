//! A DynamoDB meter: an HTTP proxy on loopback in front of DynamoDB (Local) that forwards
//! every request unchanged and counts what it would be billed on an on-demand table: the
//! requests by operation, and the write and read request units worked out from the items
//! themselves by AWS's rules (issue 14, point 5). DynamoDB Local's own
//! `ReturnConsumedCapacity` is not used: it does not double transactions (two 100-byte
//! `Put`s in one `TransactWriteItems` report 2.0 units there, 4 on AWS).
//!
//! The rules:
//! - an item's size: the UTF-8 length of each attribute name plus its value's size: a
//!   string's UTF-8 bytes, a number's 1 byte per two significant digits plus 1, a binary's
//!   raw bytes, 1 for a Boolean or null, 3 plus 1 per element plus the elements for a list or
//!   map, a set's elements
//!   (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html>);
//! - a standard write: one write request unit per 1 KB of the item (rounded up), and a
//!   `PutItem`, `UpdateItem` or `DeleteItem` over an existing item is sized by the larger of
//!   the old and new item; a transactional write, two per 1 KB of each item in the
//!   transaction (its `ConditionCheck`s included, sized by the item checked); a strongly
//!   consistent read, one read request unit per 4 KB (a `Query`: of all the items it
//!   returns, summed, then rounded), an eventually consistent one half that
//!   (<https://aws.amazon.com/dynamodb/pricing/on-demand/>).
//!
//! Writes to a table's global secondary indexes are counted as AWS bills them (standard
//! writes of the projected item: a new entry, a removed one, or both when its index key
//! changes; nothing when the projection is unchanged). To size the item an update, delete
//! or condition check touches, and to see index entries come and go, the meter keeps every
//! item it has seen and, after each successful write, reads the items the request named
//! back with a consistent `GetItem` of its own (not counted), signed with the
//! caller's `Authorization` header as is: an emulator does not check signatures, so the
//! meter needs DynamoDB Local or LocalStack, not AWS. Only successful requests are counted
//! in units (a failed conditional write is billed too, and a run that sees one says so in
//! its request counts).

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What went through the meter.
#[derive(Default, Debug, Clone)]
pub struct Tally {
    /// Requests by operation, and by operation + `!status` for the ones that failed.
    pub requests: BTreeMap<String, u64>,
    pub write_units: f64,
    pub read_units: f64,
    /// Every item written by a `PutItem` or a transaction's `Put`, with its table, in order.
    pub written: Vec<(String, Value)>,
}

#[derive(Default)]
struct State {
    tally: Tally,
    tables: HashMap<String, TableInfo>,
    /// (table, key JSON) -> the item as last seen (`None`: none there).
    items: HashMap<(String, String), Option<Value>>,
}

/// A table's key attributes and its global secondary indexes'.
#[derive(Clone, Default)]
struct TableInfo {
    keys: Vec<String>,
    indexes: Vec<Index>,
}

#[derive(Clone)]
struct Index {
    keys: Vec<String>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE` with these attributes.
    projection: String,
    include: Vec<String>,
}

impl Index {
    /// The item as the index holds it, if the item has the index's keys (a sparse index
    /// holds only those).
    fn projected(&self, table_keys: &[String], item: Option<&Value>) -> Option<Value> {
        let item = item?.as_object()?;
        if !self.keys.iter().all(|k| item.contains_key(k)) {
            return None;
        }
        if self.projection == "ALL" {
            return Some(Value::Object(item.clone()));
        }
        let keep = |k: &String| {
            table_keys.contains(k) || self.keys.contains(k) || self.include.contains(k)
        };
        Some(Value::Object(
            item.iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))
    }

    /// The index's write units for an item going from `before` to `after`: a new entry or
    /// a removed one, 1 KB units of it; a changed entry with the same index key, the larger;
    /// a changed index key, both (a delete and a put); an unchanged entry, nothing
    /// (<https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations>).
    fn units(&self, table_keys: &[String], before: Option<&Value>, after: Option<&Value>) -> u64 {
        let kb = |v: &Value| item_size(v).div_ceil(1024).max(1);
        match (
            self.projected(table_keys, before),
            self.projected(table_keys, after),
        ) {
            (None, None) => 0,
            (Some(b), None) => kb(&b),
            (None, Some(a)) => kb(&a),
            (Some(b), Some(a)) if a == b => 0,
            (Some(b), Some(a)) => {
                if self.keys.iter().all(|k| a.get(k) == b.get(k)) {
                    kb(&a).max(kb(&b))
                } else {
                    kb(&a) + kb(&b)
                }
            }
        }
    }
}

/// A meter in front of `upstream` (`http://host:port`).
#[derive(Clone)]
pub struct Meter {
    pub url: String,
    upstream: String,
    state: Arc<Mutex<State>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Meter {
    pub async fn start(upstream: &str) -> Result<Meter, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("meter: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("meter: {e}"))?;
        let meter = Meter {
            url: format!("http://{addr}"),
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            state: Arc::default(),
        };
        let m = meter.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                let m = m.clone();
                tokio::spawn(async move { m.serve(client).await });
            }
        });
        Ok(meter)
    }

    /// What has been counted so far, and a fresh start.
    pub fn take(&self) -> Tally {
        std::mem::take(&mut lock(&self.state).tally)
    }

    /// The items written since the last call (the counts stay).
    pub fn drain_written(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut lock(&self.state).tally.written)
    }

    async fn serve(&self, client: TcpStream) {
        let mut client = BufReader::new(client);
        while let Some(req) = read_message(&mut client, true).await {
            let Some(resp) = self.forward(&req).await else {
                return;
            };
            self.count(&req, &resp).await;
            let mut out = format!("{}\r\n", resp.start).into_bytes();
            for (k, v) in &resp.headers {
                if !hop_by_hop(k) {
                    out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
                }
            }
            out.extend_from_slice(
                format!("content-length: {}\r\n\r\n", resp.body.len()).as_bytes(),
            );
            out.extend_from_slice(&resp.body);
            if client.get_mut().write_all(&out).await.is_err() {
                return;
            }
        }
    }

    /// The request sent upstream on a connection of its own; the whole answer.
    async fn forward(&self, req: &Message) -> Option<Message> {
        let mut up = TcpStream::connect(&self.upstream).await.ok()?;
        let _ = up.set_nodelay(true);
        let mut out = format!("{}\r\n", req.start).into_bytes();
        for (k, v) in &req.headers {
            if !hop_by_hop(k) {
                out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
        }
        out.extend_from_slice(
            format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                req.body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&req.body);
        up.write_all(&out).await.ok()?;
        read_message(&mut BufReader::new(up), false).await
    }

    /// A request of the meter's own to DynamoDB, with the caller's signature headers.
    async fn own(&self, like: &Message, op: &str, body: Value) -> Option<Value> {
        let headers = like
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("x-amz-target"))
            .cloned()
            .chain([("x-amz-target".into(), format!("DynamoDB_20120810.{op}"))])
            .collect();
        let req = Message {
            start: "POST / HTTP/1.1".into(),
            headers,
            body: body.to_string().into_bytes(),
        };
        let resp = self.forward(&req).await?;
        resp.status()
            .eq(&200)
            .then(|| serde_json::from_slice(&resp.body).ok())
            .flatten()
    }

    async fn table(&self, like: &Message, table: &str) -> TableInfo {
        if let Some(t) = lock(&self.state).tables.get(table) {
            return t.clone();
        }
        let Some(desc) = self
            .own(like, "DescribeTable", json!({ "TableName": table }))
            .await
        else {
            return TableInfo::default();
        };
        let names = |schema: &Value| -> Vec<String> {
            schema
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k["AttributeName"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let info = TableInfo {
            keys: names(&desc["Table"]["KeySchema"]),
            indexes: desc["Table"]["GlobalSecondaryIndexes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|g| Index {
                            keys: names(&g["KeySchema"]),
                            projection: g["Projection"]["ProjectionType"]
                                .as_str()
                                .unwrap_or("ALL")
                                .to_string(),
                            include: strings(&g["Projection"]["NonKeyAttributes"]),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        lock(&self.state).tables.insert(table.into(), info.clone());
        info
    }

    /// The item as last seen, and as it is now (read back, uncounted, and remembered).
    async fn before_after(
        &self,
        like: &Message,
        table: &str,
        key: &Value,
    ) -> (Option<Value>, Option<Value>) {
        let text = key.to_string();
        let before = lock(&self.state)
            .items
            .get(&(table.to_string(), text.clone()))
            .cloned()
            .flatten();
        let after = self
            .own(
                like,
                "GetItem",
                json!({ "TableName": table, "Key": key, "ConsistentRead": true }),
            )
            .await
            .and_then(|r| r.get("Item").cloned());
        lock(&self.state)
            .items
            .insert((table.to_string(), text), after.clone());
        (before, after)
    }

    /// The write units of one write of `table`'s item (or of the item at a key (see the module docs; a transaction doubles the table's part)): the larger
    /// of the item before and after in 1 KB units, plus its indexes' writes.
    async fn write(&self, like: &Message, table: &str, target: &Value, factor: f64) -> f64 {
        let info = self.table(like, table).await;
        // The key in the table's key order, whether from an item or a request's key.
        let key: serde_json::Map<String, Value> = info
            .keys
            .iter()
            .filter_map(|n| target.get(n).map(|v| (n.clone(), v.clone())))
            .collect();
        let (before, after) = self.before_after(like, table, &Value::Object(key)).await;
        let size = before
            .as_ref()
            .map_or(0, item_size)
            .max(after.as_ref().map_or(0, item_size));
        let own = size.div_ceil(1024).max(1) as f64 * factor;
        let indexes: u64 = info
            .indexes
            .iter()
            .map(|i| i.units(&info.keys, before.as_ref(), after.as_ref()))
            .sum();
        own + indexes as f64
    }

    async fn count(&self, req: &Message, resp: &Message) {
        let op = req
            .header("x-amz-target")
            .and_then(|t| t.split('.').nth(1))
            .unwrap_or("?")
            .to_string();
        let ok = resp.status() == 200;
        {
            let mut s = lock(&self.state);
            let name = if ok {
                op.clone()
            } else {
                format!("{op}!{}", resp.status())
            };
            *s.tally.requests.entry(name).or_insert(0) += 1;
        }
        if !ok {
            return;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return;
        };
        let answer: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        let table = body["TableName"].as_str().unwrap_or_default().to_string();
        let consistent = body["ConsistentRead"].as_bool().unwrap_or(false);
        let read = |bytes: u64| {
            let units = bytes.div_ceil(4096).max(1) as f64;
            if consistent {
                units
            } else {
                units / 2.0
            }
        };
        let (mut w, mut r) = (0.0, 0.0);
        match op.as_str() {
            "PutItem" => {
                self.record(&table, &body["Item"]);
                w += self.write(req, &table, &body["Item"], 1.0).await;
            }
            "UpdateItem" | "DeleteItem" => {
                w += self.write(req, &table, &body["Key"], 1.0).await;
            }
            "GetItem" => r += read(answer.get("Item").map_or(0, item_size)),
            "Query" | "Scan" => {
                let bytes = answer["Items"]
                    .as_array()
                    .map_or(0, |items| items.iter().map(item_size).sum());
                r += read(bytes);
            }
            "BatchWriteItem" => {
                if let Some(tables) = body["RequestItems"].as_object() {
                    for (t, reqs) in tables {
                        for q in reqs.as_array().into_iter().flatten() {
                            if let Some(item) = q.pointer("/PutRequest/Item") {
                                self.record(t, item);
                                w += self.write(req, t, item, 1.0).await;
                            } else if let Some(key) = q.pointer("/DeleteRequest/Key") {
                                w += self.write(req, t, key, 1.0).await;
                            }
                        }
                    }
                }
            }
            "TransactWriteItems" => {
                for action in body["TransactItems"].as_array().into_iter().flatten() {
                    let Some((kind, a)) = action.as_object().and_then(|o| o.iter().next()) else {
                        continue;
                    };
                    let t = a["TableName"].as_str().unwrap_or_default();
                    w += match kind.as_str() {
                        "Put" => {
                            self.record(t, &a["Item"]);
                            self.write(req, t, &a["Item"], 2.0).await
                        }
                        _ => self.write(req, t, &a["Key"], 2.0).await,
                    };
                }
            }
            _ => {}
        }
        let mut s = lock(&self.state);
        s.tally.write_units += w;
        s.tally.read_units += r;
    }

    fn record(&self, table: &str, item: &Value) {
        lock(&self.state)
            .tally
            .written
            .push((table.to_string(), item.clone()));
    }
}

/// An item's size in DynamoDB JSON (see the module docs).
pub fn item_size(item: &Value) -> u64 {
    item.as_object().map_or(0, |attrs| {
        attrs
            .iter()
            .map(|(name, v)| name.len() as u64 + value_size(v))
            .sum()
    })
}

fn value_size(v: &Value) -> u64 {
    let Some((kind, x)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => x.as_str().map_or(0, |s| s.len() as u64),
        "N" => x.as_str().map_or(0, number_size),
        "B" => x.as_str().map_or(0, base64_len),
        "BOOL" | "NULL" => 1,
        "SS" => x.as_array().map_or(0, |a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| s.len() as u64)
                .sum()
        }),
        "NS" => x.as_array().map_or(0, |a| {
            a.iter().filter_map(Value::as_str).map(number_size).sum()
        }),
        "BS" => x.as_array().map_or(0, |a| {
            a.iter().filter_map(Value::as_str).map(base64_len).sum()
        }),
        "L" => {
            3 + x
                .as_array()
                .map_or(0, |a| a.iter().map(|e| 1 + value_size(e)).sum())
        }
        "M" => {
            3 + x.as_object().map_or(0, |m| {
                m.iter()
                    .map(|(k, e)| 1 + k.len() as u64 + value_size(e))
                    .sum()
            })
        }
        _ => 0,
    }
}

/// 1 byte per two significant digits, plus 1 (leading and trailing zeros trimmed).
fn number_size(n: &str) -> u64 {
    let digits: String = n
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len() as u64;
    significant.max(1).div_ceil(2) + 1
}

fn base64_len(b: &str) -> u64 {
    let pad = b.bytes().rev().take_while(|&c| c == b'=').count() as u64;
    (b.len() as u64 * 3 / 4).saturating_sub(pad)
}

/// An HTTP/1.1 message: start line, headers, whole body.
pub struct Message {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn status(&self) -> u16 {
        self.start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

fn hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "transfer-encoding",
        "content-length",
        "keep-alive",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// One message: Content-Length, chunked, or (a response) to the end of the stream. Also
/// the reader of tests/it/nagle.rs's Runtime API.
pub async fn read_message<R: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    request: bool,
) -> Option<Message> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let start = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut msg = Message {
        start,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = msg.header("content-length").and_then(|v| v.parse().ok()) {
        msg.body.resize(len, 0);
        r.read_exact(&mut msg.body).await.ok()?;
    } else if msg
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            line.clear();
            r.read_line(&mut line).await.ok()?;
            let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).await.ok()?;
            if size == 0 {
                break;
            }
            msg.body.extend_from_slice(&chunk[..size]);
        }
    } else if !request {
        r.read_to_end(&mut msg.body).await.ok()?;
    }
    Some(msg)
}
