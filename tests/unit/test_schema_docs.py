"""The schema documents itself: every type, field, argument, input field and enum value of ours
has a description, in introspection and in the printed SDL alike, and the SDL carries no
directive (internal ones, such as the permission classes', must not leak)."""

from __future__ import annotations

from graphql import (
    DirectiveDefinitionNode,
    DirectiveNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    Visitor,
    build_client_schema,
    build_schema,
    introspection_from_schema,
    is_introspection_type,
    is_specified_scalar_type,
    parse,
    visit,
)

from stacklo.api import schema


def described(target: GraphQLSchema) -> tuple[list[str], list[str]]:
    """(every element of ours, those without a description)."""
    elements: list[tuple[str, str | None]] = []
    for name, type_ in sorted(target.type_map.items()):
        if is_introspection_type(type_) or is_specified_scalar_type(type_):
            continue
        elements.append((name, type_.description))
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                elements.append((f"{name}.{field_name}", field.description))
                for arg_name, arg in field.args.items():
                    elements.append((f"{name}.{field_name}({arg_name})", arg.description))
        elif isinstance(type_, GraphQLInputObjectType):
            for field_name, input_field in type_.fields.items():
                elements.append((f"{name}.{field_name}", input_field.description))
        elif isinstance(type_, GraphQLEnumType):
            for value_name, value in type_.values.items():
                elements.append((f"{name}.{value_name}", value.description))
    missing = [path for path, text in elements if not (text and text.strip())]
    return [path for path, _ in elements], missing


def test_every_type_field_argument_input_field_and_enum_value_is_described() -> None:
    everything, missing = described(schema._schema)
    assert len(everything) > 300  # the walk did find the schema
    assert missing == [], f"{len(missing)} of {len(everything)} undescribed:\n" + "\n".join(missing)


def test_descriptions_reach_introspection_and_the_printed_sdl() -> None:
    served, _ = described(schema._schema)
    for name, seen in (
        ("introspection", build_client_schema(introspection_from_schema(schema._schema))),
        ("printed SDL", build_schema(schema.as_str())),
    ):
        everything, missing = described(seen)
        assert everything == served, name
        assert missing == [], f"undescribed in the {name}:\n" + "\n".join(missing)


def test_the_printed_sdl_carries_no_directive() -> None:
    found: list[str] = []

    class Directives(Visitor):
        def enter_directive_definition(self, node: DirectiveDefinitionNode, *_: object) -> None:
            found.append(f"directive @{node.name.value}")

        def enter_directive(self, node: DirectiveNode, *_: object) -> None:
            found.append(f"@{node.name.value}")

    visit(parse(schema.as_str()), Directives())
    assert found == []
