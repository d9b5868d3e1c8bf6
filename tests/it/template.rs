//! `template.yaml` against its sources of truth: the table against `migrations/` (what
//! `triage migrate` builds), the contact flow against `connect/triage-flow.json` (what
//! `triage call` runs), and the IAM statements against the least privilege we promise.
//!
//! The template uses long-form intrinsics only (`Fn::Sub:`, `Ref:`), so it is plain YAML.

use connect_triage::app::App;
use connect_triage::flow::{self, CallEnd, Contact, Flow};
use connect_triage::sim::call::{parse_answers, AppLambda, TerminalCaller, LOCAL_QUEUE_ARN};
use connect_triage::store::memory::MemoryStore;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-2:000000000000:function:stack-triage";
const INSTANCE_ARN: &str =
    "arn:aws:connect:eu-west-2:000000000000:instance/00000000-0000-4000-8000-000000000000";
/// The actions `scripts/gen-template.py` removes for a stack without a hospital queue.
/// The flow a test stack routes nurse tasks to.
const NURSE_FLOW: &str = "arn:aws:connect:eu-west-2:000000000000:instance/i/contact-flow/nurses";

const HOSPITAL_BRANCH: [&str; 9] = [
    "check-outcome",
    "set-hospital-queue",
    "mark-recording",
    "check-recording",
    "record-agent-leg",
    "check-hospital-hours",
    "transfer-to-hospital",
    "say-no-agent",
    "create-nurse-task",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// template.yaml as JSON values (YAML parsed, then converted, so comparisons are plain JSON).
fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("read template.yaml");
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("template.yaml is YAML");
    serde_json::to_value(yaml).expect("template.yaml converts to JSON")
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    let r = &t["Resources"][name];
    assert!(r.is_object(), "template.yaml has no resource {name}");
    r
}

fn flow_file() -> String {
    std::fs::read_to_string(root().join("connect/triage-flow.json")).expect("read the flow")
}

// ---------------------------------------------------------------------------------------
// The table == migrations/

#[derive(Debug, PartialEq, Default)]
struct TableShape {
    name: String,
    billing: String,
    attributes: BTreeMap<String, String>,
    key_schema: Vec<(String, String)>,
    /// index name -> (key schema, projection)
    indexes: BTreeMap<String, (Vec<(String, String)>, Value)>,
    ttl: Option<(String, bool)>,
    /// The stream's view type, when it is on.
    stream: Option<String>,
}

fn keys(schema: &Value) -> Vec<(String, String)> {
    schema
        .as_array()
        .expect("a KeySchema list")
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap().to_string(),
                k["KeyType"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn add_attributes(into: &mut BTreeMap<String, String>, defs: &Value) {
    for d in defs.as_array().into_iter().flatten() {
        let name = d["AttributeName"].as_str().unwrap().to_string();
        let kind = d["AttributeType"].as_str().unwrap().to_string();
        if let Some(old) = into.insert(name.clone(), kind.clone()) {
            assert_eq!(old, kind, "attribute {name} defined with two types");
        }
    }
}

fn add_index(into: &mut TableShape, gsi: &Value) {
    let name = gsi["IndexName"].as_str().unwrap().to_string();
    let shape = (keys(&gsi["KeySchema"]), gsi["Projection"].clone());
    assert!(
        into.indexes.insert(name.clone(), shape).is_none(),
        "index {name} twice"
    );
}

fn migrations_dir() -> PathBuf {
    root().join("migrations")
}

/// The tables `triage migrate` ends with (every migration applied in order), by their
/// placeholder names: the events table and its read model.
fn tables_from_migrations() -> BTreeMap<String, TableShape> {
    let dir = migrations_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the migrations (from the dynamo branch) must be in the repository",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migrations in {}", dir.display());
    let mut tables: BTreeMap<String, TableShape> = BTreeMap::new();
    for file in files {
        let m: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let input = &m["input"];
        let t = tables
            .entry(input["TableName"].as_str().unwrap().to_string())
            .or_default();
        match m["operation"].as_str().unwrap() {
            "CreateTable" => {
                t.name = input["TableName"].as_str().unwrap().to_string();
                t.billing = input["BillingMode"]
                    .as_str()
                    .unwrap_or("PROVISIONED")
                    .into();
                add_attributes(&mut t.attributes, &input["AttributeDefinitions"]);
                t.key_schema = keys(&input["KeySchema"]);
                for gsi in input["GlobalSecondaryIndexes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    add_index(t, gsi);
                }
            }
            "UpdateTable" => {
                let stream = &input["StreamSpecification"];
                if stream["StreamEnabled"] == true {
                    t.stream = stream["StreamViewType"].as_str().map(str::to_string);
                }
                add_attributes(&mut t.attributes, &input["AttributeDefinitions"]);
                for update in input["GlobalSecondaryIndexUpdates"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if update["Create"].is_object() {
                        add_index(t, &update["Create"]);
                    } else if let Some(name) = update["Delete"]["IndexName"].as_str() {
                        t.indexes.remove(name);
                    } else {
                        panic!("{}: unhandled index update {update}", file.display());
                    }
                }
            }
            "UpdateTimeToLive" => {
                let spec = &input["TimeToLiveSpecification"];
                t.ttl = Some((
                    spec["AttributeName"].as_str().unwrap().to_string(),
                    spec["Enabled"].as_bool().unwrap(),
                ));
            }
            other => panic!("{}: unknown operation {other}", file.display()),
        }
    }
    tables
}

fn table_from_template(t: &Value, resource_name: &str) -> TableShape {
    let p = &resource(t, resource_name)["Properties"];
    let default_name = t["Parameters"]["TableName"]["Default"]
        .as_str()
        .unwrap()
        .to_string();
    let mut shape = TableShape {
        // The name is the TableName parameter (the model's: it + "-model"); its default is
        // what the CLI and migrations use.
        name: if p["TableName"] == json!({"Ref": "TableName"}) {
            default_name
        } else {
            assert_eq!(p["TableName"], json!({"Fn::Sub": "${TableName}-model"}));
            format!("{default_name}-model")
        },
        billing: p["BillingMode"].as_str().unwrap().to_string(),
        key_schema: keys(&p["KeySchema"]),
        ttl: p["TimeToLiveSpecification"]["AttributeName"]
            .as_str()
            .map(|a| {
                (
                    a.to_string(),
                    p["TimeToLiveSpecification"]["Enabled"].as_bool().unwrap(),
                )
            }),
        stream: p["StreamSpecification"]["StreamViewType"]
            .as_str()
            .map(str::to_string),
        ..TableShape::default()
    };
    add_attributes(&mut shape.attributes, &p["AttributeDefinitions"]);
    for gsi in p["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        add_index(&mut shape, gsi);
    }
    shape
}

#[test]
fn the_table_is_the_one_the_migrations_build() {
    let t = template();
    let tables = tables_from_migrations();
    assert_eq!(
        tables.keys().collect::<Vec<_>>(),
        ["triage-events", "triage-events-model"]
    );
    let expected = &tables["triage-events"];
    assert_eq!(&table_from_template(&t, "EventsTable"), expected);
    assert_eq!(
        &table_from_template(&t, "ModelTable"),
        &tables["triage-events-model"]
    );
    assert_eq!(expected.stream.as_deref(), Some("NEW_IMAGE"));
    // What the adapter relies on, spelled out (so a change to both sides is still seen).
    assert_eq!(
        expected.key_schema,
        [
            ("contact_id".into(), "HASH".into()),
            ("seq".into(), "RANGE".into())
        ]
    );
    assert_eq!(expected.ttl, Some(("expires_at".to_string(), true)));
    assert_eq!(
        expected.indexes.keys().collect::<Vec<_>>(),
        ["calls_by_caller", "calls_by_day"]
    );
}

#[test]
fn the_table_and_its_key_are_kept_encrypted_and_recoverable() {
    let t = template();
    for name in ["EventsTable", "EventsKey", "ModelTable"] {
        let r = resource(&t, name);
        assert_eq!(r["DeletionPolicy"], "Retain", "{name}");
        assert_eq!(r["UpdateReplacePolicy"], "Retain", "{name}");
    }
    for table in ["EventsTable", "ModelTable"] {
        let p = &resource(&t, table)["Properties"];
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{table}"
        );
        assert_eq!(
            p["SSESpecification"],
            json!({"SSEEnabled": true, "SSEType": "KMS", "KMSMasterKeyId": {"Fn::GetAtt": ["EventsKey", "Arn"]}}),
            "{table}"
        );
    }
    assert_eq!(
        resource(&t, "EventsKey")["Properties"]["EnableKeyRotation"],
        true
    );
}

// ---------------------------------------------------------------------------------------
// The contact flow == connect/triage-flow.json

/// The `Fn::Sub` branches of the ContactFlow's Content: (with queue, without queue). The
/// with-queue one is the full flow, with the nurse team's task (see [`flow_without_task`]).
fn flow_variants(t: &Value) -> (&Value, &Value) {
    let (full, _, no_queue) = flow_variants3(t);
    (full, no_queue)
}

/// The with-queue variant of a stack without a NurseTaskFlowId.
fn flow_without_task(t: &Value) -> &Value {
    flow_variants3(t).1
}

/// All three: (queue and nurse task flow, queue only, no queue).
fn flow_variants3(t: &Value) -> (&Value, &Value, &Value) {
    let content = &resource(t, "TriageFlow")["Properties"]["Content"]["Fn::If"];
    assert_eq!(
        content[0], "HasHospitalQueue",
        "Content is Fn::If on HasHospitalQueue"
    );
    assert_eq!(
        t["Conditions"]["HasHospitalQueue"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "HospitalQueueArn"}, ""]}]})
    );
    assert_eq!(
        t["Conditions"]["HasNurseTaskFlow"],
        json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "NurseTaskFlowId"}, ""]}]})
    );
    let with_queue = &content[1]["Fn::If"];
    assert_eq!(with_queue[0], "HasNurseTaskFlow", "{with_queue}");
    let branches = [&with_queue[1], &with_queue[2], &content[2]];
    for branch in branches {
        let sub = &branch["Fn::Sub"];
        assert_eq!(
            sub.as_array().map(Vec::len),
            Some(2),
            "Fn::Sub [text, vars]: {branch}"
        );
        let mut vars = json!({
            "TriageFunctionArn": {"Fn::GetAtt": ["TriageFunction", "Arn"]},
            // The answers bot when SpeechInput is Enabled; else empty, and the flow asks by
            // keypad (check-speech).
            "AnswersBotAliasArn": {"Fn::If": ["SpeechInputEnabled", {"Fn::GetAtt": ["AnswersBotAlias", "Arn"]}, ""]},
        });
        for (k, v) in voices() {
            vars[k] = json!(v);
        }
        assert_eq!(
            sub[1], vars,
            "Fn::Sub's variables: the function, the answers bot and the voices"
        );
    }
    (
        &branches[0]["Fn::Sub"][0],
        &branches[1]["Fn::Sub"][0],
        &branches[2]["Fn::Sub"][0],
    )
}

/// The voices of connect/voices.json as the template's Fn::Sub variables: `VoiceEs` ->
/// `Lucia`, `EngineEs`, `StyleEs`, `VoiceEn`, ... (read here independently of the generator).
fn voices() -> Vec<(String, String)> {
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/connect/voices.json"))
            .unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    for (lang, suffix) in [("es", "Es"), ("en", "En")] {
        for (field, prefix) in [("voice", "Voice"), ("engine", "Engine"), ("style", "Style")] {
            let v = file[lang][field].as_str().expect("voices.json: a string");
            out.push((format!("{prefix}{suffix}"), v.to_string()));
        }
    }
    out
}

/// What CloudFormation's Fn::Sub makes of the text (the function, the queue, the voices).
fn substitute(text: &str, queue: &str) -> String {
    substitute_with(text, queue, "Disabled", "Disabled")
}

/// [`substitute`] with the two switches (the template parameters FlowLogging, RecordAgentLeg).
fn substitute_with(text: &str, queue: &str, logging: &str, record_agent: &str) -> String {
    let mut text = text
        .replace("${TriageFunctionArn}", FUNCTION_ARN)
        .replace("${HospitalQueueArn}", queue)
        .replace("${FlowLogging}", logging)
        .replace("${RecordAgentLeg}", record_agent)
        .replace("${NurseTaskFlowId}", NURSE_FLOW)
        // SpeechInput and AudioStreaming at their defaults (off).
        .replace("${AnswersBotAliasArn}", "")
        .replace("${AudioStreaming}", "Disabled");
    for (name, value) in voices() {
        text = text.replace(&format!("${{{name}}}"), &value);
    }
    text
}

#[test]
fn the_deployed_flow_is_connect_triage_flow_json() {
    let t = template();
    let (with_queue, _) = flow_variants(&t);
    let file = flow_file();
    // Byte for byte: the template embeds the file itself, placeholders and all, and Fn::Sub
    // fills them in. (scripts/gen-template.py writes it; this fails when it was not re-run.)
    assert!(
        with_queue.as_str() == Some(file.as_str()),
        "template.yaml's flow differs from connect/triage-flow.json: run scripts/gen-template.py"
    );
    let placeholders: BTreeSet<String> = Flow::from_json(&file).unwrap().placeholders().clone();
    assert_eq!(
        placeholders,
        [
            "AnswersBotAliasArn",
            "AudioStreaming",
            "FlowLogging",
            "HospitalQueueArn",
            "NurseTaskFlowId",
            "RecordAgentLeg",
            "TriageFunctionArn"
        ]
        .into_iter()
        .map(String::from)
        .chain(voices().into_iter().map(|(k, _)| k))
        .collect::<BTreeSet<String>>()
    );
    let deployed = substitute(
        &file,
        "arn:aws:connect:eu-west-2:000000000000:instance/i/queue/q",
    );
    let parsed = Flow::from_json(&deployed).expect("the substituted flow parses");
    assert!(parsed.placeholders().is_empty());
}

#[test]
fn without_a_queue_the_flow_is_the_file_less_its_hospital_branch() {
    let t = template();
    let (_, without) = flow_variants(&t);
    let without = without.as_str().expect("a string");
    assert!(!without.contains("${HospitalQueueArn}"));
    let file: Value = serde_json::from_str(&flow_file()).unwrap();
    let variant: Value = serde_json::from_str(without).unwrap();
    assert_eq!(variant["Version"], file["Version"]);
    assert_eq!(variant["StartAction"], file["StartAction"]);
    let exit = file["Actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["Identifier"] == "check-outcome")
        .expect("the file has check-outcome")["Transitions"]["NextAction"]
        .clone();
    // Every action but the hospital branch, unchanged except that what led to check-outcome
    // now leads where check-outcome's default led.
    let expected: Vec<Value> = file["Actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !HOSPITAL_BRANCH.contains(&a["Identifier"].as_str().unwrap()))
        .map(|a| {
            let text = serde_json::to_string(a).unwrap();
            let text = text.replace(
                "\"NextAction\":\"check-outcome\"",
                &format!("\"NextAction\":{exit}"),
            );
            serde_json::from_str(&text).unwrap()
        })
        .collect();
    assert_eq!(variant["Actions"], Value::Array(expected));
    let types: Vec<&str> = variant["Actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Type"].as_str().unwrap())
        .collect();
    assert!(
        !types.contains(&"UpdateContactTargetQueue") && !types.contains(&"TransferContactToQueue")
    );
}

/// A caller who answers yes three times: 15 + 25 + 15 = 55 >= 50, `hospital`.
async fn hospital_call(flow_text: &str) -> CallEnd {
    hospital_report(flow_text).await.end
}

/// The whole report of [`hospital_call`].
async fn hospital_report(flow_text: &str) -> connect_triage::flow::CallReport {
    let flow = Flow::from_json(flow_text).expect("the deployed flow parses");
    let app = App::new(Arc::new(MemoryStore::new()));
    let contact = Contact::voice(uuid::Uuid::now_v7().to_string(), INSTANCE_ARN);
    let mut caller = TerminalCaller::scripted(parse_answers("1,1,1").unwrap(), Vec::new());
    let report = flow::run(
        &flow,
        &contact,
        &AppLambda(&app),
        &mut caller,
        &HashMap::new(),
    )
    .await
    .expect("the call runs");
    report
}

#[tokio::test]
async fn flow_logging_and_agent_recording_follow_their_switches() {
    let t = template();
    for p in ["FlowLogging", "RecordAgentLeg"] {
        assert_eq!(
            t["Parameters"][p]["Default"], "Disabled",
            "{p} is off by default"
        );
        assert_eq!(
            t["Parameters"][p]["AllowedValues"],
            json!(["Enabled", "Disabled"])
        );
    }
    let (with_queue, _) = flow_variants(&t);
    let text = with_queue.as_str().unwrap();
    let off = hospital_report(&substitute(text, LOCAL_QUEUE_ARN)).await;
    assert_eq!(
        off.flow_logging,
        Some(false),
        "logging set off before anything else"
    );
    assert!(
        off.recorded.is_empty(),
        "no recording when the switch is off"
    );
    let on = hospital_report(&substitute_with(
        text,
        LOCAL_QUEUE_ARN,
        "Enabled",
        "Enabled",
    ))
    .await;
    assert_eq!(on.flow_logging, Some(true));
    assert_eq!(
        on.recorded,
        ["Agent"],
        "the agent's leg is recorded before the transfer"
    );
    assert!(matches!(on.end, CallEnd::Transferred { .. }));
}

#[test]
fn no_prompt_of_either_deployed_flow_is_reachable_before_the_voice_is_set() {
    let t = template();
    let (with_queue, without) = flow_variants(&t);
    for (name, text) in [("with a queue", with_queue), ("without a queue", without)] {
        let flow = Flow::from_json(&substitute(text.as_str().unwrap(), LOCAL_QUEUE_ARN))
            .expect("the deployed flow parses");
        assert_eq!(
            flow.prompts_before_voice(),
            Vec::<(String, Vec<String>)>::new(),
            "the flow {name} speaks before it sets the caller's voice (Connect would use Joanna)"
        );
    }
}

#[tokio::test]
async fn a_hospital_outcome_transfers_only_when_a_queue_is_given() {
    let t = template();
    let (with_queue, without) = flow_variants(&t);
    let queued = substitute(with_queue.as_str().unwrap(), LOCAL_QUEUE_ARN);
    assert_eq!(
        hospital_call(&queued).await,
        CallEnd::Transferred {
            queue: LOCAL_QUEUE_ARN.to_string()
        }
    );
    let unqueued = substitute(without.as_str().unwrap(), "");
    assert_eq!(hospital_call(&unqueued).await, CallEnd::Disconnected);
}

// ---------------------------------------------------------------------------------------
// IAM

/// The statements every deployment has (those under an `Fn::If` are left out: see
/// [`conditional_statements`]).
fn statements(doc: &Value) -> Vec<&Value> {
    doc["Statement"]
        .as_array()
        .expect("Statement list")
        .iter()
        .filter(|s| s.get("Fn::If").is_none())
        .collect()
}

/// The statements deployed only when `condition` holds: `Fn::If [condition, S, NoValue]`.
fn conditional_statements<'a>(doc: &'a Value, condition: &str) -> Vec<&'a Value> {
    doc["Statement"]
        .as_array()
        .expect("Statement list")
        .iter()
        .filter_map(|s| s.get("Fn::If"))
        .filter(|f| f[0] == condition)
        .inspect(|f| assert_eq!(f[2], json!({"Ref": "AWS::NoValue"}), "nothing otherwise"))
        .map(|f| &f[1])
        .collect()
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn actions_and_resources(statements: &[&Value]) -> (BTreeSet<String>, Vec<Value>) {
    let mut actions = BTreeSet::new();
    let mut resources = vec![];
    for s in statements {
        assert_eq!(s["Effect"], "Allow");
        for a in list(&s["Action"]) {
            let a = a.as_str().unwrap().to_string();
            assert!(!a.contains('*'), "wildcard action {a}");
            actions.insert(a);
        }
        resources.extend(list(&s["Resource"]));
    }
    (actions, resources)
}

#[test]
fn the_function_may_only_load_and_append_events() {
    let t = template();
    let role = &resource(&t, "TriageFunctionRole")["Properties"];
    assert!(
        role["ManagedPolicyArns"].is_null(),
        "no managed policies on the function role"
    );
    let policies = role["Policies"].as_array().unwrap();
    let all: Vec<&Value> = policies
        .iter()
        .flat_map(|p| statements(&p["PolicyDocument"]))
        .collect();
    let (actions, resources) = actions_and_resources(&all);
    let expected: BTreeSet<String> = [
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    .map(String::from)
    .into();
    assert_eq!(actions, expected);
    for r in &resources {
        assert_ne!(r, &json!("*"), "a statement on every resource");
    }
    let dynamo = all
        .iter()
        .find(|s| s["Sid"] == "AppendAndLoadEvents")
        .unwrap();
    assert_eq!(
        list(&dynamo["Resource"]),
        [json!({"Fn::GetAtt": ["EventsTable", "Arn"]})]
    );
    let function = &resource(&t, "TriageFunction")["Properties"];
    assert_eq!(
        function["Role"],
        json!({"Fn::GetAtt": ["TriageFunctionRole", "Arn"]})
    );
    assert!(
        function["Policies"].is_null(),
        "SAM would add a second role policy"
    );
}

#[test]
fn analysts_may_read_the_table_its_indexes_the_model_and_the_exports_only() {
    let t = template();
    let policy = &resource(&t, "AnalystsReadPolicy")["Properties"]["PolicyDocument"];
    let all = statements(policy);
    let sids: Vec<&str> = all.iter().map(|s| s["Sid"].as_str().unwrap()).collect();
    let (dynamodb, athena): (Vec<&Value>, Vec<&Value>) = all.iter().partition(|s| {
        ["ReadEvents", "ReadTheModel", "DecryptEventsThroughDynamoDB"]
            .contains(&s["Sid"].as_str().unwrap())
    });
    assert_eq!(dynamodb.len(), 3, "{sids:?}");
    let (actions, resources) = actions_and_resources(&dynamodb);
    let expected: BTreeSet<String> = [
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:DescribeTable",
        "kms:Decrypt",
    ]
    .map(String::from)
    .into();
    assert_eq!(actions, expected);
    assert_eq!(
        resources,
        [
            json!({"Fn::GetAtt": ["EventsTable", "Arn"]}),
            json!({"Fn::Sub": "${EventsTable.Arn}/index/*"}),
            json!({"Fn::GetAtt": ["ModelTable", "Arn"]}),
            json!({"Fn::GetAtt": ["EventsKey", "Arn"]}),
        ]
    );
    // The Athena path: read-only on the catalog and the exports; writes only the workgroup's
    // results; nothing that changes the catalog, the table or the exports.
    let (actions, resources) = actions_and_resources(&athena);
    for a in &actions {
        let service = a.split(':').next().unwrap();
        assert!(
            ["athena", "glue", "s3", "kms"].contains(&service),
            "{a} on the Athena path"
        );
        if service == "glue" {
            assert!(
                a.starts_with("glue:Get") || a.starts_with("glue:BatchGet"),
                "{a}"
            );
        }
    }
    for a in [
        "dynamodb:ExportTableToPointInTime",
        "s3:DeleteObject",
        "glue:CreateTable",
    ] {
        assert!(!actions.contains(a), "analysts may not {a}");
    }
    let put = athena
        .iter()
        .find(|s| list(&s["Action"]).contains(&json!("s3:PutObject")))
        .expect("results are written");
    assert_eq!(
        list(&put["Resource"]),
        [json!({"Fn::Sub": "${ExportBucket.Arn}/athena-results/*"})]
    );
    assert!(resources.contains(&json!({"Fn::Sub": "${ExportBucket.Arn}/events/*"})));
    let kms = athena
        .iter()
        .find(|s| s["Sid"] == "UseTheKeyThroughS3")
        .expect("the key through S3");
    assert_eq!(
        kms["Condition"]["StringEquals"]["kms:ViaService"],
        json!({"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"})
    );
}

/// The Athena path: exports encrypted with the events' key, private, kept no longer than
/// asked; the Glue tables where the export commands of the README put the files; a named
/// query per file of athena/, text for text.
#[test]
fn exports_go_to_a_private_encrypted_bucket_that_athena_reads() {
    let t = template();
    let bucket = &resource(&t, "ExportBucket")["Properties"];
    let sse = &bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert_eq!(
        sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "aws:kms"
    );
    assert_eq!(
        sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"],
        json!({"Fn::GetAtt": ["EventsKey", "Arn"]})
    );
    let block = &bucket["PublicAccessBlockConfiguration"];
    for k in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[k], true, "{k}");
    }
    let rules = bucket["LifecycleConfiguration"]["Rules"]
        .as_array()
        .unwrap();
    let exports = rules
        .iter()
        .find(|r| r["Prefix"] == "events/")
        .expect("a lifecycle rule for the exports");
    assert_eq!(
        exports["ExpirationInDays"],
        json!({"Ref": "ExportRetentionDays"})
    );
    let policy = &resource(&t, "ExportBucketPolicy")["Properties"]["PolicyDocument"];
    assert_eq!(
        policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
        "false"
    );

    let full = &resource(&t, "EventsFullExportTable")["Properties"]["TableInput"];
    assert_eq!(full["Name"], "events_full");
    assert_eq!(
        full["StorageDescriptor"]["Location"],
        json!({"Fn::Sub": "s3://${ExportBucket}/events/full/AWSDynamoDB/"})
    );
    let inc = &resource(&t, "EventsIncrementalExportTable")["Properties"]["TableInput"];
    assert_eq!(inc["Name"], "events_incremental");
    assert_eq!(
        inc["Parameters"]["storage.location.template"],
        json!({"Fn::Sub": "s3://${ExportBucket}/events/incremental/${!export_window}/AWSDynamoDB/data/"})
    );
    let serde = |t: &Value| t["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].clone();
    assert_eq!(serde(full), "org.openx.data.jsonserde.JsonSerDe");
    assert_eq!(serde(inc), "org.openx.data.jsonserde.JsonSerDe");
    let wg = &resource(&t, "AnalyticsWorkGroup")["Properties"]["WorkGroupConfiguration"];
    assert_eq!(wg["EnforceWorkGroupConfiguration"], true);
    assert_eq!(
        wg["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"],
        "SSE_KMS"
    );

    let resources = t["Resources"].as_object().unwrap();
    let named: BTreeMap<String, String> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::Athena::NamedQuery")
        .map(|r| {
            (
                r["Properties"]["Name"].as_str().unwrap().to_string(),
                r["Properties"]["QueryString"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let files = connect_triage::read::athena::files();
    assert_eq!(named.len(), files.len());
    for (path, sql) in files {
        let stem = Path::new(&path)
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(named.get(&stem), Some(&sql), "the named query {stem}");
    }
}

#[test]
fn the_projector_reads_the_stream_and_events_and_writes_only_the_model() {
    let t = template();
    let role = &resource(&t, "ProjectorFunctionRole")["Properties"];
    assert!(role["ManagedPolicyArns"].is_null());
    let policies = role["Policies"].as_array().unwrap();
    let all: Vec<&Value> = policies
        .iter()
        .flat_map(|p| statements(&p["PolicyDocument"]))
        .collect();
    let by_sid = |sid: &str| {
        *all.iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("statement {sid}"))
    };
    let actions = |s: &Value| {
        list(&s["Action"])
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    let stream = by_sid("ReadTheEventsStream");
    assert_eq!(
        list(&stream["Resource"]),
        [json!({"Fn::GetAtt": ["EventsTable", "StreamArn"]})]
    );
    let events = by_sid("ReadEvents");
    assert_eq!(actions(events), ["dynamodb:Query".to_string()].into());
    assert_eq!(
        list(&events["Resource"]),
        [json!({"Fn::GetAtt": ["EventsTable", "Arn"]})]
    );
    let model = by_sid("WriteTheModel");
    assert_eq!(
        list(&model["Resource"]),
        [json!({"Fn::GetAtt": ["ModelTable", "Arn"]})]
    );
    // Only the model is written.
    let writes = [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
    ];
    for st in &all {
        if st["Sid"] != "WriteTheModel" {
            for a in actions(st) {
                assert!(!writes.contains(&a.as_str()), "{a} in {}", st["Sid"]);
            }
        }
    }
    // The mapping: partial batch responses, bisection, bounded retries, a dead-letter queue.
    let esm = &resource(&t, "ProjectorEventSourceMapping")["Properties"];
    assert_eq!(
        esm["EventSourceArn"],
        json!({"Fn::GetAtt": ["EventsTable", "StreamArn"]})
    );
    assert_eq!(
        esm["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(esm["BisectBatchOnFunctionError"], true);
    assert!(esm["MaximumRetryAttempts"].as_i64().is_some_and(|n| n > 0));
    assert!(esm["MaximumRecordAgeInSeconds"]
        .as_i64()
        .is_some_and(|n| n > 0));
    assert_eq!(
        esm["DestinationConfig"]["OnFailure"]["Destination"],
        json!({"Fn::GetAtt": ["ProjectorDeadLetterQueue", "Arn"]})
    );
    assert_eq!(
        resource(&t, "ProjectorDeadLetterQueue")["Properties"]["SqsManagedSseEnabled"],
        true
    );
    let alarm = &resource(&t, "ProjectorDeadLetterAlarm")["Properties"];
    assert_eq!(
        alarm["Dimensions"][0]["Value"],
        json!({"Fn::GetAtt": ["ProjectorDeadLetterQueue", "QueueName"]})
    );
    let f = &resource(&t, "ProjectorFunction");
    assert_eq!(f["Metadata"]["BuildProperties"]["Binary"], "projector");
    assert_eq!(
        f["Properties"]["Environment"]["Variables"]["TRIAGE_TABLE"],
        json!({"Ref": "EventsTable"})
    );
}

#[test]
fn only_this_connect_instance_may_invoke_the_function() {
    let t = template();
    let p = &resource(&t, "ConnectInvokePermission")["Properties"];
    assert_eq!(p["Principal"], "connect.amazonaws.com");
    assert_eq!(p["Action"], "lambda:InvokeFunction");
    assert_eq!(p["SourceArn"], json!({"Ref": "ConnectInstanceArn"}));
    assert_eq!(p["SourceAccount"], json!({"Ref": "AWS::AccountId"}));
    let env = &resource(&t, "TriageFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env["TRIAGE_CALLER_HASH_KEY"],
        json!({"Ref": "CallerHashKey"})
    );
    let key = &t["Parameters"]["CallerHashKey"];
    assert_eq!(key["NoEcho"], true);
    assert_eq!(key["MinLength"], 16);
}

#[test]
fn this_instance_s_disconnects_reach_the_function_and_only_through_the_rule() {
    let t = template();
    let rule = &resource(&t, "ContactEventsRule")["Properties"];
    assert_eq!(
        rule["EventPattern"],
        json!({
            "source": ["aws.connect"],
            "detail-type": ["Amazon Connect Contact Event"],
            "detail": {
                "eventType": ["DISCONNECTED"],
                "instanceArn": [{"Ref": "ConnectInstanceArn"}]
            }
        })
    );
    assert_eq!(
        rule["Targets"][0]["Arn"],
        json!({"Fn::GetAtt": ["TriageFunction", "Arn"]})
    );
    let p = &resource(&t, "ContactEventsInvokePermission")["Properties"];
    assert_eq!(p["Principal"], "events.amazonaws.com");
    assert_eq!(
        p["SourceArn"],
        json!({"Fn::GetAtt": ["ContactEventsRule", "Arn"]})
    );
    let env = &resource(&t, "TriageFunction")["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env["TRIAGE_CONNECT_INSTANCE_ARN"],
        json!({"Ref": "ConnectInstanceArn"}),
        "the function skips other instances' events"
    );
}

#[tokio::test]
async fn a_hospital_caller_nobody_can_take_gets_the_nurse_team_a_task_when_the_stack_has_one() {
    let t = template();
    assert_eq!(t["Parameters"]["NurseTaskFlowId"]["Default"], "");
    let (full, _) = flow_variants(&t);
    let text = full.as_str().unwrap();
    let flow = Flow::from_json(&substitute(text, LOCAL_QUEUE_ARN)).expect("parses");
    let app = App::new(Arc::new(MemoryStore::new()));
    let id = uuid::Uuid::now_v7().to_string();
    let mut contact = Contact::voice(id.clone(), INSTANCE_ARN);
    contact.customer_number = Some("+34611222333".into());
    contact.center.hours_open = false;
    let mut caller = TerminalCaller::scripted(parse_answers("1,1,1").unwrap(), Vec::new());
    let params = HashMap::new();
    let report = flow::run(&flow, &contact, &AppLambda(&app), &mut caller, &params)
        .await
        .expect("the call runs");
    assert_eq!(report.end, CallEnd::Disconnected);
    let [task] = report.tasks.as_slice() else {
        panic!("one task: {:?}", report.tasks)
    };
    assert_eq!(task.flow_id.as_deref(), Some(NURSE_FLOW));
    assert!(
        task.description.contains(&format!("triage trail {id}")),
        "{task:?}"
    );
    assert!(
        task.description.contains("dificultad al respirar"),
        "{task:?}"
    );
    assert!(
        !task.description.contains("611222333"),
        "never a number: {task:?}"
    );

    // Without a NurseTaskFlowId: the same flow less the task, and no task is made.
    let no_task = flow_without_task(&t).as_str().unwrap();
    assert!(!no_task.contains("create-nurse-task") && !no_task.contains("NurseTaskFlowId"));
    let flow = Flow::from_json(&substitute(no_task, LOCAL_QUEUE_ARN)).expect("parses");
    let mut caller = TerminalCaller::scripted(parse_answers("1,1,1").unwrap(), Vec::new());
    let mut contact = Contact::voice(uuid::Uuid::now_v7().to_string(), INSTANCE_ARN);
    contact.center.hours_open = false;
    let report = flow::run(&flow, &contact, &AppLambda(&app), &mut caller, &params)
        .await
        .expect("the call runs");
    assert!(report.tasks.is_empty());
    assert_eq!(report.end, CallEnd::Disconnected);
}

// ---------------------------------------------------------------------------------------
// The native Connect test cases == connect/test-cases/

#[test]
fn the_native_test_cases_are_connect_test_cases_behind_their_switch() {
    let t = template();
    let p = &t["Parameters"];
    assert_eq!(p["ConnectTestCases"]["Default"], "Disabled");
    assert_eq!(
        p["ConnectTestCases"]["AllowedValues"],
        serde_json::json!(["Enabled", "Disabled"])
    );
    assert_eq!(p["HospitalHoursArn"]["Default"], "");
    let dir = root().join("connect/test-cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("connect/test-cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "one test case per scenario");
    let deployed: Vec<&str> = t["Resources"]
        .as_object()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Connect::TestCase")
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(deployed.len(), files.len(), "{deployed:?}");
    for f in &files {
        let req: Value =
            serde_json::from_str(&std::fs::read_to_string(f).expect("read")).expect("json");
        let stem = f.file_stem().expect("stem").to_string_lossy().to_string();
        let logical: String = std::iter::once("ConnectTest".to_string())
            .chain(stem.split('-').map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|first| first.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            }))
            .collect();
        let r = resource(&t, &logical);
        let props = &r["Properties"];
        let content = req["Content"].as_str().expect("content");
        let hours = content.contains("${HospitalHoursArn}");
        assert_eq!(
            r["Condition"],
            if hours {
                "DeployHoursConnectTests"
            } else {
                "DeployConnectTests"
            },
            "{logical}"
        );
        assert_eq!(props["InstanceArn"]["Ref"], "ConnectInstanceArn");
        assert_eq!(
            props["EntryPoint"]["VoiceCallEntryPointParameters"]["FlowId"]["Fn::GetAtt"],
            serde_json::json!(["TriageFlow", "ContactFlowArn"])
        );
        for key in ["Name", "Description", "Status", "InitializationData"] {
            assert_eq!(props[key], req[key], "{logical}.{key}");
        }
        assert_eq!(
            props["Status"], "PUBLISHED",
            "only published test cases run"
        );
        let deployed_content = props["Content"]["Fn::Sub"]
            .as_str()
            .or(props["Content"].as_str())
            .expect("Content is text or Fn::Sub of text");
        assert_eq!(
            deployed_content, content,
            "{logical}: run scripts/gen-template.py"
        );
        assert_eq!(
            props["Content"].get("Fn::Sub").is_some(),
            content.contains("${"),
            "{logical}: Fn::Sub exactly when a parameter is named"
        );
    }
    // Deployed only with a hospital queue (the scenarios walk the whole line).
    let c = &t["Conditions"]["DeployConnectTests"]["Fn::And"];
    assert!(c
        .as_array()
        .expect("and")
        .contains(&serde_json::json!({"Condition": "HasHospitalQueue"})));
}

/// The answers bot is connect/lex-bot.json, deployed only with SpeechInput Enabled: every
/// intent with that locale's utterances, the fallback every Lex V2 bot needs, a version and
/// alias with every locale enabled, Connect's permission on the alias and the LEX_BOT
/// association of the instance with that alias.
#[test]
fn the_answers_bot_is_connect_lex_bot_json() {
    let t = template();
    let bot: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("connect/lex-bot.json")).expect("bot file"),
    )
    .expect("bot JSON");
    for name in [
        "AnswersBotRole",
        "AnswersBot",
        "AnswersBotVersion",
        "AnswersBotAlias",
        "AnswersBotConnectPolicy",
        "AnswersBotIntegration",
    ] {
        assert_eq!(
            resource(&t, name)["Condition"],
            "SpeechInputEnabled",
            "{name} is deployed only with speech on"
        );
    }
    assert_eq!(t["Parameters"]["SpeechInput"]["Default"], "Disabled");
    let props = &resource(&t, "AnswersBot")["Properties"];
    let locales = props["BotLocales"].as_array().expect("locales");
    let want = bot["locales"].as_array().expect("bot locales");
    assert_eq!(locales.len(), want.len());
    for (got, want) in locales.iter().zip(want) {
        assert_eq!(got["LocaleId"], want["locale_id"]);
        assert_eq!(got["VoiceSettings"]["VoiceId"], want["voice"]);
        assert_eq!(
            got["NluConfidenceThreshold"],
            bot["nlu_confidence_threshold"]
        );
        let intents = got["Intents"].as_array().expect("intents");
        for intent in bot["intents"].as_array().expect("intents") {
            let name = intent["name"].as_str().expect("name");
            let deployed = intents
                .iter()
                .find(|i| i["Name"] == name)
                .unwrap_or_else(|| panic!("intent {name} missing in {}", want["locale_id"]));
            let utterances: Vec<&Value> = deployed["SampleUtterances"]
                .as_array()
                .expect("utterances")
                .iter()
                .map(|u| &u["Utterance"])
                .collect();
            let expected: Vec<&Value> = want["utterances"][name]
                .as_array()
                .expect("file utterances")
                .iter()
                .collect();
            assert_eq!(utterances, expected, "{name} in {}", want["locale_id"]);
        }
        assert!(intents
            .iter()
            .any(|i| i["ParentIntentSignature"] == "AMAZON.FallbackIntent"));
    }
    let alias = &resource(&t, "AnswersBotAlias")["Properties"];
    let enabled: Vec<&Value> = alias["BotAliasLocaleSettings"]
        .as_array()
        .expect("alias locales")
        .iter()
        .filter(|l| l["BotAliasLocaleSetting"]["Enabled"] == true)
        .map(|l| &l["LocaleId"])
        .collect();
    assert_eq!(
        enabled.len(),
        want.len(),
        "every locale is enabled on the alias"
    );
    let policy = &resource(&t, "AnswersBotConnectPolicy")["Properties"]["Policy"]["Statement"][0];
    assert_eq!(policy["Principal"]["Service"], "connect.amazonaws.com");
    assert!(policy["Condition"]["ArnEquals"]["aws:SourceArn"]["Ref"] == "ConnectInstanceArn");
    let assoc = &resource(&t, "AnswersBotIntegration")["Properties"];
    assert_eq!(assoc["IntegrationType"], "LEX_BOT");
    assert_eq!(assoc["IntegrationArn"]["Fn::GetAtt"][0], "AnswersBotAlias");
}

/// Audio (AudioStreaming Enabled only): the instance's media streams go to Kinesis Video
/// Streams under the stack's prefix, encrypted with the events' key, kept at least an hour;
/// the analysts may then read those streams (and only those) and decrypt them through
/// Kinesis Video Streams; without it they have no audio access at all.
#[test]
fn audio_is_stored_and_readable_only_when_it_is_on() {
    let t = template();
    assert_eq!(t["Parameters"]["AudioStreaming"]["Default"], "Disabled");
    assert_eq!(t["Parameters"]["AudioRetentionHours"]["MinValue"], 1);
    let storage = resource(&t, "AudioStreamStorage");
    assert_eq!(storage["Condition"], "AudioStreamingEnabled");
    let p = &storage["Properties"];
    assert_eq!(
        (&p["ResourceType"], &p["StorageType"]),
        (&json!("MEDIA_STREAMS"), &json!("KINESIS_VIDEO_STREAM"))
    );
    let kvs = &p["KinesisVideoStreamConfig"];
    assert_eq!(kvs["Prefix"], json!({"Ref": "AudioStreamPrefix"}));
    assert_eq!(
        kvs["RetentionPeriodHours"],
        json!({"Ref": "AudioRetentionHours"})
    );
    assert_eq!(kvs["EncryptionConfig"]["EncryptionType"], "KMS");
    assert_eq!(
        kvs["EncryptionConfig"]["KeyId"],
        json!({"Fn::GetAtt": ["EventsKey", "Arn"]})
    );
    let policy = &resource(&t, "AnalystsReadPolicy")["Properties"]["PolicyDocument"];
    let always: Vec<String> = statements(policy)
        .iter()
        .flat_map(|s| list(&s["Action"]))
        .map(|a| a.as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        always.iter().all(|a| !a.starts_with("kinesisvideo:")),
        "no audio access unless audio is on: {always:?}"
    );
    let audio = conditional_statements(policy, "AudioStreamingEnabled");
    assert_eq!(audio.len(), 2);
    let read = audio
        .iter()
        .find(|s| s["Sid"] == "ListenToTheCallsAudio")
        .expect("read the streams");
    assert_eq!(
        list(&read["Action"]),
        [
            json!("kinesisvideo:GetDataEndpoint"),
            json!("kinesisvideo:GetMedia")
        ]
    );
    assert_eq!(
        read["Resource"],
        json!({"Fn::Sub": "arn:${AWS::Partition}:kinesisvideo:${AWS::Region}:${AWS::AccountId}:stream/${AudioStreamPrefix}-*/*"})
    );
    let key = audio
        .iter()
        .find(|s| s["Sid"] == "DecryptTheAudioThroughKinesisVideo")
        .expect("decrypt");
    assert_eq!(
        key["Condition"]["StringEquals"]["kms:ViaService"],
        json!({"Fn::Sub": "kinesisvideo.${AWS::Region}.amazonaws.com"})
    );
}
