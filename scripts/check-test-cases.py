#!/usr/bin/env python3
"""Checks the native Connect test cases in connect/test-cases/ against the testing language.

Every file is a CreateTestCase request (`aws connect create-test-case --cli-input-json`),
written by `triage connect-tests --out connect/test-cases`. Its Content is validated against
connect/testing-language.schema.json (written from AWS's testing-language pages, cited there)
with the `jsonschema` package, an independent validator from the Rust check in
src/sim/connect_tests.rs; the request's own fields against CreateTestCase / AWS::Connect::TestCase
(https://docs.aws.amazon.com/connect/latest/APIReference/API_CreateTestCase.html,
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-connect-testcase.html).

Before the files, the check proves it can fail: a copy of the first file with
MatchingCriteria as a bare string (the API reference example's form, which the
Message received page does not allow) must be refused.

  python3 scripts/check-test-cases.py [DIR]
"""
import copy
import json
import pathlib
import sys

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "connect" / "testing-language.schema.json").read_text(encoding="utf-8"))
REQUEST_KEYS = {"InstanceId", "Name", "Description", "Content", "EntryPoint", "InitializationData", "Status"}


def problems(request: dict) -> list[str]:
    out = []
    extra = set(request) - REQUEST_KEYS
    if extra:
        out.append(f"keys CreateTestCase does not take: {sorted(extra)}")
    for key in ("InstanceId", "Name", "Content"):
        if not isinstance(request.get(key), str) or not request[key].strip():
            out.append(f"{key} is required (a non-empty string)")
    if len(request.get("Name", "")) > 127:
        out.append("Name is over 127 characters")
    if len(request.get("Description", "")) > 500:
        out.append("Description is over 500 characters")
    if request.get("Status") not in ("SAVED", "PUBLISHED"):
        out.append("Status must be SAVED or PUBLISHED (only PUBLISHED runs)")
    entry = request.get("EntryPoint", {})
    if entry.get("Type") != "VOICE_CALL" or not entry.get("VoiceCallEntryPointParameters", {}).get("FlowId"):
        out.append("EntryPoint must be a VOICE_CALL into a FlowId")
    try:
        init = json.loads(request.get("InitializationData", "{}"))
        if not isinstance(init, dict):
            out.append("InitializationData must be a JSON object")
    except json.JSONDecodeError as e:
        out.append(f"InitializationData is not JSON: {e}")
    content = request.get("Content", "")
    if len(content) > 256000:
        out.append("Content is over 256,000 characters")
    try:
        doc = json.loads(content)
    except json.JSONDecodeError as e:
        return out + [f"Content is not JSON: {e}"]
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        out.append(f"Content/{where}: {err.message}")
    return out


def main() -> int:
    folder = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "connect" / "test-cases"
    files = sorted(folder.glob("*.json"))
    if not files:
        print(f"check-test-cases: no test cases in {folder}; run triage connect-tests --out {folder}", file=sys.stderr)
        return 1
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    # The check must be able to fail.
    broken = json.loads(files[0].read_text(encoding="utf-8"))
    content = json.loads(broken["Content"])
    for obs in content["Observations"]:
        if obs["Event"]["Type"] == "MessageReceived":
            obs["Event"]["Properties"]["MatchingCriteria"] = "Similarity"
            break
    broken["Content"] = json.dumps(content)
    if not problems(broken):
        print("check-test-cases: the schema accepted MatchingCriteria as a bare string; the check is broken", file=sys.stderr)
        return 1
    bad = 0
    for f in files:
        found = problems(json.loads(f.read_text(encoding="utf-8")))
        for p in found:
            print(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}: {p}", file=sys.stderr)
        bad += bool(found)
    if bad:
        print(f"check-test-cases: {bad} of {len(files)} test cases break the testing language", file=sys.stderr)
        return 1
    print(f"check-test-cases: {len(files)} test cases follow the testing language (connect/testing-language.schema.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
