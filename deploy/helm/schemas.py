"""Kubernetes and CRD JSON schemas for kubeconform, built offline from sources of the Go
module proxy (deploy/helm/tools.sh fetches them).

One file per kind, ``<kind>-<group>-<version>.json`` (kubeconform's
``-schema-location 'DIR/{{ .ResourceKind }}-{{ .Group }}-{{ .ResourceAPIVersion }}.json'``;
its Group is "v1" for the core group), each the kind's schema with the definitions it
refers to beside it. Strict, as
kubeconform's ``-strict`` schemas are: an object with declared properties takes no other
key, so a misspelt field fails instead of being dropped by the API server. The conversions
of int-or-string and quantities follow yannh/kubernetes-json-schema's openapi2jsonschema.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import yaml

INT_OR_STRING = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
QUANTITY = {"oneOf": [{"type": "string"}, {"type": "number"}]}


NAMED = ("properties", "definitions", "patternProperties")  # keys there are names, not keywords


def strict(node: Any) -> Any:
    """additionalProperties: false on objects with properties; OpenAPI v3 nullable and
    x-kubernetes-int-or-string as JSON schema says them."""
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: ({name: strict(sub) for name, sub in v.items()} if k in NAMED and isinstance(v, dict) else strict(v))
           for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        return {**{k: v for k, v in out.items() if k not in ("type", "anyOf")}, **INT_OR_STRING}
    if out.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def write(out: Path, kind: str, group: str, version: str, schema: dict[str, Any]) -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", **schema}
    (out / f"{kind.lower()}-{group}-{version}.json").write_text(json.dumps(schema))


def refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(refs(n) for n in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    own = {node["$ref"].removeprefix("#/definitions/")} if isinstance(node.get("$ref"), str) else set()
    return own.union(*(refs(v) for v in node.values()))


def reachable(defs: dict[str, Any], root: str) -> dict[str, Any]:
    """The definitions ``root`` refers to, directly or not: what its file must carry."""
    seen, todo = set(), [root]
    while todo:
        name = todo.pop()
        if name not in seen and name in defs:
            seen.add(name)
            todo += refs(defs[name])
    return {n: defs[n] for n in sorted(seen)}


def from_swagger(swagger: Path, out: Path) -> int:
    """One file per kind; kubeconform's template says Group "v1" for the core group."""
    defs: dict[str, Any] = json.loads(swagger.read_text())["definitions"]
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = INT_OR_STRING
    defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = QUANTITY
    defs = strict({"definitions": defs})["definitions"]
    count = 0
    for name, body in defs.items():
        for gvk in body.get("x-kubernetes-group-version-kind", []):
            schema = copy.deepcopy(body)
            schema["definitions"] = reachable(defs, name)  # "#/definitions/..." resolves in the file
            write(out, gvk["kind"], gvk["group"] or gvk["version"], gvk["version"], schema)
            count += 1
    return count


def from_crd(crd: Path, out: Path) -> int:
    count = 0
    for doc in yaml.safe_load_all(crd.read_text()):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for version in spec["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            meta = schema.setdefault("properties", {}).get("metadata")
            if meta == {"type": "object", "additionalProperties": False} or meta == {"type": "object"}:
                schema["properties"]["metadata"] = {"type": "object"}  # the API server checks it, not the CRD
            write(out, spec["names"]["kind"], spec["group"], version["name"], schema)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description="Kubernetes + CRD JSON schemas for kubeconform, offline.")
    parser.add_argument("--out", type=Path, required=True, help="folder for the schema files (created)")
    parser.add_argument("--swagger", type=Path, required=True, help="kubernetes api/openapi-spec/swagger.json")
    parser.add_argument("--crd", type=Path, action="append", default=[], help="a CRD YAML file (repeatable)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    n = from_swagger(args.swagger, args.out)
    n += sum(from_crd(c, args.out) for c in args.crd)
    print(f"{n} schemas in {args.out}")


if __name__ == "__main__":
    main()
