"""A stock OpenFeature SDK (openfeature-sdk) with its stock OFREP provider
(openfeature-provider-ofrep) against a running `tenantry serve`: no code of ours on the client.

Usage: python openfeature_ofrep.py <base-url> <api-key>
Driven by crates/tenantry-cli/tests/openfeature_sdk.rs, which creates the tenants and flags.
Exits non-zero with a message on the first wrong answer.
"""

import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

base_url, token = sys.argv[1], sys.argv[2]
api.set_provider(OFREPProvider(base_url, headers_factory=lambda: {"Authorization": f"Bearer {token}"}))
client = api.get_client()
finance = EvaluationContext(targeting_key="finance")
failures = []


def check(what, actual, expected):
    if actual != expected:
        failures.append(f"{what}: expected {expected!r}, got {actual!r}")


d = client.get_boolean_details("beta", False, finance)
check("tenant override value", d.value, True)
check("tenant override reason", d.reason, Reason.TARGETING_MATCH)
check("tenant override error", d.error_code, None)
check("decided by", d.flag_metadata.get("level"), "tenant")

d = client.get_string_details("model", "none", finance)
check("tier default value", d.value, "gpt-4o-mini")
check("tier default reason", d.reason, Reason.TARGETING_MATCH)

d = client.get_boolean_details("dark_mode", True, finance)
check("global default value", d.value, False)
check("global default reason", d.reason, Reason.STATIC)

check("integer flag", client.get_integer_value("top_k", 0, finance), 5)
check("float flag", client.get_float_value("temperature", 0.0, finance), 0.25)
check("object flag", client.get_object_value("rag", {}, finance), {"rerank": True, "window": 3})

d = client.get_boolean_details("killed", True, finance)
check("disabled flag falls back to the code default", d.value, True)
check("disabled flag reason", d.reason, Reason.DISABLED)
check("disabled flag is no error", d.error_code, None)

d = client.get_boolean_details("no_such_flag", True, finance)
check("missing flag falls back to the default", d.value, True)
check("missing flag error", d.error_code, ErrorCode.FLAG_NOT_FOUND)

# (a string, not an integer: Python's bool is an int, so the provider would accept it)
d = client.get_string_details("beta", "fallback", finance)
check("type mismatch falls back to the default", d.value, "fallback")
check("type mismatch error", d.error_code, ErrorCode.TYPE_MISMATCH)

d = client.get_boolean_details("beta", True, EvaluationContext())
check("no targeting key falls back", d.value, True)
check("no targeting key error", d.error_code, ErrorCode.TARGETING_KEY_MISSING)

d = client.get_boolean_details("beta", True, EvaluationContext(targeting_key="legal"))
check("suspended tenant falls back", d.value, True)
check("suspended tenant error", d.error_code, ErrorCode.GENERAL)
check("suspended tenant reason", d.reason, Reason.ERROR)

d = client.get_boolean_details("beta", True, EvaluationContext(targeting_key="nobody"))
check("unknown tenant falls back", d.value, True)
check("unknown tenant is an error", d.reason, Reason.ERROR)

if failures:
    print("\n".join(failures), file=sys.stderr)
    sys.exit(1)
print("openfeature sdk: all checks passed")
