"""Expand a SAM template into the CloudFormation that SAM deploys, as ``sam validate`` does.

Run by the interpreter that has SAM's translator (aws-sam-translator, which SAM CLI brings
into .venv-tools; it pins a pydantic older than fwwatch's, so it cannot live in .venv)::

    .venv-tools/bin/python tests/aws/sam_expand.py < template.json > expanded.json

Reads the parsed template as JSON on stdin (short tags already in their long form) and
writes the expanded template as JSON on stdout. Offline: no AWS call, no credentials. Like
``sam validate``, local code folders are replaced by an S3 URI first.
"""

from __future__ import annotations

import json
import sys
from typing import Any

REGION = "eu-central-1"


def expand(template: dict[str, Any]) -> dict[str, Any]:
    """The template as SAM's transform turns it into CloudFormation."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://bucket/{key}"
    translator = Translator({}, Parser(), boto_session=boto3.Session(region_name=REGION))
    # Managed policy names in Policies would need IAM to resolve; the template uses none.
    expanded: dict[str, Any] = translator.translate(
        template, parameter_values={}, get_managed_policy_map=lambda: {}
    )
    return expanded


if __name__ == "__main__":
    json.dump(expand(json.load(sys.stdin)), sys.stdout)
