//! Property tests (issue 6, point 3), on a MemoryStore through `App::handle_bytes`, the
//! path `triage invoke` and the Lambda share. Case counts are fixed so CI stays quick.

use crate::events::contact_event;
use connect_triage::app::{App, Response};
use connect_triage::domain::CallState;
use connect_triage::domain::ContactId;
use connect_triage::store::memory::MemoryStore;
use connect_triage::store::EventStore;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn check_response(r: &Result<Response, connect_triage::connect::InputError>) {
    match r {
        Ok(map) => {
            let cont = map.get("continue");
            assert!(matches!(cont, Some("0" | "1")), "continue: {map:?}");
            assert!(
                map.get("text").is_some() && map.get("score").is_some(),
                "{map:?}"
            );
            // Flat map of strings, as Connect validates it.
            let v = serde_json::to_value(map).expect("json");
            assert!(v
                .as_object()
                .expect("object")
                .values()
                .all(Value::is_string));
        }
        Err(e) => assert!(!e.to_string().trim().is_empty(), "an error says why"),
    }
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Events shaped like Connect's, with anything in the places that vary.
fn event_like() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just(json!("c-1")),
            ".{0,300}".prop_map(Value::from),
            any_json()
        ],
        prop::collection::btree_map(key(), any_json(), 0..5),
        any_json(),
        any_json(),
    )
        .prop_map(|(cid, params, attrs, endpoint)| {
            json!({
                "Name": "ContactFlowEvent",
                "Details": {
                    "ContactData": {
                        "ContactId": cid,
                        "Attributes": attrs,
                        "CustomerEndpoint": endpoint,
                        "Channel": "VOICE"
                    },
                    "Parameters": Value::Object(params.into_iter().collect())
                }
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn raw_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let app = App::new(Arc::new(MemoryStore::new()));
        let r = runtime().block_on(app.handle_bytes(&bytes));
        check_response(&r);
    }

    #[test]
    fn event_shaped_inputs_never_panic(event in event_like(), cut in any::<prop::sample::Index>()) {
        let app = App::new(Arc::new(MemoryStore::new()));
        let bytes = serde_json::to_vec(&event).expect("json");
        let rt = runtime();
        check_response(&rt.block_on(app.handle_bytes(&bytes)));
        // And the same event cut short anywhere.
        let n = cut.index(bytes.len() + 1);
        check_response(&rt.block_on(app.handle_bytes(&bytes[..n])));
    }

    /// On every well-formed event (what `aws_lambda_events`' reference type accepts), the
    /// lean reader takes the same values from the same places.
    #[test]
    fn well_formed_events_read_as_the_reference_type_reads_them(
        params in prop::collection::btree_map(key(), "[ -~]{0,12}", 0..5),
        attrs in prop::collection::btree_map(key(), "[ -~]{0,12}", 0..5),
        channel in prop::option::of("[A-Z]{0,8}"),
        address in prop::option::of("[+0-9 ]{0,14}"),
        cid in "[!-~]{1,64}",
    ) {
        use aws_lambda_events::event::connect::ConnectEvent;
        let mut event = connect_triage::flow::voice_event(&cid, "", &[]);
        event["Details"]["Parameters"] = json!(params);
        let data = &mut event["Details"]["ContactData"];
        data["Attributes"] = json!(attrs);
        data["Channel"] = json!(channel);
        data["CustomerEndpoint"]["Address"] = json!(address);
        let bytes = serde_json::to_vec(&event).expect("json");
        let reference: ConnectEvent = serde_json::from_slice(&bytes).expect("a well-formed event");
        let hasher = connect_triage::connect::CallerHasher::new(b"0123456789abcdef-props").expect("key");
        let ours = connect_triage::connect::parse_bytes(&bytes, Some(&hasher)).expect("accepted");
        let d = &reference.details;
        let c = &d.contact_data;
        let pick = |k: &str| d.parameters.get(k).or_else(|| c.attributes.get(k)).cloned();
        prop_assert_eq!(Some(ours.contact_id.as_str()), c.contact_id.as_deref());
        prop_assert_eq!(ours.invocation.turn.clone(), pick("turn"));
        prop_assert_eq!(ours.invocation.answer.clone(), pick("answer"));
        let lang = pick("lang").filter(|l| !l.trim().is_empty());
        prop_assert_eq!(ours.invocation.lang, lang.as_deref().and_then(connect_triage::domain::Lang::parse));
        prop_assert_eq!(ours.unknown_lang, lang.is_some() && ours.invocation.lang.is_none());
        let facts = &ours.invocation.facts;
        prop_assert_eq!(facts.channel.clone(), c.channel.clone().filter(|s| !s.is_empty()));
        prop_assert_eq!(facts.initial_contact_id.clone(), c.initial_contact_id.clone());
        prop_assert_eq!(facts.previous_contact_id.clone(), c.previous_contact_id.clone());
        let number = c.customer_endpoint.address.clone().filter(|a| !a.trim().is_empty());
        prop_assert_eq!(
            ours.starting_invocation().facts.caller_hash,
            number.map(|n| hasher.hash(&n))
        );
    }

    /// The Lambda reads bytes, the in-process callers JSON values: both read any event
    /// alike, to the same request or the same kind of refusal.
    #[test]
    fn bytes_and_json_values_read_alike(event in event_like()) {
        use connect_triage::connect::{parse_bytes, parse_event};
        let bytes = serde_json::to_vec(&event).expect("json");
        match (parse_bytes(&bytes, None), parse_event(event.clone(), None)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => prop_assert_eq!(
                std::mem::discriminant(&a),
                std::mem::discriminant(&b),
                "{} / {}", a, b
            ),
            (a, b) => prop_assert!(false, "bytes: {:?}, value: {:?}", a, b),
        }
    }
}

/// Keys of a flat map: the three a turn reads, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("answer".to_string()),
        Just("turn".to_string()),
        Just("lang".to_string()),
        "[a-zA-Z]{1,8}"
    ]
}

#[derive(Debug, Clone)]
enum Tok {
    Right,
    Old(prop::sample::Index),
    Garbage(&'static str),
    Absent,
}

fn tok() -> impl Strategy<Value = Tok> {
    prop_oneof![
        4 => Just(Tok::Right),
        2 => any::<prop::sample::Index>().prop_map(Tok::Old),
        1 => prop::sample::select(vec!["abc", "-1", "1.5", "999999", "x9", "99999999999999999999999"]).prop_map(Tok::Garbage),
        1 => Just(Tok::Absent),
    ]
}

fn answer() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec!["1", "0", "*", "7", "#", "", "Timeout"])
            .prop_map(|s| Some(s.to_string())),
        "[0-9*#a-z]{17,300}".prop_map(Some),
    ]
}

fn as_map(r: &Response) -> BTreeMap<String, String> {
    r.to_map()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// For any sequence of invocations, each response either replays the first response of
    /// an answered turn, or announces exactly the state the stored trail folds to; every
    /// answered turn still replays its first response at the end.
    #[test]
    fn responses_agree_with_the_trail(steps in prop::collection::vec((tok(), answer()), 0..40)) {
        let store = Arc::new(MemoryStore::new());
        let app = App::new(store.clone());
        let cid = "4a573372-1f28-4e26-b97b-00000000abcd";
        let id = ContactId::parse(cid).expect("cid");
        let rt = runtime();
        let call = |params: Vec<(&str, String)>| {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = rt.block_on(app.handle_value(contact_event(cid, &p))).expect("well formed");
            let events = rt.block_on(store.load(&id)).expect("load");
            (as_map(&r), events)
        };
        // Turn (stream version before the recording invocation) -> its first response.
        let mut first: BTreeMap<u64, BTreeMap<String, String>> = BTreeMap::new();
        let (r, events) = call(vec![]);
        prop_assert_eq!(events.len(), 1);
        first.insert(0, r);

        for (t, a) in steps {
            let before = rt.block_on(store.load(&id)).expect("load");
            let state = CallState::fold(&before).expect("fold");
            let token = match &t {
                Tok::Right => Some(state.version.to_string()),
                Tok::Old(i) => {
                    let keys: Vec<u64> = first.keys().copied().collect();
                    Some(keys[i.index(keys.len())].to_string())
                }
                Tok::Garbage(g) => Some(g.to_string()),
                Tok::Absent => None,
            };
            let mut params = Vec::new();
            if let Some(tk) = &token { params.push(("turn", tk.clone())); }
            if let Some(ans) = &a { params.push(("answer", ans.clone())); }
            let (r, after) = call(params);
            let has_answer = a.as_deref().is_some_and(|s| !s.trim().is_empty());
            let replay_of = match (&token, has_answer) {
                (None, false) => Some(0),
                (Some(tk), _) => tk.parse::<u64>().ok().filter(|n| first.contains_key(n)),
                (None, true) => None,
            };
            if let Some(n) = replay_of {
                prop_assert_eq!(&r, &first[&n], "turn {} replays its first response", n);
                prop_assert_eq!(after.len(), before.len(), "a retry records nothing");
                continue;
            }
            // Otherwise the response announces the stored state.
            let now = CallState::fold(&after).expect("fold");
            prop_assert_eq!(&r["score"], &now.score.to_string());
            prop_assert_eq!(&r["continue"], if now.is_concluded() { "0" } else { "1" });
            prop_assert_eq!(r.get("outcome").cloned(), now.outcome.map(|o| o.as_str().to_string()));
            if !now.is_concluded() {
                prop_assert_eq!(&r["turn"], &now.version.to_string());
            }
            let expect_record = !state.is_concluded()
                && (token.as_deref() == Some(state.version.to_string().as_str())
                    || (token.is_none() && has_answer));
            prop_assert_eq!(after.len() > before.len(), expect_record, "{:?} {:?} -> {:?}", token, a, r);
            if expect_record {
                first.insert(state.version, r);
            }
        }
        // At the end every answered turn still replays its first response.
        for (turn, resp) in &first {
            let params = if *turn == 0 { vec![] } else { vec![("turn", turn.to_string())] };
            let (r, _) = call(params);
            prop_assert_eq!(&r, resp, "turn {}", turn);
        }
    }
}
