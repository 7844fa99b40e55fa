from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest

from connectors.csv import (
    BasicAuth,
    BearerAuth,
    FolderSource,
    MappingError,
    Schedule,
    UrlSource,
    from_body,
    load_sync,
    to_body,
)
from connectors.csv.values import (
    BooleanType,
    DateType,
    DecimalType,
    IntegerType,
    ListType,
    StringType,
    TimestampType,
)
from tests.connectors.csv.factories import make_sync


def refusal(**overrides: object) -> MappingError:
    with pytest.raises(MappingError) as caught:
        make_sync(**overrides)
    return caught.value


def test_a_minimal_sync_gets_the_documented_defaults() -> None:
    sync = make_sync()

    assert sync.id == "customers"
    assert sync.key.column == "id" and sync.key.field == "customer_id"
    assert not sync.key.needs_resolution
    assert sync.delimiter == "," and sync.encoding == "utf-8" and sync.header is None
    assert sync.empty_cells == "unset" and not sync.full_snapshot
    (column,) = sync.columns
    assert (column.column, column.attribute, column.type) == ("name", "name", StringType())


def test_a_misspelled_type_is_refused_naming_its_path_and_the_types() -> None:
    error = refusal(columns=[{"column": "name"}] * 3 + [{"column": "age", "type": "integr"}])

    assert error.field == "columns[3].type"
    assert str(error) == (
        "columns[3].type: 'integr' is not a type; use one of string, integer, decimal, boolean,"
        " date, timestamp, list"
    )


def test_an_unknown_option_is_refused_with_the_closest_known_one() -> None:
    error = refusal(columns=[{"column": "name", "tpye": "string"}])

    assert error.field == "columns[0].tpye"
    assert "did you mean 'type'?" in str(error)


def test_an_unknown_top_level_option_is_refused_before_what_it_was_meant_to_be() -> None:
    error = refusal(columns=None, colums=["name"])

    assert error.field == "colums"
    assert "did you mean 'columns'?" in str(error)
    assert refusal(delimeter=";").field == "delimeter"


def test_the_id_is_required_and_must_be_a_plain_name() -> None:
    assert refusal(id=None).field == "id"
    assert refusal(id="has spaces").field == "id"


def test_the_kind_must_be_one_of_the_six() -> None:
    error = refusal(kind="customers")

    assert error.field == "kind"
    assert "attributes, contacts, products, campaign_data, unsubscribes, removals" in str(error)


def test_a_key_given_as_text_is_the_customer_id_column() -> None:
    assert make_sync(key="Customer ID").key.column == "Customer ID"


def test_a_key_on_another_field_needs_resolution() -> None:
    key = make_sync(key={"column": "E-mail", "field": "email"}).key

    assert key.field == "email" and key.needs_resolution


def test_an_attribute_name_must_be_an_identifier_and_the_error_suggests_renaming() -> None:
    error = refusal(columns=[{"column": "First Name"}])

    assert error.field == "columns[0].attribute"
    assert "set attribute: to rename" in str(error)
    renamed = make_sync(columns=[{"column": "First Name", "attribute": "first_name"}])
    assert renamed.columns[0].attribute == "first_name"


def test_two_columns_writing_one_attribute_are_refused_at_the_second() -> None:
    error = refusal(columns=[{"column": "name"}, {"column": "other", "attribute": "name"}])

    assert error.field == "columns[1].attribute"
    assert "already written by columns[0]" in str(error)


def test_an_option_of_another_type_is_refused() -> None:
    error = refusal(columns=[{"column": "age", "type": "integer", "format": "%d"}])

    assert error.field == "columns[0].format"
    assert "only date and timestamp columns take a format" in str(error)


def test_a_date_format_without_a_full_date_is_refused() -> None:
    error = refusal(columns=[{"column": "born", "type": "date", "format": "%m/%Y"}])

    assert error.field == "columns[0].format"


def test_each_type_carries_its_options() -> None:
    sync = make_sync(
        columns=[
            {"column": "a", "type": "integer"},
            {"column": "b", "type": "decimal", "decimal_separator": ","},
            {"column": "c", "type": "boolean", "true_values": ["si"], "false_values": ["no"]},
            {"column": "d", "type": "date", "format": "%d/%m/%Y"},
            {"column": "e", "type": "timestamp", "format": "%d/%m/%Y %H:%M", "timezone": "Europe/Madrid"},
            {"column": "f", "type": "list", "separator": ";"},
        ]
    )

    assert [c.type for c in sync.columns] == [
        IntegerType(),
        DecimalType(decimal_separator=","),
        BooleanType(true_values=("si",), false_values=("no",)),
        DateType(format="%d/%m/%Y"),
        TimestampType(format="%d/%m/%Y %H:%M", timezone="Europe/Madrid"),
        ListType(separator=";"),
    ]


def test_boolean_texts_that_yaml_reads_as_booleans_must_be_quoted() -> None:
    with pytest.raises(MappingError) as caught:
        load_sync(
            textwrap.dedent(
                """
                id: s
                kind: attributes
                key: id
                columns:
                  - {column: vip, type: boolean, true_values: [yes, si]}
                """
            )
        )

    assert caught.value.field == "columns[0].true_values[0]"
    assert "quotes" in str(caught.value)


def test_a_text_cannot_be_both_true_and_false() -> None:
    error = refusal(columns=[{"column": "v", "type": "boolean", "true_values": ["Y"], "false_values": ["y"]}])

    assert error.field == "columns[0].false_values"


def test_a_default_is_converted_to_the_column_type() -> None:
    sync = make_sync(
        columns=[
            {"column": "a", "type": "integer", "default": 0},
            {"column": "b", "type": "decimal", "default": "1.5"},
            {"column": "c", "type": "date", "format": "%d/%m/%Y", "default": "31/12/2024"},
            {"column": "d", "type": "list", "default": ["x", "y"]},
            {"column": "e", "type": "boolean", "default": False},
        ]
    )

    assert [c.default for c in sync.columns] == [0, 1.5, dt.date(2024, 12, 31), ("x", "y"), False]


def test_a_default_that_is_not_of_the_column_type_is_refused() -> None:
    error = refusal(columns=[{"column": "a", "type": "integer", "default": "many"}])

    assert error.field == "columns[0].default"
    assert "'many' is not an integer" in str(error)


def test_a_calculated_column_takes_the_type_of_its_expression() -> None:
    sync = make_sync(
        columns=[
            {"column": "balance", "type": "decimal"},
            {"column": "count", "type": "integer"},
            {"attribute": "cents", "expression": "balance * 100"},
            {"attribute": "double", "expression": "count * 2"},
            {"attribute": "label", "expression": "'n' + name", "type": "string"},
            {"column": "name"},
        ]
    )

    types = {c.attribute: c.type for c in sync.columns}
    assert types["cents"] == DecimalType() and types["double"] == IntegerType()
    assert types["label"] == StringType()


def test_a_calculated_column_whose_expression_does_not_fit_its_type_is_refused() -> None:
    error = refusal(columns=[{"column": "name"}, {"attribute": "n", "expression": "name", "type": "integer"}])

    assert error.field == "columns[1].type"
    assert "gives a string" in str(error)


def test_an_expression_over_an_unknown_or_calculated_column_is_refused() -> None:
    unknown = refusal(columns=[{"attribute": "x", "expression": "missing + 1"}])
    chained = refusal(
        columns=[
            {"column": "a", "type": "integer"},
            {"attribute": "b", "expression": "a + 1"},
            {"attribute": "c", "expression": "b + 1"},
        ]
    )

    assert unknown.field == "columns[0].expression" and "'missing'" in str(unknown)
    assert chained.field == "columns[2].expression" and "calculated column" in str(chained)


def test_an_expression_that_calls_a_function_is_refused_when_the_sync_loads() -> None:
    error = refusal(columns=[{"column": "name"}, {"attribute": "x", "expression": "upper(name)"}])

    assert error.field == "columns[1].expression"
    assert "cannot call functions" in str(error)


def test_a_campaign_data_sync_needs_its_campaign_and_other_kinds_refuse_one() -> None:
    assert refusal(kind="campaign_data").field == "campaign"
    assert make_sync(kind="campaign_data", campaign="loan-2024").campaign == "loan-2024"
    assert refusal(campaign="loan-2024").field == "campaign"


def test_an_unsubscribes_sync_needs_a_scope_and_no_columns() -> None:
    assert refusal(kind="unsubscribes", columns=None).field == "scope"
    no_columns = refusal(kind="unsubscribes", scope={"type": "all"})
    assert no_columns.field == "columns"
    bad_channel = refusal(kind="unsubscribes", columns=None, scope={"type": "channel", "value": "fax"})
    assert bad_channel.field == "scope.value"
    both = refusal(kind="unsubscribes", columns=None, scope={"type": "campaign", "value": "a", "column": "b"})
    assert both.field == "scope"


def test_an_unsubscribe_scope_can_come_from_a_column() -> None:
    sync = make_sync(kind="unsubscribes", columns=None, scope={"type": "channel", "column": "ch"})

    assert sync.scope is not None and sync.scope.column == "ch"
    assert sync.file_columns == ("id", "ch")


def test_a_contacts_sync_writes_only_contact_fields() -> None:
    error = refusal(kind="contacts", columns=[{"column": "name"}])

    assert error.field == "columns[0].attribute"
    assert "email, phone, push_token_android" in str(error)


def test_a_products_sync_folds_text_or_list_columns_only() -> None:
    error = refusal(kind="products", columns=[{"column": "n", "type": "integer"}])

    assert error.field == "columns[0].type"


def test_a_schedule_needs_five_cron_fields_a_real_time_zone_and_a_source() -> None:
    folder = {"folder": "/data/in"}
    six_fields = refusal(schedule={"cron": "0 0 2 * * *"}, source=folder)
    bad_zone = refusal(schedule={"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, source=folder)
    no_source = refusal(schedule={"cron": "0 2 * * *"})
    sync = make_sync(schedule={"cron": "0 2 * * 1-5", "timezone": "Europe/Madrid"}, source=folder)

    assert six_fields.field == "schedule.cron"
    assert bad_zone.field == "schedule.timezone"
    assert no_source.field == "schedule"
    assert sync.schedule == Schedule(cron="0 2 * * 1-5", timezone="Europe/Madrid")
    assert sync.source == FolderSource(path="/data/in", pattern="*.csv")


def test_a_url_source_reads_its_secrets_from_named_environment_variables() -> None:
    basic = make_sync(
        source={
            "url": "https://files.example.com/c.csv",
            "auth": {"type": "basic", "username": "refract", "password_env": "FILES_PASSWORD"},
        }
    )
    bearer = make_sync(
        source={"url": "https://x.example/c.csv", "auth": {"type": "bearer", "token_env": "TOK"}}
    )

    assert basic.source == UrlSource(
        url="https://files.example.com/c.csv",
        auth=BasicAuth(username="refract", password_env="FILES_PASSWORD"),
    )
    assert bearer.source == UrlSource(url="https://x.example/c.csv", auth=BearerAuth("TOK"))


def test_an_inline_secret_is_refused() -> None:
    error = refusal(
        source={
            "url": "https://x.example/c.csv",
            "auth": {"type": "basic", "username": "u", "password": "hunter2"},
        }
    )

    assert error.field == "source.auth.password"
    assert "password_env" in str(error) and "hunter2" not in str(error)


def test_credentials_in_the_url_are_refused() -> None:
    assert refusal(source={"url": "https://u:p@x.example/c.csv"}).field == "source.url"


def test_credentials_go_over_plain_http_only_to_this_machine() -> None:
    auth = {"type": "bearer", "token_env": "TOKEN"}

    assert refusal(source={"url": "http://x.example/c.csv", "auth": auth}).field == "source.url"
    local = make_sync(source={"url": "http://127.0.0.1:8080/c.csv", "auth": auth})
    assert isinstance(local.source, UrlSource)


def test_a_header_list_must_name_every_column_the_sync_reads() -> None:
    error = refusal(header=["id"])

    assert error.field == "header"
    assert "'name'" in str(error)


def test_a_tab_delimiter_is_accepted_and_longer_ones_are_refused() -> None:
    assert make_sync(delimiter="\t").delimiter == "\t"
    assert refusal(delimiter=";;").field == "delimiter"


def test_encodings_accept_common_spellings_and_refuse_others() -> None:
    assert make_sync(encoding="Latin1").encoding == "latin-1"
    assert make_sync(encoding="UTF-8-SIG").encoding == "utf-8-sig"
    assert refusal(encoding="cp1252").field == "encoding"


def test_a_full_snapshot_of_removals_is_refused() -> None:
    assert refusal(kind="removals", columns=None, full_snapshot=True).field == "full_snapshot"


def test_invalid_yaml_is_refused_with_its_position() -> None:
    with pytest.raises(MappingError) as caught:
        load_sync("id: x\nkind: [attributes\n")

    assert "not valid YAML at line" in str(caught.value)


def test_the_stored_body_is_json_and_reads_back_to_an_equal_sync() -> None:
    sync = make_sync(
        key={"column": "mail", "field": "email"},
        columns=[
            {"column": "name", "transforms": ["trim", "upper"], "required": True},
            {"column": "balance", "type": "decimal", "decimal_separator": ",", "default": 0},
            {"column": "born", "type": "date", "format": "%d/%m/%Y", "default": "01/01/1970"},
            {"column": "seen", "type": "timestamp", "default": "2024-01-01T00:00:00"},
            {"column": "vip", "type": "boolean", "true_values": ["si"], "false_values": ["no"]},
            {"column": "tags", "type": "list", "separator": ";", "store": False},
            {"attribute": "cents", "expression": "balance * 100"},
        ],
        delimiter=";",
        encoding="latin-1",
        header=["mail", "name", "balance", "born", "seen", "vip", "tags"],
        empty_cells="keep",
        schedule={"cron": "*/15 * * * *", "timezone": "America/Bogota"},
        source={"url": "https://x.example/f.csv", "auth": {"type": "bearer", "token_env": "T"}},
        full_snapshot=True,
    )

    body = to_body(sync)

    assert from_body(json.loads(json.dumps(body))) == sync
