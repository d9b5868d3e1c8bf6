#!/usr/bin/env python3
"""Checks FHIR R4 Questionnaires and the QuestionnaireResponses of an NDJSON file
(src/read/fhir.rs writes both): each resource parses with the fhir.resources models of
R4B (4.3.0: the version fhir.resources 8 ships closest to R4 4.0.1; Questionnaire and
QuestionnaireResponse are the same in both), and each response agrees with the
questionnaire it names: `questionnaire` is one's url|version, every linkId is one of its items,
answers have the item's type (valueBoolean only on boolean items, valueCoding from the
item's answerOptions), a `completed` response answers every required item, statuses and
ids are FHIR's. The models check cardinalities, unknown fields and primitive formats, but
not code values and they coerce "yes" to a boolean, so those are checked on the JSON.

    scripts/fhir-validate.py NDJSON_FILE QUESTIONNAIRE_JSON [QUESTIONNAIRE_JSON ...]

Prints one line per problem (FILE:LINE: where: what), then `N responses valid`. Exit
status 0 when there is no problem, 1 otherwise. Install its package with scripts/pyenv.sh
(tests/python-requirements.txt pins fhir.resources).

Spec: https://hl7.org/fhir/R4/questionnaire.html,
https://hl7.org/fhir/R4/questionnaireresponse.html, https://hl7.org/fhir/R4/nd-json.html.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# que-0: Name should be usable as an identifier for the module by machine processing.
NAME = re.compile(r"[A-Z]([A-Za-z0-9_]){0,254}")
QUESTIONNAIRE_STATUS = {"draft", "active", "retired", "unknown"}
RESPONSE_STATUS = {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
# http://hl7.org/fhir/R4/valueset-item-type.html, and the answer value[x] each type takes
# (QuestionnaireResponse.item.answer.value[x]: "Must match the datatype specified by
# Questionnaire.item.type"). choice and open-choice take their answerOptions' types.
ANSWER_TYPES = {
    "group": set(),
    "display": set(),
    "boolean": {"valueBoolean"},
    "decimal": {"valueDecimal"},
    "integer": {"valueInteger"},
    "date": {"valueDate"},
    "dateTime": {"valueDateTime"},
    "time": {"valueTime"},
    "string": {"valueString"},
    "text": {"valueString"},
    "url": {"valueUri"},
    "choice": {"valueCoding"},
    "open-choice": {"valueCoding", "valueString"},
    "attachment": {"valueAttachment"},
    "reference": {"valueReference"},
    "quantity": {"valueQuantity"},
}
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


class Report:
    def __init__(self) -> None:
        self.problems = 0

    def problem(self, where: str, what: str) -> None:
        self.problems += 1
        print(f"{where}: {what}")


def model_problems(model, doc: dict) -> list[str]:
    """What the fhir.resources model says of `doc`, one line per error."""
    from pydantic import ValidationError

    try:
        model.model_validate(doc)
    except ValidationError as e:
        return [
            f"{'.'.join(str(p) for p in err['loc']) or '(resource)'}: {err['msg']}"
            for err in e.errors()
        ]
    return []


def walk(items, path: str = "item"):
    """(path, item) of every item, nested ones included."""
    for i, item in enumerate(items or []):
        here = f"{path}[{i}]"
        if isinstance(item, dict):
            yield here, item
            yield from walk(item.get("item"), f"{here}.item")


def translation_langs(element) -> set[str]:
    langs = set()
    for ext in (element or {}).get("extension", []) if isinstance(element, dict) else []:
        if ext.get("url") == TRANSLATION:
            for part in ext.get("extension", []):
                if part.get("url") == "lang" and isinstance(part.get("valueCode"), str):
                    langs.add(part["valueCode"])
    return langs


class Form:
    """What responses are checked against: a Questionnaire's items by linkId."""

    def __init__(self, doc: dict) -> None:
        self.canonical = f"{doc.get('url')}|{doc.get('version')}"
        self.items: dict[str, dict] = {}
        self.langs = {doc["language"]} if isinstance(doc.get("language"), str) else set()
        for _, item in walk(doc.get("item")):
            self.items.setdefault(item.get("linkId"), item)
            self.langs |= translation_langs(item.get("_text"))

    def answer_types(self, item: dict) -> set[str]:
        kind = item.get("type")
        allowed = set(ANSWER_TYPES.get(kind, set()))
        if kind in ("choice", "open-choice") and item.get("answerOption"):
            allowed = {"valueString"} if kind == "open-choice" else set()
            for option in item["answerOption"]:
                allowed |= {k for k in option if k.startswith("value")}
        return allowed

    def options(self, item: dict) -> set[tuple]:
        return {
            (o["valueCoding"].get("system"), o["valueCoding"].get("code"))
            for o in item.get("answerOption") or []
            if isinstance(o.get("valueCoding"), dict)
        }


def check_questionnaire(path: str, report: Report) -> Form | None:
    from fhir.resources.R4B.questionnaire import Questionnaire

    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        report.problem(path, f"cannot read the questionnaire: {e}")
        return None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Questionnaire":
        report.problem(path, "resourceType: not a Questionnaire")
        return None
    for line in model_problems(Questionnaire, doc):
        report.problem(path, line)
    for key in ("url", "version"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            report.problem(path, f"{key}: missing: responses name the questionnaire by url|version")
    if "id" in doc and not (isinstance(doc["id"], str) and ID.fullmatch(doc["id"])):
        report.problem(path, f"id: {doc['id']!r} is not 1-64 of A-Z a-z 0-9 - .")
    if "name" in doc and not (isinstance(doc["name"], str) and NAME.fullmatch(doc["name"])):
        report.problem(path, f"name: {doc['name']!r} breaks que-0 ([A-Z][A-Za-z0-9_]*)")
    if doc.get("status") not in QUESTIONNAIRE_STATUS:
        report.problem(path, f"status: {doc.get('status')!r} is not one of {sorted(QUESTIONNAIRE_STATUS)}")
    seen: dict[str, str] = {}
    for where, item in walk(doc.get("item")):
        link = item.get("linkId")
        if link in seen:
            report.problem(path, f"{where}.linkId: {link!r} is also {seen[link]} (que-2)")
        seen.setdefault(link, where)
        if item.get("type") not in ANSWER_TYPES:
            report.problem(path, f"{where}.type: {item.get('type')!r} is not an item type")
    return Form(doc)


def check_items(items, form: Form, where: str, problem) -> set[str]:
    """Checks answered items against the form; returns the linkIds answered."""
    answered: set[str] = set()
    siblings: set[str] = set()
    for i, item in enumerate(items or []):
        here = f"{where}[{i}]"
        if not isinstance(item, dict):
            continue
        link = item.get("linkId")
        if link in siblings:
            problem(f"{here}.linkId: {link!r} twice among siblings: answers of one item go in one answer list")
        siblings.add(link)
        definition = form.items.get(link)
        if definition is None:
            problem(f"{here}.linkId: {link!r} is not an item of the questionnaire")
            continue
        allowed = form.answer_types(definition)
        kind = definition.get("type")
        answers = item.get("answer") or []
        if answers:
            answered.add(link)
        for j, answer in enumerate(answers):
            there = f"{here}.answer[{j}]"
            values = [k for k in answer if k.startswith("value") and not k.startswith("_")]
            if len(values) != 1:
                problem(f"{there}: {len(values)} values; an answer has one value[x]")
            for key in values:
                value = answer[key]
                if key == "valueBoolean" and kind != "boolean":
                    problem(f"{there}.valueBoolean: item {link!r} is {kind}, not boolean")
                elif key not in allowed:
                    problem(f"{there}.{key}: item {link!r} ({kind}) takes {sorted(allowed) or 'no answer'}")
                elif key == "valueBoolean" and not isinstance(value, bool):
                    problem(f"{there}.valueBoolean: {value!r} is not true or false")
                elif key == "valueInteger" and (isinstance(value, bool) or not isinstance(value, int)):
                    problem(f"{there}.valueInteger: {value!r} is not an integer")
                elif key == "valueCoding" and form.options(definition):
                    pair = (value.get("system"), value.get("code")) if isinstance(value, dict) else None
                    if pair not in form.options(definition):
                        problem(f"{there}.valueCoding: {pair} is not an answerOption of {link!r}")
            answered |= check_items(answer.get("item"), form, f"{there}.item", problem)
        answered |= check_items(item.get("item"), form, f"{here}.item", problem)
    return answered


def check_responses(path: str, forms: dict, report: Report) -> tuple[int, int]:
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    valid = invalid = 0
    ids: dict[str, int] = {}
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        report.problem(path, f"cannot read the responses: {e}")
        return 0, 0
    with f:
        for number, line in enumerate(f, start=1):
            before = report.problems

            def problem(what: str) -> None:
                report.problem(f"{path}:{number}", what)

            text = line.rstrip("\r\n")
            try:
                doc = json.loads(text)
            except ValueError as e:
                problem(f"not a JSON resource: {e}")
                invalid += 1
                continue
            if not isinstance(doc, dict) or doc.get("resourceType") != "QuestionnaireResponse":
                problem("resourceType: not a QuestionnaireResponse (an NDJSON file holds one resource type)")
                invalid += 1
                continue
            for message in model_problems(QuestionnaireResponse, doc):
                problem(message)
            rid = doc.get("id")
            if not (isinstance(rid, str) and ID.fullmatch(rid)):
                problem(f"id: {rid!r} is not 1-64 of A-Z a-z 0-9 - .")
            elif rid in ids:
                problem(f"id: {rid!r} is also the id of line {ids[rid]}")
            else:
                ids[rid] = number
            status = doc.get("status")
            if status not in RESPONSE_STATUS:
                problem(f"status: {status!r} is not one of {sorted(RESPONSE_STATUS)}")
            form = forms.get(doc.get("questionnaire"))
            if form is None:
                problem(f"questionnaire: {doc.get('questionnaire')!r} is none of {sorted(forms)}")
            else:
                lang = doc.get("language")
                if lang is not None and form.langs and lang not in form.langs:
                    problem(f"language: {lang!r} is not one the questionnaire speaks ({sorted(form.langs)})")
                answered = check_items(doc.get("item"), form, "item", problem)
                if status == "completed":
                    for link, item in form.items.items():
                        if item.get("required") is True and link not in answered:
                            problem(f"item: required {link!r} has no answer in a completed response")
            if report.problems == before:
                valid += 1
            else:
                invalid += 1
    return valid, invalid


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Check a FHIR R4 Questionnaire and the QuestionnaireResponses of an NDJSON file."
    )
    parser.add_argument("responses", metavar="NDJSON_FILE", help="QuestionnaireResponses, one a line")
    parser.add_argument(
        "questionnaires",
        metavar="QUESTIONNAIRE_JSON",
        nargs="+",
        help="the Questionnaire resources (JSON) the responses answer: each response must name one of them (url|version)",
    )
    args = parser.parse_args()
    try:
        import fhir.resources.R4B as r4b
    except ImportError as e:
        print(f"fhir-validate: {e}: install tests/python-requirements.txt (scripts/pyenv.sh)")
        return 1
    if not str(r4b.__fhir_version__).startswith("4."):
        print(f"fhir-validate: fhir.resources.R4B is FHIR {r4b.__fhir_version__}, not 4.x")
        return 1
    report = Report()
    forms = {}
    for path in args.questionnaires:
        form = check_questionnaire(path, report)
        if form is not None:
            forms[form.canonical] = form
    valid, invalid = check_responses(args.responses, forms, report)
    print(f"{valid} responses valid" + (f", {invalid} invalid" if invalid else ""))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
