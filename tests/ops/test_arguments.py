import pytest

from ops.cli import build_parser


def refused(capsys, *argv):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["bench", "decisions", "--customers", "-5"],
            "argument --customers: expected a whole number of at least 1, got '-5'",
        ),
        (
            ["bench", "segments", "--events", "lots"],
            "argument --events: expected a whole number of at least 1, got 'lots'",
        ),
        (
            ["bench", "decisions", "--seconds", "0"],
            "argument --seconds: expected a number more than 0, got '0'",
        ),
        (
            ["bench", "segments", "--latency-seconds", "nan"],
            "argument --latency-seconds: expected a number at least 0, got 'nan'",
        ),
        (["bench", "campaigns", "--partitions", "0"], "argument --partitions: expected a whole number"),
        (["up", "--web-port", "70000"], "argument --web-port: expected a whole number from 1 to 65535"),
        (["keys", "create", "--rate-per-s", "-1"], "argument --rate-per-s: expected a number at least 0"),
        (["import", "f.csv", "--sync", "s", "--processes", "1.5"], "argument --processes: expected a whole"),
    ],
)
def test_a_bad_number_on_the_command_line_is_refused_with_the_option_and_what_it_takes(capsys, argv, message):
    line = refused(capsys, *argv)
    assert line.startswith("refract ") and message in line


def test_numbers_in_range_are_read_as_numbers():
    args = build_parser().parse_args(
        ["bench", "segments", "--events", "1_000", "--latency-seconds", "0", "--backfills", "0"]
    )
    assert (args.events, args.latency_seconds, args.backfills) == (1000, 0.0, 0)
    assert build_parser().parse_args(["up", "--web-port", "8081"]).web_port == 8081
    assert build_parser().parse_args(["keys", "create", "--rate-per-s", "0"]).rate_per_s == 0  # no limit
