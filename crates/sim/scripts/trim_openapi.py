#!/usr/bin/env python3
"""Copy the Stripe fixtures the simulator needs into crates/sim/fixtures/.

The published OpenAPI description is 6+ MB and lives outside the repo (../shared). This keeps
only what the simulator serves: the operations below (request body / query parameters and
response schema) and the component schemas they reach, cut at a fixed depth (deeper `$ref`s
become `{}`, i.e. "anything"). Descriptions are dropped. Re-run after updating the spec:

    python3 crates/sim/scripts/trim_openapi.py ../shared/fixtures
"""
import json
import shutil
import sys
from pathlib import Path

OPERATIONS = [
    ("/v1/products", "post"),
    ("/v1/prices", "post"),
    ("/v1/payment_links", "post"),
    ("/v1/checkout/sessions", "post"),
    ("/v1/checkout/sessions/{session}", "get"),
    ("/v1/checkout/sessions/{session}/expire", "post"),
    ("/v1/refunds", "post"),
    ("/v1/refunds", "get"),
    ("/v1/refunds/{refund}", "get"),
    ("/v1/events", "get"),
    ("/v1/webhook_endpoints", "post"),
    ("/v1/webhook_endpoints", "get"),
    ("/v1/webhook_endpoints/{webhook_endpoint}", "get"),
    ("/v1/webhook_endpoints/{webhook_endpoint}", "post"),
    ("/v1/webhook_endpoints/{webhook_endpoint}", "delete"),
]
# API versions Stripe released after this description was published. Stripe accepts them
# as a webhook endpoint's `api_version`; Coachdesk pins the one async-stripe 0.41 speaks.
NEWER_API_VERSIONS = ["2023-10-16"]
ROOTS = ["error", "charge", "dispute"]
DEPTH = 3
DROP = {"description", "title", "x-expandableFields", "x-resourceId", "x-stripeOperations",
        "x-stripeResource", "x-stripeBypassValidation", "x-stripeMostCommon", "example"}


def strip(o):
    if isinstance(o, dict):
        # Drop annotations, never properties that happen to share their names.
        return {k: strip(v) for k, v in o.items() if k not in DROP or not isinstance(v, (str, list, bool))}
    if isinstance(o, list):
        return [strip(x) for x in o]
    return o


def refs(o, acc):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "$ref":
                acc.add(v.split("/")[-1])
            else:
                refs(v, acc)
    elif isinstance(o, list):
        for x in o:
            refs(x, acc)


def cut(o, keep):
    if isinstance(o, dict):
        if "$ref" in o and o["$ref"].split("/")[-1] not in keep:
            return {}
        return {k: cut(v, keep) for k, v in o.items()}
    if isinstance(o, list):
        return [cut(x, keep) for x in o]
    return o


def main():
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures")
    out = Path(__file__).resolve().parent.parent / "fixtures"
    spec = json.loads((src / "stripe/openapi-spec3.2023-09-13.json").read_text())
    schemas = spec["components"]["schemas"]
    paths = {}
    frontier = set(ROOTS)
    for path, method in OPERATIONS:
        op = spec["paths"][path][method]
        kept = {"parameters": op.get("parameters", []), "responses": {"200": op["responses"]["200"]}}
        body = op.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded")
        if body:
            kept["requestBody"] = body["schema"]
        if path == "/v1/webhook_endpoints" and method == "post":
            kept["requestBody"]["properties"]["api_version"]["enum"] += NEWER_API_VERSIONS
        paths.setdefault(path, {})[method] = strip(kept)
        refs(kept, frontier)
    keep = set()
    for _ in range(DEPTH):
        new = frontier - keep
        keep |= new
        frontier = set()
        for name in new:
            refs(schemas[name], frontier)
    subset = {
        "info": {"source": "openapi-spec3.2023-09-13.json", "version": spec["info"]["version"]},
        "paths": cut(paths, keep),
        "schemas": {name: cut(strip(schemas[name]), keep) for name in sorted(keep)},
    }
    (out / "stripe").mkdir(parents=True, exist_ok=True)
    (out / "stripe/openapi-subset.json").write_text(json.dumps(subset, sort_keys=True) + "\n")
    for sample in sorted((src / "stripe").glob("*.json")):
        if sample.name.startswith(("openapi", "object-fixtures")):
            continue
        shutil.copyfile(sample, out / "stripe" / sample.name)
    (out / "calendly").mkdir(parents=True, exist_ok=True)
    for sample in sorted((src / "calendly").glob("*.json")):
        shutil.copyfile(sample, out / "calendly" / sample.name)


if __name__ == "__main__":
    main()
