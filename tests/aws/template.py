"""Read template.yaml as CloudFormation does, and resolve its intrinsic functions.

`load_template()` parses the file once per change (a YAML loader that knows the short tags
``!Ref``, ``!GetAtt``, ``!Sub``... and, like CloudFormation, reads ``yes``/``off`` and dates
as strings). `Resolver` evaluates ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``,
``Fn::If``, ``Fn::Select``, ``Fn::Split`` and the condition functions against parameter
values and the physical IDs of resources. The parsed body is shared between callers: treat
it as read-only (every method here returns new objects).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

__all__ = [
    "NO_VALUE",
    "PSEUDO_PARAMETERS",
    "TEMPLATE_PATH",
    "Template",
    "TemplateError",
    "load_template",
    "parse_template",
    "references",
    "resolve_parameters",
]

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

#: The pseudo parameters a template may ``Ref`` (``AWS::NoValue`` removes the key it is in).
PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NoValue",
        "AWS::NotificationARNs",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)


class TemplateError(Exception):
    """The template (or what a test asked of it) does not make sense."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


#: What ``!Ref AWS::NoValue`` resolves to; dropped from the mapping or list that holds it.
NO_VALUE: Any = _NoValue()


# ------------------------------------------------------------------------------ parsing


class CloudFormationLoader(_SafeLoader):
    """A safe YAML loader that turns CloudFormation short tags into their long form."""


# CloudFormation reads `yes`, `off` and `2012-10-17` as strings; PyYAML (YAML 1.1) would read
# booleans and dates. Keep only true/false as booleans, and no timestamps at all.
CloudFormationLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}
CloudFormationLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    assert isinstance(node, yaml.MappingNode)
    return loader.construct_mapping(node, deep=True)


def _construct_short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value = _construct_node(loader, node)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_short_tag)


@dataclass(frozen=True)
class Template:
    """A parsed template with the lookups tests need. ``body`` is shared: do not mutate it."""

    body: Mapping[str, Any]
    path: Path

    @property
    def parameters(self) -> Mapping[str, Mapping[str, Any]]:
        return self.body.get("Parameters", {})  # type: ignore[no-any-return]

    @property
    def conditions(self) -> Mapping[str, Any]:
        return self.body.get("Conditions", {})  # type: ignore[no-any-return]

    @property
    def resources(self) -> Mapping[str, Mapping[str, Any]]:
        return self.body.get("Resources", {})  # type: ignore[no-any-return]

    @property
    def outputs(self) -> Mapping[str, Mapping[str, Any]]:
        return self.body.get("Outputs", {})  # type: ignore[no-any-return]

    @property
    def function_globals(self) -> Mapping[str, Any]:
        return self.body.get("Globals", {}).get("Function", {})  # type: ignore[no-any-return]

    def resource(self, logical_id: str) -> Mapping[str, Any]:
        """The resource entry, or a :class:`TemplateError` naming the missing ID."""
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(f"template.yaml has no resource {logical_id!r}") from None

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A copy of the resource's ``Properties``."""
        return copy.deepcopy(dict(self.resource(logical_id).get("Properties", {})))

    def of_type(self, *types: str) -> dict[str, Mapping[str, Any]]:
        """The resources of these types, by logical ID, in template order."""
        return {lid: res for lid, res in self.resources.items() if res.get("Type") in types}

    def functions(self) -> dict[str, Mapping[str, Any]]:
        """Every ``AWS::Serverless::Function``."""
        return self.of_type("AWS::Serverless::Function")

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties merged over ``Globals.Function`` as SAM merges them."""
        resource = self.resource(logical_id)
        if resource.get("Type") != "AWS::Serverless::Function":
            raise TemplateError(f"{logical_id} is a {resource.get('Type')}, not a function")
        return merge_globals(self.function_globals, resource.get("Properties", {}))


def merge_globals(globals_: Mapping[str, Any], local: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's rule: maps merge (the resource wins), lists append, anything else is replaced."""
    merged: dict[str, Any] = copy.deepcopy(dict(globals_))
    for key, value in local.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_globals(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = current + copy.deepcopy(value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_template(text: str, path: Path = TEMPLATE_PATH) -> Template:
    """Parse template text (the short tags become ``{"Ref": ...}``, ``{"Fn::Sub": ...}``...)."""
    body = yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(body, dict) or "Resources" not in body:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return Template(body=body, path=path)


@lru_cache(maxsize=8)
def _load(path: Path, _mtime_ns: int) -> Template:
    return parse_template(path.read_text(encoding="utf-8"), path)


def load_template(path: Path = TEMPLATE_PATH) -> Template:
    """The parsed template, read again only when the file changed."""
    resolved = path.resolve()
    return _load(resolved, resolved.stat().st_mtime_ns)


# ------------------------------------------------------------------------------ parameters


def resolve_parameters(
    template: Template, given: Mapping[str, str | int | float | bool] | None = None
) -> dict[str, str | list[str]]:
    """Every parameter's value: the given one or the default, checked like CloudFormation.

    Unknown names, missing values, ``AllowedValues``, ``MinValue``/``MaxValue`` and
    ``MinLength``/``MaxLength`` are checked. ``AllowedPattern`` is not, so that a test can
    point ``TuyaEndpoint`` at the simulator's ``http://127.0.0.1`` URL.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(template.parameters))
    if unknown:
        raise TemplateError(f"template.yaml has no parameter(s) {', '.join(unknown)}")
    values: dict[str, str | list[str]] = {}
    for name, spec in template.parameters.items():
        if name in given:
            raw = given[name]
            text = str(raw).lower() if isinstance(raw, bool) else str(raw)
        elif "Default" in spec:
            text = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default: give a value")
        _check_parameter(name, spec, text)
        kind = spec.get("Type", "String")
        values[name] = text.split(",") if kind == "CommaDelimitedList" else text
    return values


def _check_parameter(name: str, spec: Mapping[str, Any], text: str) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and text not in [str(value) for value in allowed]:
        raise TemplateError(f"{name}={text!r} is not one of {allowed}")
    if spec.get("Type") == "Number":
        try:
            number = float(text)
        except ValueError:
            raise TemplateError(f"{name}={text!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"{name}={text} is below its MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"{name}={text} is above its MaxValue {spec['MaxValue']}")
    if "MinLength" in spec and len(text) < int(spec["MinLength"]):
        raise TemplateError(f"{name} is shorter than {spec['MinLength']} characters")
    if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
        raise TemplateError(f"{name} is longer than {spec['MaxLength']} characters")


# ------------------------------------------------------------------------------ intrinsics

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def sub_variables(text: str) -> list[str]:
    """The ``${...}`` names of a ``Fn::Sub`` string (``${!Literal}`` excluded)."""
    return [name for name in _SUB_VARIABLE.findall(text) if not name.startswith("!")]


def references(value: Any) -> Iterator[str]:
    """Every logical ID or parameter name that ``value`` refers to (Ref, GetAtt, Sub)."""
    if isinstance(value, Mapping):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and isinstance(arg, str):
                yield arg
                return
            if key == "Fn::GetAtt":
                target = arg[0] if isinstance(arg, list) else str(arg).partition(".")[0]
                yield target
                return
            if key == "Fn::Sub":
                text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                for name in sub_variables(text):
                    base = name.partition(".")[0]
                    if base not in local:
                        yield base
                yield from references(local)
                return
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


class Resolver:
    """Evaluates intrinsic functions against parameters, pseudo parameters and resources.

    ``ref(logical_id)`` and ``get_att(logical_id, attribute)`` give the physical values of
    resources; they raise :class:`TemplateError` for what they do not know.
    """

    def __init__(
        self,
        template: Template,
        parameters: Mapping[str, str | list[str]],
        pseudo: Mapping[str, str],
        ref: Callable[[str], str],
        get_att: Callable[[str, str], str],
    ) -> None:
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self._ref = ref
        self._get_att = get_att
        self._conditions: dict[str, bool] = {}

    # -- conditions

    def condition(self, name: str) -> bool:
        """The value of a named condition of the template."""
        if name not in self._conditions:
            if name not in self.template.conditions:
                raise TemplateError(f"template.yaml has no condition {name!r}")
            self._conditions[name] = bool(self.resolve(self.template.conditions[name]))
        return self._conditions[name]

    def conditions(self) -> dict[str, bool]:
        """Every condition of the template, evaluated."""
        return {name: self.condition(name) for name in self.template.conditions}

    def is_active(self, logical_id: str) -> bool:
        """Whether a resource or output exists with these parameters (its Condition holds)."""
        entry = self.template.resources.get(logical_id) or self.template.outputs.get(logical_id)
        if entry is None:
            raise TemplateError(f"template.yaml has no resource or output {logical_id!r}")
        condition = entry.get("Condition")
        return condition is None or self.condition(condition)

    # -- values

    def ref(self, name: str) -> Any:
        """``!Ref name``: a parameter's value, a pseudo parameter, or a resource's physical ID."""
        if name in self.parameters:
            return self.parameters[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in PSEUDO_PARAMETERS:
            raise TemplateError(f"no value for the pseudo parameter {name}")
        if name not in self.template.resources:
            raise TemplateError(f"!Ref {name}: no such parameter or resource in template.yaml")
        return self._ref(name)

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function evaluated (``AWS::NoValue`` dropped)."""
        if isinstance(value, Mapping):
            if len(value) == 1:
                ((key, arg),) = value.items()
                handler = self._INTRINSICS.get(key)
                # A one-key {"Condition": {...}} is an IAM condition block, not Fn::Condition.
                if handler is not None and (key != "Condition" or isinstance(arg, str)):
                    return handler(self, arg)
                if key.startswith("Fn::"):
                    raise TemplateError(f"{key} is not supported by tests/aws/template.py")
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        return value

    def _fn_ref(self, name: Any) -> Any:
        return self.ref(str(name))

    def _fn_get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            logical_id, _, attribute = arg.partition(".")
        else:
            logical_id, attribute = arg[0], self.resolve(arg[1])
        if logical_id not in self.template.resources:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: no such resource")
        return self._get_att(logical_id, str(attribute))

    def _fn_sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, local = arg, {}
        else:
            text, local = arg[0], {key: self.resolve(val) for key, val in arg[1].items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return str(local[name])
            if "." in name and name.partition(".")[0] in self.template.resources:
                logical_id, _, attribute = name.partition(".")
                return str(self._get_att(logical_id, attribute))
            value = self.ref(name)
            if isinstance(value, list):
                raise TemplateError(f"${{{name}}} is a list; !Sub needs a string")
            return str(value)

        return _SUB_VARIABLE.sub(substitute, text)

    def _fn_join(self, arg: Any) -> str:
        delimiter, items = arg
        values = self.resolve(items)
        return str(delimiter).join(str(item) for item in values)

    def _fn_select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _fn_split(self, arg: Any) -> list[str]:
        delimiter, text = arg
        return str(self.resolve(text)).split(str(delimiter))

    def _fn_if(self, arg: Any) -> Any:
        name, if_true, if_false = arg
        return self.resolve(if_true if self.condition(name) else if_false)

    def _fn_equals(self, arg: Any) -> bool:
        left, right = (self.resolve(item) for item in arg)
        return str(left) == str(right) if not isinstance(left, list) else left == right

    def _fn_not(self, arg: Any) -> bool:
        return not self._truth(arg[0])

    def _fn_and(self, arg: Any) -> bool:
        return all(self._truth(item) for item in arg)

    def _fn_or(self, arg: Any) -> bool:
        return any(self._truth(item) for item in arg)

    def _fn_condition(self, name: Any) -> bool:
        return self.condition(str(name))

    def _truth(self, value: Any) -> bool:
        result = self.resolve(value)
        if not isinstance(result, bool):
            raise TemplateError(f"a condition function gave {result!r}, not true or false")
        return result

    _INTRINSICS: Mapping[str, Callable[[Resolver, Any], Any]] = {
        "Ref": _fn_ref,
        "Fn::GetAtt": _fn_get_att,
        "Fn::Sub": _fn_sub,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Condition": _fn_condition,
    }
