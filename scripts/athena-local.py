#!/usr/bin/env python3
"""The Athena path, on this machine: DynamoDB export files, and the views run in DuckDB.

  athena-local.py export --table T --out DIR [--incremental-share 0.5]
      Scans table T (the endpoint of AWS_ENDPOINT_URL: DynamoDB Local, LocalStack) and
      writes what DynamoDB's export to S3 writes, under DIR as under the bucket
      (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html):
        DIR/events/full/AWSDynamoDB/<ExportId>/manifest-summary.json, manifest-files.json,
            _started, data/<file>.json.gz   lines {"Item": {...}}, in DynamoDB JSON
        DIR/events/incremental/YYYY/MM/DD/HH/AWSDynamoDB/<ExportId>/manifest-*.json,
            AWSDynamoDB/data/<file>.json.gz  lines {"Metadata": {"WriteTimestampMicros": ...},
            "Keys": {...}, "NewImage": {...}} (view type NEW_IMAGE); a deletion has no NewImage
      The items of about --incremental-share of the calls go to the incremental export, the
      rest (and the table's '#' metadata items) to the full one; a few items are in both, as
      when an incremental window overlaps the full export's time; one deletion is added.
      The S3 prefixes are the ones template.yaml's Glue tables read.

  athena-local.py query --template template.yaml --exports DIR --sql athena --out OUT
      Makes DuckDB tables named and typed as template.yaml's Glue tables (events_full,
      events_incremental: their columns, their partition keys filled from the path as the
      partitions' locations say), reading the JSON with the Glue table's SerDe rule (the
      OpenX JSON SerDe matches keys case-insensitively: keys are lowercased), then runs
      athena/views/*.sql in order and athena/queries/*.sql, text unchanged, and writes
      OUT/triage_answers.jsonl, OUT/triage_calls.jsonl and OUT/<query>.json.

The JSON lines are written by boto3's low-level client, whose items are DynamoDB JSON
already ({"S": ...}, {"N": ...}, {"BOOL": ...}).
"""
import argparse
import gzip
import hashlib
import json
import os
import pathlib
import re
import sys
import tempfile
import time


def fail(msg):
    print(f"athena-local: {msg}", file=sys.stderr)
    sys.exit(1)


# ---- export -------------------------------------------------------------------------------

def scan(table):
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    extra = {}
    if endpoint and not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
        # A local endpoint (DynamoDB Local, LocalStack) takes any credentials.
        extra = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, **extra)
    items, start = [], None
    while True:
        args = {"TableName": table, "ConsistentRead": True}
        if start:
            args["ExclusiveStartKey"] = start
        page = client.scan(**args)
        items.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def write_gz_lines(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")


def manifests(folder, export_id, export_type, files, item_count):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_started").write_text("")
    entries = []
    for key, count in files:
        entries.append({"itemCount": count, "md5Checksum": "", "etag": "", "dataFileS3Key": key})
    (folder / "manifest-files.json").write_text("".join(json.dumps(e) + "\n" for e in entries))
    summary = {
        "version": "2023-08-01" if export_type == "INCREMENTAL_EXPORT" else "2020-06-30",
        "exportArn": f"arn:aws:dynamodb:us-east-1:000000000000:table/t/export/{export_id}",
        "exportType": export_type,
        "outputFormat": "DYNAMODB_JSON",
        "itemCount": item_count,
        "outputView": "NEW_IMAGE" if export_type == "INCREMENTAL_EXPORT" else None,
    }
    (folder / "manifest-summary.json").write_text(json.dumps(summary, indent=2))


def export(args):
    items = scan(args.table)
    if not items:
        fail(f"table {args.table} has no items to export")
    out = pathlib.Path(args.out)

    def incremental(item):
        cid = item["contact_id"]["S"]
        if cid.startswith("#"):
            return False
        h = int(hashlib.sha256(cid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        return h < args.incremental_share

    full = [i for i in items if not incremental(i)]
    inc = [i for i in items if incremental(i)]
    # Overlap: the first few incremental items are in the full export too.
    full += inc[:5]

    full_id = "01764680000000-a1b2c3d4"
    base = out / "events" / "full" / "AWSDynamoDB" / full_id
    files, half = [], (len(full) + 1) // 2
    for n, part in enumerate([full[:half], full[half:], []]):  # an empty partition: an empty file
        key = f"data/{n:04d}abcd.json.gz"
        write_gz_lines(base / key, [{"Item": i} for i in part])
        files.append((f"events/full/AWSDynamoDB/{full_id}/{key}", len(part)))
    manifests(base, full_id, "FULL_EXPORT", files, len(full))

    inc_id = "01764683600000-e5f6a7b8"
    window = out / "events" / "incremental" / "2026" / "12" / "02" / "15" / "AWSDynamoDB"
    micros = int(time.time() * 1_000_000)
    lines = []
    for i in inc:
        keys = {"contact_id": i["contact_id"], "seq": i["seq"]}
        lines.append({"Metadata": {"WriteTimestampMicros": {"N": str(micros)}}, "Keys": keys, "NewImage": i})
    # A deletion (TTL expiry of an old event): keys, no image.
    lines.append({
        "Metadata": {"WriteTimestampMicros": {"N": str(micros)}},
        "Keys": {"contact_id": {"S": "expired-call"}, "seq": {"N": "1"}},
    })
    key = "data/0000efgh.json.gz"
    write_gz_lines(window / key, lines)
    manifests(window / inc_id, inc_id, "INCREMENTAL_EXPORT",
              [(f"events/incremental/2026/12/02/15/AWSDynamoDB/{key}", len(lines))], len(lines))
    print(json.dumps({"items": len(items), "full": len(full), "incremental": len(lines)}))


# ---- query --------------------------------------------------------------------------------

def load_template(path):
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # Short-form intrinsic functions (!Sub ...) read as plain values; the template uses the
    # long form, but a reader should not fall over if one appears.
    def any_tag(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", any_tag)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


def hive_to_duckdb(t):
    """A Hive type string (Glue's column type) as a DuckDB type."""
    t = t.strip()
    m = re.fullmatch(r"struct<(.*)>", t, re.S)
    if m:
        fields, depth, cur = [], 0, ""
        for ch in m.group(1):
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
            if ch == "," and depth == 0:
                fields.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            fields.append(cur)
        parts = []
        for f in fields:
            name, _, ftype = f.partition(":")
            parts.append(f'"{name.strip()}" {hive_to_duckdb(ftype)}')
        return "STRUCT(" + ", ".join(parts) + ")"
    simple = {"string": "VARCHAR", "boolean": "BOOLEAN", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE"}
    if t in simple:
        return simple[t]
    fail(f"a Glue column type this script cannot map: {t}")


def lower_keys(v):
    if isinstance(v, dict):
        return {k.lower(): lower_keys(x) for k, x in v.items()}
    if isinstance(v, list):
        return [lower_keys(x) for x in v]
    return v


def glue_tables(template):
    tables = {}
    for name, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::Glue::Table":
            continue
        ti = res["Properties"]["TableInput"]
        tables[ti["Name"]] = ti
    return tables


def partitions(exports, ti):
    """(partition values, data folder) of a table, as its partitions' locations say."""
    keys = [k["Name"] for k in ti.get("PartitionKeys", [])]
    params = ti.get("Parameters", {})
    found = []
    if params.get("projection.enabled") == "true":
        template = params["storage.location.template"]
        # s3://BUCKET/PREFIX/${key}/rest -> DIR/PREFIX/<value>/rest, value matched per the format.
        rel = re.sub(r"^s3://[^/]+/", "", _sub_text(template))
        pattern = re.escape(rel)
        for k in keys:
            pattern = pattern.replace(re.escape("${" + k + "}"), f"(?P<{k}>.+?)")
        for folder in sorted(exports.rglob("*")):
            if folder.is_dir():
                rel_folder = folder.relative_to(exports).as_posix() + "/"
                m = re.fullmatch(pattern, rel_folder)
                if m:
                    found.append(({k: m.group(k) for k in keys}, folder))
    else:
        # Partitions added one per export (ALTER TABLE ... ADD PARTITION ... LOCATION
        # '<table location><ExportId>/data/'), as the README says.
        loc = re.sub(r"^s3://[^/]+/", "", _sub_text(ti["StorageDescriptor"]["Location"]))
        root = exports / loc
        for data in sorted(root.glob("*/data")):
            found.append(({keys[0]: data.parent.name}, data))
    return found


def _sub_text(v):
    """The text of a location: a plain string, or Fn::Sub's string."""
    if isinstance(v, dict) and "Fn::Sub" in v:
        v = v["Fn::Sub"]
        if isinstance(v, list):
            v = v[0]
    if not isinstance(v, str):
        fail(f"a location this script cannot read: {v!r}")
    # Template parameters (${ExportBucket}) stand for the bucket; ${key} of a partition stays.
    # Fn::Sub's ${!name} is the literal ${name}: a projected partition key.
    return re.sub(r"\$\{(?!!)[A-Za-z0-9:.]+\}", "bucket", v).replace("${!", "${")


def query(args):
    import duckdb

    exports = pathlib.Path(args.exports)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tables = glue_tables(load_template(args.template))
    for needed in ("events_full", "events_incremental"):
        if needed not in tables:
            fail(f"template.yaml declares no Glue table {needed}")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="athena-local-"))
    for name in ("events_full", "events_incremental"):
        ti = tables[name]
        cols = {c["Name"]: hive_to_duckdb(c["Type"]) for c in ti["StorageDescriptor"]["Columns"]}
        pkeys = [k["Name"] for k in ti.get("PartitionKeys", [])]
        rows = tmp / f"{name}.jsonl"
        n = 0
        with open(rows, "w", encoding="utf-8") as f:
            for values, folder in partitions(exports, ti):
                for data in sorted(folder.glob("*")):
                    if data.name.startswith(("_", ".")) or not data.is_file():
                        continue  # Athena skips these
                    opener = gzip.open if data.suffix == ".gz" else open
                    with opener(data, "rt", encoding="utf-8") as src:
                        for line in src:
                            if not line.strip():
                                continue
                            row = lower_keys(json.loads(line))
                            rec = {c: row.get(c) for c in cols}
                            rec.update(values)
                            f.write(json.dumps(rec) + "\n")
                            n += 1
        all_cols = dict(cols)
        for k in pkeys:
            all_cols[k] = "VARCHAR"
        spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in all_cols.items()) + "}"
        con.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_json('{rows}', format = 'newline_delimited', columns = {spec})"
        )
        print(f"athena-local: {name}: {n} lines", file=sys.stderr)
    sql = pathlib.Path(args.sql)
    for view in sorted((sql / "views").glob("*.sql")):
        con.execute(view.read_text(encoding="utf-8"))
    for view in ("triage_answers", "triage_calls"):
        cur = con.execute(f"SELECT * FROM {view}")
        names = [d[0] for d in cur.description]
        with open(out / f"{view}.jsonl", "w", encoding="utf-8") as f:
            for r in cur.fetchall():
                f.write(json.dumps(dict(zip(names, r)), ensure_ascii=False, default=str) + "\n")
    for q in sorted((sql / "queries").glob("*.sql")):
        cur = con.execute(q.read_text(encoding="utf-8"))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        (out / f"{q.stem}.json").write_text(json.dumps(rows, default=str, ensure_ascii=False, indent=1))
    print(f"athena-local: wrote {out}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--table", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--incremental-share", type=float, default=0.5)
    q = sub.add_parser("query")
    q.add_argument("--template", required=True)
    q.add_argument("--exports", required=True)
    q.add_argument("--sql", required=True)
    q.add_argument("--out", required=True)
    a = p.parse_args()
    export(a) if a.cmd == "export" else query(a)


if __name__ == "__main__":
    main()
